"""The session tables (vrmodels.model.sessions) of a feature set as of a time: what followed what, sitting by
sitting, and where each user's last sitting ended.

Watched next: for each watch, the watches DISTANCE_WEIGHTS places later in the same sitting add to the (earlier,
later) video pair, weighed by the distance and by how the later one was watched (a satisfying watch 1, a watch
that is neither satisfying nor an early skip PLAIN, an early skip the confidence's skip weight): what viewers
went on to enjoy counts, what they clicked and left counts little. Each video's row is then divided by its total
(the share of its weighed transitions each follower has) and cut to its FOLLOWERS best. The Spark trainer builds
the same table with Spark (vrmodels.training.spark.watched_next).
"""

from __future__ import annotations

import numpy as np

from features.confidence import ConfidenceConfig
from features.feature_set import FeatureSet
from features.sittings import DEFAULT_GAP_MINUTES, Watches
from vrmodels.model.manifest import SessionsEntry
from vrmodels.model.sessions import RECENT, SessionTables, WatchedNext
from vrmodels.training.relevance import Relevance

FOLLOWERS = 50  # a video's watched-next row: 50 held 98% of the weight on the bundled sample (docs/training.md)
DISTANCE_WEIGHTS = (1.0, 0.5)  # the next watch, and the one after it
PLAIN = 0.5  # a watch neither satisfying nor an early skip
HISTORY_HALF_LIFE_HOURS = 24.0
HISTORY_HALF_LIFE_WATCHES = 10.0
DEFAULT_UP_NEXT_BLEND = 0.5  # where nothing was held out to tune it on


def quality(watches: Watches, relevance: Relevance, confidence: ConfidenceConfig) -> np.ndarray:
    """How much a watch says the viewer wanted it: 1 satisfying, PLAIN, or the skip weight for an early skip."""
    satisfying = relevance.mask_of(watches.completion, watches.satisfying_event, np.full(len(watches), np.nan))
    with np.errstate(invalid="ignore"):
        skipped = watches.completion < confidence.skip_below
    return np.where(satisfying, 1.0, np.where(skipped, confidence.skip_weight, PLAIN))


def watched_next(
    watches: Watches, videos: int, *, relevance: Relevance, confidence: ConfidenceConfig, followers: int = FOLLOWERS
) -> WatchedNext:
    """The table of module docstring from `watches` (sorted by sitting, then time)."""
    worth = quality(watches, relevance, confidence)
    sources, targets, weights = [], [], []
    for distance, weight in enumerate(DISTANCE_WEIGHTS, start=1):
        same = watches.sitting[distance:] == watches.sitting[:-distance]
        different = watches.video[distance:] != watches.video[:-distance]
        keep = np.flatnonzero(same & different)
        sources.append(watches.video[:-distance][keep])
        targets.append(watches.video[distance:][keep])
        weights.append(weight * worth[distance:][keep])
    source, target = np.concatenate(sources), np.concatenate(targets)
    return normalised_table(source, target, np.concatenate(weights), videos=videos, followers=followers)


def normalised_table(
    source: np.ndarray, target: np.ndarray, weight: np.ndarray, *, videos: int, followers: int
) -> WatchedNext:
    """Weighed transitions summed per (source, target), each source's row divided by its total and cut to its
    `followers` heaviest, heaviest first (ties at the stored float32 precision: the lower video index, so sums
    taken in another order, as Spark takes them, cut and order the same)."""
    key = source.astype(np.int64) * videos + target
    pairs, inverse = np.unique(key, return_inverse=True)
    summed = np.bincount(inverse, weights=weight, minlength=len(pairs))
    row, column = pairs // videos, pairs % videos
    support = np.bincount(row, weights=summed, minlength=videos)
    share = (summed / np.where(support[row] > 0, support[row], 1.0)).astype(np.float32)
    order = np.lexsort((column, -share, row))
    rank = np.arange(len(order)) - np.searchsorted(row[order], row[order])
    kept = order[rank < followers]  # rows in order, each heaviest first
    indptr = np.zeros(videos + 1, dtype=np.int64)
    np.cumsum(np.bincount(row[kept], minlength=videos), out=indptr[1:])
    return WatchedNext(indptr, column[kept].astype(np.int32), share[kept], support.astype(np.float32))


def last_sittings(watches: Watches, users: int) -> np.ndarray:
    """Users × RECENT: the last videos of each user's last sitting, oldest first, -1 padding the front."""
    recent = np.full((users, RECENT), -1, dtype=np.int32)
    if not len(watches):
        return recent
    last_of_user = np.flatnonzero(np.r_[watches.user[1:] != watches.user[:-1], True])
    last_sitting = watches.sitting[last_of_user]
    for back in range(RECENT):
        index = last_of_user - back
        valid = (index >= 0) & (watches.sitting[np.maximum(index, 0)] == last_sitting)
        valid &= watches.user[np.maximum(index, 0)] == watches.user[last_of_user]
        recent[watches.user[last_of_user[valid]], RECENT - 1 - back] = watches.video[index[valid]]
    return recent


def seen(features: FeatureSet, time: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Seconds from each pair's last watch before `time` to `time`, in the order of `features.to_csr(rows)`'s
    entries."""
    interactions = features.interactions
    kept = interactions["confidence"].to_numpy() > 0
    if rows is not None:
        kept &= rows
    return (time - interactions["last_timestamp"].to_numpy()[kept]).astype(np.float32)


def before(watches: Watches, time: int) -> Watches:
    """The watches that started before `time`."""
    early = watches.timestamp < time
    return Watches(*(getattr(watches, name)[early] for name in Watches.__dataclass_fields__))


def session_tables(
    features: FeatureSet,
    *,
    relevance: Relevance,
    time: int,
    rows: np.ndarray | None = None,
    up_next_blend: float = DEFAULT_UP_NEXT_BLEND,
    watches: Watches | None = None,
) -> tuple[SessionTables, SessionsEntry]:
    """The tables of the watches before `time` (`features` as they were then; `rows`: the pairs of the training
    matrix they go with, as for `to_csr`; `watches`: the log's, when already known), and the manifest's entry."""
    subset = before(watches if watches is not None else features.watches(relevance.events), time)
    videos = len(features.video_ids)
    tables = SessionTables(
        next=watched_next(subset, videos, relevance=relevance, confidence=features.confidence_config),
        user_recent=last_sittings(subset, len(features.user_ids)),
        user_items_seen=seen(features, time, rows),
    )
    gap_minutes = features.report.get("sittings", {}).get("gap_minutes", DEFAULT_GAP_MINUTES)
    return tables, sessions_entry(gap_minutes=gap_minutes, data_end=int(time), up_next_blend=up_next_blend)


def sessions_entry(
    *, gap_minutes: float, data_end: int, up_next_blend: float = DEFAULT_UP_NEXT_BLEND, followers: int = FOLLOWERS
) -> SessionsEntry:
    """The manifest's record of session tables built by this module's rules (both trainers write it)."""
    return SessionsEntry(
        gap_minutes=gap_minutes,
        followers=followers,
        distance_weights=list(DISTANCE_WEIGHTS),
        history_half_life_hours=HISTORY_HALF_LIFE_HOURS,
        history_half_life_watches=HISTORY_HALF_LIFE_WATCHES,
        up_next_blend=up_next_blend,
        data_end=data_end,
    )
