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
from scipy.sparse import csr_matrix

from features.feature_set import FeatureSet
from vrmodels.model.manifest import BASELINES
from vrmodels.model.popularity import clicks, engagement
from vrmodels.model.ranking import RANKINGS
from vrmodels.model.ranking.als import AlsRanking
from vrmodels.model.topk import FILTERED_SCORE, CatalogueTopK, filtered_topk
from vrmodels.training.als import TrainParams, fit_als
from vrmodels.training.relevance import Relevance

log = logging.getLogger(__name__)

K = 10  # the cut-off of the quality gate and of tuning
CURVE_MAX_K = 50  # the report's curves run k = 1..CURVE_MAX_K
MAX_EVALUATED_USERS = 20_000
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
    *,
    params: TrainParams,
    max_k: int = K,
    show_progress: bool = False,
) -> SplitEvaluation:
    """ALS fitted on `train_rows` only, then judged (`judge`) on the relevant held-out pairs."""
    train = features.to_csr(train_rows)
    model = fit_als(train, params, show_progress)
    held_out = features.indicator(relevant_rows)
    return judge(train, held_out, model.user_factors, item_factors=model.item_factors, max_k=max_k, seed=params.seed)


def judge(
    train: csr_matrix,
    held_out: csr_matrix,
    user_factors: np.ndarray,
    *,
    item_factors: np.ndarray,
    max_k: int = K,
    seed: int = 0,
) -> SplitEvaluation:
    """Factors fitted on `train` (by any trainer) and the popularity baselines, judged on `held_out`.

    Recommendations exclude the user's training videos, exactly as serving does (vrmodels.model.catalogue).
    most_popular ranks by distinct users (clicks); most_watched by engagement, as the serving fallback does.
    """
    users = evaluated_users(held_out, seed)
    every = np.ones(train.shape[1], dtype=bool)
    lists = {
        AlsRanking.kind: catalogue_lists(
            np.asarray(user_factors)[users], item_factors, train[users], k=max_k, allowed=every
        ),
        "most_popular": popularity_lists(clicks(train), train[users], max_k, allowed=every),
        "most_watched": popularity_lists(engagement(train), train[users], max_k, allowed=every),
    }
    return score_lists(lists, held_out[users], clicks(train), max_k=max_k)


def evaluated_users(held_out: csr_matrix, seed: int, among: np.ndarray | None = None) -> np.ndarray:
    """Users with a relevant held-out pair (`among` these when given), at most MAX_EVALUATED_USERS, seeded:
    scoring every user would cost more than the fits themselves."""
    users = np.flatnonzero(np.diff(held_out.indptr))
    if among is not None:
        users = users[among[users]]
    if len(users) > MAX_EVALUATED_USERS:
        users = np.sort(np.random.default_rng(seed).choice(users, MAX_EVALUATED_USERS, replace=False))
    return users


def catalogue_lists(
    vectors: np.ndarray, item_factors: np.ndarray, filters: csr_matrix, *, k: int, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's top k of the `allowed` videos by inner product, none of its `filters` row."""
    subset = np.flatnonzero(allowed)
    topk = CatalogueTopK(np.ascontiguousarray(item_factors[subset], dtype=np.float32))
    ids, scores = topk.top_k(vectors, filters[:, subset] if len(subset) < len(allowed) else filters, k)
    return subset[ids], scores


def popularity_lists(
    scores: np.ndarray, filters: csr_matrix, k: int, *, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The top k of the `allowed` videos by `scores` for every row, excluding that row's `filters`."""
    subset = np.flatnonzero(allowed)
    ids, ranked = rank_by_popularity(scores[subset], filters[:, subset] if len(subset) < len(allowed) else filters, k)
    return subset[ids], ranked


def padded_lists(ranked: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length ranked lists (videos, scores) as the fixed-width arrays RankedLists reads (FILTERED_SCORE
    pads); a longer list keeps its first k."""
    ids = np.zeros((len(ranked), k), dtype=np.int64)
    padded = np.full((len(ranked), k), -np.finfo(np.float32).max, dtype=np.float32)
    for row, (row_ids, row_scores) in enumerate(ranked):
        width = min(len(row_ids), k)
        ids[row, :width], padded[row, :width] = row_ids[:width], row_scores[:width]
    return ids, padded


def score_lists(
    lists: dict[str, tuple[np.ndarray, np.ndarray]],
    held_out: csr_matrix,
    video_popularity: np.ndarray,
    *,
    max_k: int = K,
    fresh: np.ndarray | None = None,
) -> SplitEvaluation:
    """Metrics and curves of each model's lists (rows: the evaluated users) against their held-out rows; with
    `fresh` (per video), NDCG@K and recall@K on the held-out watches of those videos alone too."""
    metrics, curves = {}, {}
    fresh_rows = held_out.multiply(csr_matrix(fresh.astype(np.float32)[None, :])).tocsr() if fresh is not None else None
    for name, (ids, scores) in lists.items():
        ranked = RankedLists(ids, scores, held_out)
        metrics[name] = ranked.metrics(K) | {
            "coverage": ranked.coverage(K, held_out.shape[1]),
            "popular_share": ranked.popular_share(K, video_popularity),
        }
        if fresh_rows is not None:
            fresh_metrics = RankedLists(ids, scores, fresh_rows).metrics(K)
            metrics[name] |= {f"{metric}_fresh": fresh_metrics[metric] for metric in ("ndcg", "recall", "users")}
        if max_k > K:
            curves[name] = ranked.curves(max_k)
    return SplitEvaluation(metrics, curves)


def quality_gate(
    metrics: dict[str, dict[str, float]], relevance: Relevance, *, allow_worse: bool, kind: str = AlsRanking.kind
) -> None:
    """Refuse (QualityGateError) unless the model of `kind` beats the best baseline on NDCG@K; with allow_worse,
    warn instead."""
    model = kind
    baseline = max((name for name in BASELINES if name in metrics), key=lambda name: metrics[name]["ndcg"])
    if metrics[model]["ndcg"] > metrics[baseline]["ndcg"]:
        return
    message = (
        f"quality gate: {RANKINGS[model].label} NDCG@{K} {metrics[model]['ndcg']:.4f} does not beat "
        f"{baseline.replace('_', '-')} {metrics[baseline]['ndcg']:.4f} ({relevance.describe()})"
    )
    if not allow_worse:
        raise QualityGateError(message + "; nothing shipped (use --allow-worse to ship anyway)", metrics)
    log.warning("%s; shipping because --allow-worse was given", message)


def in_session_gate(metrics: dict[str, dict[str, float]], *, allow_worse: bool, kind: str) -> None:
    """Refuse (QualityGateError) a model that, judged in session, does not beat watched-next alone there (the
    unpersonalised "what viewers watched next"); with allow_worse, warn instead."""
    if kind not in metrics or "watched_next" not in metrics:
        return
    ours, theirs = metrics[kind]["ndcg"], metrics["watched_next"]["ndcg"]
    if ours > theirs:
        return
    message = (
        f"quality gate: in session, {RANKINGS[kind].label} NDCG@{K} {ours:.4f} does not beat watched-next alone "
        f"{theirs:.4f}"
    )
    if not allow_worse:
        raise QualityGateError(message + "; nothing shipped (use --allow-worse to ship anyway)", metrics)
    log.warning("%s; shipping because --allow-worse was given", message)


def rank_by_popularity(scores: np.ndarray, user_items: csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k most popular videos per row of `user_items`, excluding that row's videos."""
    return filtered_topk(
        scores.reshape(-1, 1).astype(np.float32),
        np.ones((user_items.shape[0], 1), dtype=np.float32),
        k,
        filters=user_items,
    )


def metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """The metrics as a fixed-width table, for the CLIs to print."""
    columns = ("precision", "recall", "ndcg", "map", "coverage", "popular_share")
    if any("ndcg_fresh" in values for values in metrics.values()):
        columns += ("ndcg_fresh",)
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
        self.hits = np.zeros(self.recommended.shape, dtype=bool)
        if self.users:
            held_out = held_out[rows]
            user_of = np.repeat(np.arange(len(self.recommended)), self.recommended.shape[1])
            looked_up = held_out[user_of, np.where(self.valid, self.recommended, 0).ravel()]
            self.hits = (np.asarray(looked_up).reshape(self.recommended.shape) > 0) & self.valid

    @property
    def users(self) -> int:
        return len(self.recommended)

    def _hits(self, k: int) -> np.ndarray:
        """The first k columns of hits, padded with misses where the lists are shorter (a small catalogue)."""
        hits = self.hits[:, :k]
        return np.pad(hits, ((0, 0), (0, k - hits.shape[1]))) if hits.shape[1] < k else hits

    def metrics(self, k: int) -> dict[str, float]:
        if self.users == 0:
            return dict.fromkeys(METRICS, 0.0) | {"users": 0}
        hits = self._hits(k)
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
        hits = self._hits(max_k)
        dcg = np.cumsum(hits * discounts, axis=1)
        ideal_hits = np.minimum(self.relevant_counts[:, None], ks[None, :])
        ideal = np.cumsum(discounts)[ideal_hits - 1]
        recall = np.cumsum(hits, axis=1) / self.relevant_counts[:, None]
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


def ranking_metrics(recommended: np.ndarray, scores: np.ndarray, held_out: csr_matrix, *, k: int) -> dict[str, float]:
    """Metrics above for `recommended[i]` (video indices, best first) against row i of `held_out`."""
    return RankedLists(recommended[:, :k], scores[:, :k], held_out).metrics(k)
