"""How interactions are split into a training part and a held-out part to judge a model on.

Two ways: per user (`holdout`: each user's latest 20% of videos, for logs without a notion of time worth
simulating) and in time (`window`: everything before a cut against the days after it, as a nightly retrain
lives; the default when the catalogue says when videos were published).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from features.feature_set import FeatureSet
from vrmodels.training.relevance import Relevance


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
    interactions: pd.DataFrame, relevant: np.ndarray, test_fraction: float, *, within: np.ndarray | None = None
) -> Holdout:
    """Split the rows `within` a mask (default: all) by time, per user; the rest of the rows are in neither part."""
    within = np.ones(len(interactions), dtype=bool) if within is None else within
    rows = np.flatnonzero(within)
    test_rows = np.zeros(len(interactions), dtype=bool)
    test_rows[rows[temporal_split(interactions.iloc[rows], test_fraction)]] = True
    return Holdout(within & ~test_rows, test_rows, test_rows & relevant)


DAY = 24 * 3600


@dataclass(frozen=True)
class Window:
    """A nightly retrain as it lives: trained on what happened before `cut`, judged on `[cut, end)`.

    Held-out pairs are the users' first watches of a video inside the window, of videos that existed at the cut
    (published before it, or watched before it); pairs already watched before the cut belong to training, with
    the confidence of their events before the cut only. No event at or after the cut reaches training."""

    cut: int
    end: int
    before: FeatureSet
    """The features as they were at the cut (FeatureSet.until): what the model may learn from."""
    train_rows: np.ndarray
    """Pairs with an event before the cut."""
    test_rows: np.ndarray
    """Pairs first watched in the window, of videos known at the cut."""
    relevant_rows: np.ndarray
    """The held-out pairs that count as hits, by their events inside the window."""
    known_videos: np.ndarray
    """Per video: whether it existed at the cut (only these may be recommended)."""


def window(features: FeatureSet, relevance: Relevance, cut: int, end: int) -> Window:
    interactions, events = features.interactions, features.pair_events
    first = interactions["first_timestamp"].to_numpy()
    train_rows = first < cut
    video = interactions["video_index"].to_numpy()
    known = np.zeros(len(features.video_ids), dtype=bool)
    known[video[train_rows]] = True
    if features.videos is not None:
        with np.errstate(invalid="ignore"):
            known |= features.videos["published_at"].to_numpy(np.float64) < cut
    test_rows = (first >= cut) & (first < end) & known[video]
    inside = events.subset((events.timestamp >= cut) & (events.timestamp < end))
    return Window(
        cut=cut,
        end=end,
        before=features.until(cut),
        train_rows=train_rows,
        test_rows=test_rows,
        relevant_rows=test_rows & relevance.mask(inside),
        known_videos=known,
    )


def train_matrix(window: Window) -> csr_matrix:
    """Users × videos confidences from the events before the window's cut."""
    return window.before.to_csr(window.train_rows)
