"""Temporal hold-out and top-k ranking metrics, shared by ALS and the most-popular baseline.

Definitions (binary relevance, k = cut-off, R = a user's held-out videos):
precision@k = hits / k; recall@k = hits / |R|; NDCG@k = DCG / ideal DCG over min(k, |R|) hits;
MAP@k = sum of precision at each hit / min(k, |R|). Averaged over users with at least one held-out video.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from implicit.cpu.topk import topk
from scipy.sparse import csr_matrix

if TYPE_CHECKING:  # the server imports this module's FILTERED_SCORE; keep pandas out of its workers
    import pandas as pd

# implicit marks filtered items with this score when fewer than k items remain.
FILTERED_SCORE = -1e38
METRICS = ("precision", "recall", "ndcg", "map")


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


def popularity(user_items: csr_matrix) -> np.ndarray:
    """Distinct users per video."""
    return np.bincount(user_items.indices, minlength=user_items.shape[1]).astype(np.float32)


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


def ranking_metrics(recommended: np.ndarray, scores: np.ndarray, held_out: csr_matrix, k: int) -> dict[str, float]:
    """Metrics above for `recommended[i]` (video indices, best first) against row i of `held_out`."""
    recommended, scores = recommended[:, :k], scores[:, :k]
    relevant_counts = np.diff(held_out.indptr)
    rows = relevant_counts > 0
    recommended, scores, held_out, relevant_counts = (
        recommended[rows],
        scores[rows],
        held_out[rows],
        relevant_counts[rows],
    )
    if len(recommended) == 0:
        return dict.fromkeys(METRICS, 0.0) | {"users": 0}

    valid = scores > FILTERED_SCORE
    user_of = np.repeat(np.arange(len(recommended)), recommended.shape[1])
    hits = np.asarray(held_out[user_of, np.where(valid, recommended, 0).ravel()]).reshape(recommended.shape) > 0
    hits &= valid

    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal_hits = np.minimum(relevant_counts, k)
    ideal = np.cumsum(discounts)[ideal_hits - 1]
    hit_counts = hits.sum(axis=1)
    precision_at_hit = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return {
        "precision": float(np.mean(hit_counts / k)),
        "recall": float(np.mean(hit_counts / relevant_counts)),
        "ndcg": float(np.mean((hits * discounts).sum(axis=1) / ideal)),
        "map": float(np.mean((precision_at_hit * hits).sum(axis=1) / ideal_hits)),
        "users": len(recommended),
    }
