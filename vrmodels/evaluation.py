"""Temporal hold-out and top-k ranking metrics, shared by ALS and the most-popular baseline.

Definitions (binary relevance, k = cut-off, R = a user's relevant held-out videos, see `vrmodels.relevance`):
precision@k = hits / k; recall@k = hits / |R|; NDCG@k = DCG / ideal DCG over min(k, |R|) hits;
MAP@k = sum of precision at each hit / min(k, |R|). Averaged over users with at least one relevant held-out
video. Beyond accuracy: catalogue coverage (share of all videos that appear in some top-k list) and the share
of recommendations drawn from the 1% most popular videos (how much a model merely echoes popularity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from implicit.cpu.topk import topk
from scipy.sparse import csr_matrix

if TYPE_CHECKING:
    import pandas as pd

from vrmodels.recommend import FILTERED_SCORE

METRICS = ("precision", "recall", "ndcg", "map")
CURVE_METRICS = ("ndcg", "recall")
POPULAR_TOP_FRACTION = 0.01


def temporal_split(interactions: pd.DataFrame, test_fraction: float = 0.2) -> np.ndarray:
    """Boolean mask of held-out rows: each user's latest `test_fraction` of videos.

    Users with n ≥ 2 videos hold out max(1, floor(n × test_fraction)); a user with one video keeps it
    for training. Ties in time are broken by video index so the split is deterministic.
    """
    order = np.lexsort(
        (
            interactions["video_index"].to_numpy(),
            interactions["last_timestamp"].to_numpy(),
            interactions["user_index"].to_numpy(),
        )
    )
    users = interactions["user_index"].to_numpy()[order]
    counts = np.bincount(users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(len(users)) - starts[users]
    n = counts[users]
    held_out = np.where(n >= 2, np.maximum(1, np.floor(n * test_fraction)), 0)
    mask = np.zeros(len(users), dtype=bool)
    mask[order] = position >= n - held_out
    return mask


@dataclass(frozen=True)
class Holdout:
    """A temporal split of interaction rows, judged with a relevance mask."""

    train_rows: np.ndarray
    test_rows: np.ndarray
    """Every held-out pair, relevant or not: none of them reaches the training matrix."""
    relevant_rows: np.ndarray
    """The held-out pairs that count as hits (a subset of test_rows)."""


def holdout(
    interactions: pd.DataFrame, relevant: np.ndarray, test_fraction: float, within: np.ndarray | None = None
) -> Holdout:
    """Split the rows `within` a mask (default: all) by time, per user; the rest of the rows are in neither part."""
    within = np.ones(len(interactions), dtype=bool) if within is None else within
    rows = np.flatnonzero(within)
    test_rows = np.zeros(len(interactions), dtype=bool)
    test_rows[rows[temporal_split(interactions.iloc[rows], test_fraction)]] = True
    return Holdout(within & ~test_rows, test_rows, test_rows & relevant)


def popularity(user_items: csr_matrix) -> np.ndarray:
    """Distinct users per video: how often it was clicked, satisfying or not."""
    return np.bincount(user_items.indices, minlength=user_items.shape[1]).astype(np.float32)


def engagement(user_items: csr_matrix) -> np.ndarray:
    """Sum of confidence per video: how much it was watched through, liked and shared (skips count for little)."""
    return np.asarray(user_items.sum(axis=0), dtype=np.float32).ravel()


def rank_by_popularity(scores: np.ndarray, user_items: csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k most popular videos per row of `user_items`, excluding that row's videos."""
    ids, ranked_scores = topk(
        scores.reshape(-1, 1).astype(np.float32),
        np.ones((user_items.shape[0], 1), dtype=np.float32),
        k,
        filter_query_items=user_items,
        num_threads=0,
    )
    return ids, ranked_scores


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
