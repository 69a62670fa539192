"""How interactions are split into a training part and a held-out part to judge a model on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


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
    """A split of interaction rows, judged with a relevance mask."""

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
