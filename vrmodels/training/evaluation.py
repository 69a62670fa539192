"""How a model is judged: top-k ranking metrics on held-out pairs, against popularity baselines, and the gate.

Definitions (binary relevance, k = cut-off, R = a user's relevant held-out videos, see `relevance`):
precision@k = hits / k; recall@k = hits / |R|; NDCG@k = DCG / ideal DCG over min(k, |R|) hits;
MAP@k = sum of precision at each hit / min(k, |R|). Averaged over users with at least one relevant held-out
video. Beyond accuracy: catalogue coverage (share of all videos that appear in some top-k list) and the share
of recommendations drawn from the 1% most popular videos (how much a model merely echoes popularity).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from implicit.cpu.topk import topk
from scipy.sparse import csr_matrix

from features.feature_set import FeatureSet
from vrmodels.model.catalogue import FILTERED_SCORE, CatalogueRanker
from vrmodels.model.popularity import clicks, engagement
from vrmodels.training.als import TrainParams, fit_als
from vrmodels.training.relevance import Relevance

log = logging.getLogger(__name__)

K = 10  # the cut-off of the quality gate and of tuning
CURVE_MAX_K = 50  # the report's curves run k = 1..CURVE_MAX_K
MAX_EVALUATED_USERS = 20_000
BASELINES = ("most_popular", "most_watched")
METRICS = ("precision", "recall", "ndcg", "map")
CURVE_METRICS = ("ndcg", "recall")
POPULAR_TOP_FRACTION = 0.01


class QualityGateError(RuntimeError):
    """The model did not beat the best popularity baseline on held-out NDCG@K; `metrics` says by how much."""

    def __init__(self, message: str, metrics: dict[str, dict[str, float]]):
        super().__init__(message)
        self.metrics = metrics


@dataclass
class SplitEvaluation:
    metrics: dict[str, dict[str, float]]
    """Per model (als and the BASELINES): precision/recall/ndcg/map@K, users, coverage@K and popular_share@K."""
    curves: dict[str, dict[str, list[float]]]
    """Per model: ndcg and recall at k = 1..max_k (empty when max_k == K)."""


def evaluate_split(
    features: FeatureSet,
    train_rows: np.ndarray,
    relevant_rows: np.ndarray,
    params: TrainParams,
    max_k: int = K,
    show_progress: bool = False,
) -> SplitEvaluation:
    """ALS fitted on `train_rows` only, then judged (`judge`) on the relevant held-out pairs."""
    train = features.to_csr(train_rows)
    model = fit_als(train, params, show_progress)
    return judge(train, features.indicator(relevant_rows), model.user_factors, model.item_factors, max_k, params.seed)


def judge(
    train: csr_matrix,
    held_out: csr_matrix,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    max_k: int = K,
    seed: int = 0,
) -> SplitEvaluation:
    """Factors fitted on `train` (by any trainer) and the popularity baselines, judged on `held_out`.

    Recommendations exclude the user's training videos, exactly as serving does (vrmodels.model.catalogue).
    most_popular ranks by distinct users (clicks); most_watched by engagement, as the serving fallback does.
    """
    users = np.flatnonzero(np.diff(held_out.indptr))
    if len(users) > MAX_EVALUATED_USERS:  # scoring every user would cost more than the fits themselves
        users = np.sort(np.random.default_rng(seed).choice(users, MAX_EVALUATED_USERS, replace=False))
    video_popularity = clicks(train)
    ranker = CatalogueRanker(np.ascontiguousarray(item_factors, dtype=np.float32))
    lists = {
        "als": ranker.top_k(np.asarray(user_factors)[users], train[users], max_k),
        "most_popular": rank_by_popularity(video_popularity, train[users], max_k),
        "most_watched": rank_by_popularity(engagement(train), train[users], max_k),
    }
    metrics, curves = {}, {}
    for name, (ids, scores) in lists.items():
        ranked = RankedLists(ids, scores, held_out[users])
        metrics[name] = ranked.metrics(K) | {
            "coverage": ranked.coverage(K, train.shape[1]),
            "popular_share": ranked.popular_share(K, video_popularity),
        }
        if max_k > K:
            curves[name] = ranked.curves(max_k)
    return SplitEvaluation(metrics, curves)


def quality_gate(metrics: dict[str, dict[str, float]], relevance: Relevance, allow_worse: bool) -> None:
    """Refuse (QualityGateError) unless ALS beats the best baseline on NDCG@K; with allow_worse, warn instead."""
    baseline = max(BASELINES, key=lambda name: metrics[name]["ndcg"])
    if metrics["als"]["ndcg"] > metrics[baseline]["ndcg"]:
        return
    message = (
        f"quality gate: ALS NDCG@{K} {metrics['als']['ndcg']:.4f} does not beat {baseline.replace('_', '-')} "
        f"{metrics[baseline]['ndcg']:.4f} ({relevance.describe()})"
    )
    if not allow_worse:
        raise QualityGateError(message + "; nothing shipped (use --allow-worse to ship anyway)", metrics)
    log.warning("%s; shipping because --allow-worse was given", message)


def rank_by_popularity(scores: np.ndarray, user_items: csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k most popular videos per row of `user_items`, excluding that row's videos."""
    return topk(
        scores.reshape(-1, 1).astype(np.float32),
        np.ones((user_items.shape[0], 1), dtype=np.float32),
        k,
        filter_query_items=user_items,
        num_threads=0,
    )


def metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """The metrics as a fixed-width table, for the CLIs to print."""
    columns = ("precision", "recall", "ndcg", "map", "coverage", "popular_share")
    header = f"{'model':<14}" + "".join(f"{name + '@' + str(K):>17}" for name in columns)
    rows = [
        f"{model:<14}" + "".join(f"{values[name]:>17.4f}" if name in values else f"{'':>17}" for name in columns)
        for model, values in metrics.items()
    ]
    return "\n".join([header, *rows])


class RankedLists:
    """Top lists of evaluated users judged against their relevant held-out videos, at any cut-off ≤ their length."""

    def __init__(self, recommended: np.ndarray, scores: np.ndarray, held_out: csr_matrix):
        relevant_counts = np.diff(held_out.indptr)
        rows = relevant_counts > 0
        self.recommended, self.valid = recommended[rows], scores[rows] > FILTERED_SCORE
        self.relevant_counts = relevant_counts[rows]
        held_out = held_out[rows]
        user_of = np.repeat(np.arange(len(self.recommended)), self.recommended.shape[1])
        looked_up = held_out[user_of, np.where(self.valid, self.recommended, 0).ravel()]
        self.hits = (np.asarray(looked_up).reshape(self.recommended.shape) > 0) & self.valid

    @property
    def users(self) -> int:
        return len(self.recommended)

    def metrics(self, k: int) -> dict[str, float]:
        if self.users == 0:
            return dict.fromkeys(METRICS, 0.0) | {"users": 0}
        hits = self.hits[:, :k]
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        ideal_hits = np.minimum(self.relevant_counts, k)
        ideal = np.cumsum(discounts)[ideal_hits - 1]
        hit_counts = hits.sum(axis=1)
        precision_at_hit = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
        return {
            "precision": float(np.mean(hit_counts / k)),
            "recall": float(np.mean(hit_counts / self.relevant_counts)),
            "ndcg": float(np.mean((hits * discounts).sum(axis=1) / ideal)),
            "map": float(np.mean((precision_at_hit * hits).sum(axis=1) / ideal_hits)),
            "users": self.users,
        }

    def curves(self, max_k: int) -> dict[str, list[float]]:
        """NDCG@k and recall@k for k = 1..max_k, from one pass of cumulative sums."""
        if self.users == 0:
            return {name: [0.0] * max_k for name in CURVE_METRICS}
        ks = np.arange(1, max_k + 1)
        discounts = 1.0 / np.log2(ks + 1)
        dcg = np.cumsum(self.hits[:, :max_k] * discounts, axis=1)
        ideal_hits = np.minimum(self.relevant_counts[:, None], ks[None, :])
        ideal = np.cumsum(discounts)[ideal_hits - 1]
        recall = np.cumsum(self.hits[:, :max_k], axis=1) / self.relevant_counts[:, None]
        return {"ndcg": (dcg / ideal).mean(axis=0).tolist(), "recall": recall.mean(axis=0).tolist()}

    def coverage(self, k: int, videos: int) -> float:
        """Share of the catalogue that appears in at least one top-k list."""
        shown = self.recommended[:, :k][self.valid[:, :k]]
        return float(len(np.unique(shown)) / max(1, videos))

    def popular_share(self, k: int, video_popularity: np.ndarray) -> float:
        """Share of top-k recommendations that are among the 1% most popular videos."""
        top = max(1, int(np.ceil(len(video_popularity) * POPULAR_TOP_FRACTION)))
        is_top = np.zeros(len(video_popularity), dtype=bool)
        is_top[np.argsort(-video_popularity, kind="stable")[:top]] = True
        shown = self.recommended[:, :k][self.valid[:, :k]]
        return float(is_top[shown].mean()) if len(shown) else 0.0


def ranking_metrics(recommended: np.ndarray, scores: np.ndarray, held_out: csr_matrix, k: int) -> dict[str, float]:
    """Metrics above for `recommended[i]` (video indices, best first) against row i of `held_out`."""
    return RankedLists(recommended[:, :k], scores[:, :k], held_out).metrics(k)
