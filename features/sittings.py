"""Sittings: a viewer's events split where they stop watching for a while, and the watches each holds, in order.

A sitting ends where a user's next event comes more than `gap` after the last one (default 30 minutes, as web
analytics end a session). Within a sitting, a *watch* is a video started: a `view` (or a `rating`, for rating
logs; every event when the log has neither); the `complete`, `like` and `share` events that follow belong to the
watch of their video in the same sitting. Each watch carries its best completion and whether any of its events
was a satisfying one, so training can weigh what followed what by how it was watched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_GAP_MINUTES = 30
START_EVENTS = ("view", "rating")  # events that start a watch; the others follow one


def sitting_ids(user: np.ndarray, timestamp: np.ndarray, gap_seconds: float) -> np.ndarray:
    """Per event (any order): the number of its sitting, counted over all users (a user's sittings numbered in time
    order, users one after another)."""
    order = np.lexsort((timestamp, user))
    user, timestamp = user[order], timestamp[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (user[1:] != user[:-1]) | (np.diff(timestamp) > gap_seconds)
    ids = np.empty(len(order), dtype=np.int32)
    ids[order] = np.cumsum(new) - 1
    return ids


@dataclass(frozen=True)
class Watches:
    """Every watch of a log, sorted by sitting then time (so by user, then time)."""

    sitting: np.ndarray  # int32
    user: np.ndarray  # int64 user index
    video: np.ndarray  # int64 video index
    timestamp: np.ndarray  # int64: when it started
    completion: np.ndarray  # float32: its best completion, NaN when no event carried watch time
    satisfying_event: np.ndarray  # bool: a complete/like/share of the same video in the same sitting

    def __len__(self) -> int:
        return len(self.sitting)

    def position(self) -> np.ndarray:
        """Per watch: how many watches of its sitting came before it."""
        starts = np.r_[0, np.flatnonzero(np.diff(self.sitting)) + 1] if len(self) else np.zeros(0, np.int64)
        first = np.zeros(len(self), dtype=np.int64)
        first[starts] = starts
        return np.arange(len(self)) - np.maximum.accumulate(first)

    def sizes(self) -> np.ndarray:
        """Watches per sitting, for the sittings that hold any."""
        return np.diff(np.r_[0, np.flatnonzero(np.diff(self.sitting)) + 1, len(self)]) if len(self) else self.sitting


def watches(
    *,
    sitting: np.ndarray,
    user: np.ndarray,
    video: np.ndarray,
    timestamp: np.ndarray,
    event_names: list[str],
    event_codes: np.ndarray,
    completion: np.ndarray,
    satisfying_events: tuple[str, ...],
) -> Watches:
    """The watches of events given column by column (any order)."""
    names = np.asarray(event_names, dtype=object)
    starting = np.isin(names, START_EVENTS)
    if not starting.any():
        starting[:] = True
    is_start = starting[event_codes] if len(event_codes) else np.zeros(0, dtype=bool)
    satisfying = np.isin(names, satisfying_events)[event_codes] if len(event_codes) else is_start
    # Events of the same video in the same sitting, start events first: a watch, and what follows it.
    order = np.lexsort((~is_start, timestamp, video, sitting))
    key_sitting, key_video = sitting[order], video[order]
    group = np.ones(len(order), dtype=bool)
    group[1:] = (key_sitting[1:] != key_sitting[:-1]) | (key_video[1:] != key_video[:-1]) | is_start[order][1:]
    group_of = np.cumsum(group) - 1
    groups = int(group_of[-1]) + 1 if len(order) else 0
    best = np.full(groups, np.nan, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        np.fmax.at(best, group_of, completion[order])
    liked = np.zeros(groups, dtype=bool)
    np.logical_or.at(liked, group_of, satisfying[order])
    first = order[group]
    kept = is_start[first]  # a follower with no watch of its own before it (a like with no view) is no watch
    first, best, liked = first[kept], best[kept], liked[kept]
    chronological = np.lexsort((timestamp[first], sitting[first]))
    first, best, liked = first[chronological], best[chronological], liked[chronological]
    return Watches(
        sitting=sitting[first].astype(np.int32),
        user=user[first].astype(np.int64),
        video=video[first].astype(np.int64),
        timestamp=timestamp[first].astype(np.int64),
        completion=best,
        satisfying_event=liked,
    )
