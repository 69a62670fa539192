"""Learning the second stage: LightGBM lambdarank on the satisfying first watches of a time window.

The examples are the two stages' own (vrmodels.model.ranking.twostage), as of the window's start: each learning user's
candidates from a stage 1 fitted before the window, described by the features the server will compute. A
candidate the user watched through in the window is a positive (label 1), any other a negative; users whose
candidates hold no positive teach a ranker nothing and are left out. At most MAX_USERS users (seeded sample).
Boosting stops once the NDCG@10 of a held-out tenth of them stops rising: every tree costs the scoring of every
known user's candidates at training and of every fold-in at serving. A tenth of fewer than 1,000 users is too
noisy to stop on (8 users stopped MovieLens-100K's ranker at 3 rounds, 20% below its 150-round NDCG@10), and
small windows are cheap to score: they learn all MAX_ROUNDS.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from vrmodels.model.lightgbm_ranker import LightGBMRanker
from vrmodels.model.ranking.base import QueryBatch
from vrmodels.model.ranking.twostage import CATEGORICAL, TwoStageRanking

log = logging.getLogger(__name__)

MAX_USERS = 20_000
MIN_POSITIVES = 500  # `--ranker auto` learns no ranker from fewer satisfying watches (`on` learns from any)
CHUNK = 1024
MAX_ROUNDS = 150
STOP_AFTER = 20  # rounds without a better validation NDCG@10
VALIDATION_SHARE = 0.1
MIN_VALIDATION_USERS = 100
# Small trees: on generated platforms of 3,000 and 15,000 users (three seeds), 7 leaves gave 20% more NDCG@10 than
# LightGBM's 31 (docs/training.md); a user's candidates hold few positives to learn from. At a learning rate of
# 0.1, 40 to 150 trees judged within 2% of one another there and on bench.offline's 5M-event log.
PARAMETERS = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_data_in_leaf": 100,
    "lambda_l2": 10.0,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambdarank_truncation_level": 20,
    "deterministic": True,
    "verbose": -1,
}


class TooLittleToLearn(ValueError):
    """The window holds too few satisfying watches among the candidates to learn a ranker worth shipping."""


@dataclass(frozen=True)
class Examples:
    features: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    """Candidates per query, in order."""
    names: tuple[str, ...]
    """The features' names, in column order."""
    candidate_recall: float
    """Share of the queries' labelled watches that their candidates held."""

    @property
    def queries(self) -> int:
        return len(self.groups)


Chunk = tuple[QueryBatch, csr_matrix]
"""A batch of queries as stage 1 sees them, and their labels (batch rows × videos, 1 = a watch to find)."""


def examples(stages: TwoStageRanking, chunks: Iterable[Chunk]) -> Examples:
    """Features and labels of every candidate of every query; queries whose candidates hold no positive teach a
    ranker nothing and are left out."""
    parts, found, wanted = [], 0, 0
    for batch, labels in chunks:
        candidates = stages.candidates(batch)
        rows = labels.tocoo()
        positive_keys = rows.row.astype(np.int64) * labels.shape[1] + rows.col
        label = np.isin(candidates.user * labels.shape[1] + candidates.video, positive_keys)
        found, wanted = found + int(label.sum()), wanted + len(positive_keys)
        sizes = np.bincount(candidates.user, minlength=len(batch))
        learnable = np.bincount(candidates.user, weights=label, minlength=len(batch)) > 0
        keep = learnable[candidates.user]
        parts.append((stages.features(batch, candidates)[keep], label[keep], sizes[learnable]))
    features, label, groups = (np.concatenate(column) for column in zip(*parts)) if parts else ([],) * 3
    names = stages.features_names
    return Examples(
        np.asarray(features, dtype=np.float32).reshape(-1, len(names)),
        np.asarray(label, dtype=np.float32),
        np.asarray(groups, dtype=np.int64),
        names,
        found / max(wanted, 1),
    )


def user_chunks(batch_of: Callable[[np.ndarray], QueryBatch], labels: csr_matrix, users: np.ndarray) -> Iterator[Chunk]:
    """Known users CHUNK at a time: `batch_of` makes the batch of some users as stage 1 saw them, `labels` (users ×
    videos) holds what each went on to watch."""
    for start in range(0, len(users), CHUNK):
        chunk = users[start : start + CHUNK]
        yield batch_of(chunk), labels[chunk]


def learn(stages: TwoStageRanking, data: Examples, *, seed: int, min_positives: int = 1) -> tuple[LightGBMRanker, dict]:
    """The ranker learned from `data`, and the manifest's account of it; TooLittleToLearn below `min_positives`."""
    positives = int(data.labels.sum())
    if positives < max(min_positives, 1):
        raise TooLittleToLearn(
            f"the ranker's window holds {positives} satisfying watches among {data.queries} queries' candidates "
            f"(at least {max(min_positives, 1)} needed)"
        )
    booster, validating = boost(data, seed)
    rounds, held_out = booster.current_iteration(), int(validating.sum())
    ranker = LightGBMRanker(booster, num_threads=os.cpu_count() or 1)  # offline it scores every user on every core
    account = {
        "users": data.queries,
        "examples": len(data.labels),
        "positives": positives,
        "candidate_recall": round(data.candidate_recall, 4),
        "rounds": rounds,
        "max_rounds": MAX_ROUNDS,
        "validation_users": held_out,
        "parameters": PARAMETERS,
        "features": list(data.names),
        "importances": ranker.importances(),
    }
    stopped = f"stopped by {held_out} held-out queries" if held_out else "too few queries to stop early"
    log.info(
        "[ranker] learned from %d queries, %d candidates (%d positives; candidates held %.0f%% of their watches); "
        "%d rounds (%s)",
        data.queries, len(data.labels), positives, 100 * data.candidate_recall, rounds, stopped,
    )  # fmt: skip
    return ranker, account


def boost(data: Examples, seed: int) -> tuple[object, np.ndarray]:
    """The LightGBM booster, cut to the round its held-out users ranked best; and which users were held out."""
    import lightgbm

    validating = _validation_users(data.queries, seed)
    rows = np.repeat(validating, data.groups)
    dataset = _dataset(data, ~rows, ~validating)
    stopping = {}
    if validating.any():
        stopping = {
            "valid_sets": [_dataset(data, rows, validating, reference=dataset)],
            "callbacks": [lightgbm.early_stopping(STOP_AFTER, verbose=False)],
        }
    parameters = PARAMETERS | {"seed": seed, "num_threads": os.cpu_count() or 1}
    booster = lightgbm.train(parameters, dataset, num_boost_round=MAX_ROUNDS, **stopping)
    rounds = booster.best_iteration or booster.current_iteration()
    return lightgbm.Booster(model_str=booster.model_to_string(num_iteration=rounds)), validating


def _validation_users(users: int, seed: int) -> np.ndarray:
    """Which learning users are held out: a seeded VALIDATION_SHARE, or none below MIN_VALIDATION_USERS."""
    chosen = np.zeros(users, dtype=bool)
    count = round(users * VALIDATION_SHARE)
    if count >= MIN_VALIDATION_USERS:
        chosen[np.random.default_rng(seed).permutation(users)[:count]] = True
    return chosen


def _dataset(data: Examples, rows: np.ndarray, users: np.ndarray, reference: object = None) -> object:
    """The examples of some users (`rows` of the examples, `users` of the groups) as a LightGBM dataset."""
    import lightgbm

    return lightgbm.Dataset(
        data.features[rows],
        data.labels[rows],
        group=data.groups[users],
        feature_name=list(data.names),
        categorical_feature=list(CATEGORICAL),
        reference=reference,
        free_raw_data=True,
    )
