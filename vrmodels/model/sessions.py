"""What a model knows of how viewers move from video to video, as of its data end (format 6 on, optional).

    next_indptr.npy, next_videos.npy, next_weights.npy
                   the watched-next table: per video, the videos watched next in the same sitting (at distance 1
                   or 2), each with its share of the video's weighed transitions; at most FOLLOWERS a video, each
                   row heaviest first
    next_support.npy  per video: the weighed transitions out of it (how much its row has to say)
    user_recent.npy   users × RECENT int32: each known user's last sitting, its last videos oldest first (-1 pads
                   the front)
    user_items_seen.npy  float32 per entry of the user_items matrix: seconds from that pair's last watch to the
                   data end (when a user last watched a channel: a ranking feature)

Training builds them (vrmodels.training.sessions); all are memory-mapped, like the factors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vrmodels.model.indices import slice_positions

NEXT_FILES = ("next_indptr.npy", "next_videos.npy", "next_weights.npy", "next_support.npy")
CONTEXT_FILES = ("user_recent.npy", "user_items_seen.npy")
FILES = (*NEXT_FILES, *CONTEXT_FILES)
RECENT = 3  # the last videos of a sitting a query's context holds


class SessionTablesError(ValueError):
    """Tables that do not fit the model; the message names the file."""


@dataclass
class WatchedNext:
    indptr: np.ndarray
    videos: np.ndarray
    weights: np.ndarray
    support: np.ndarray

    @property
    def size(self) -> int:
        """Videos the table has rows for."""
        return len(self.indptr) - 1

    def followers(self, sources: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(which source, follower, weight) for every follower of each of `sources` (-1: none); with `limit`, only
        each row's `limit` heaviest."""
        sources = np.asarray(sources, dtype=np.int64)
        known = np.flatnonzero(sources >= 0)
        starts, ends = self.indptr[sources[known]], self.indptr[sources[known] + 1]
        lengths = ends - starts if limit is None else np.minimum(ends - starts, limit)
        of = np.repeat(known, lengths)
        positions = slice_positions(starts, lengths)
        return of, self.videos[positions].astype(np.int64), self.weights[positions]


@dataclass
class SessionTables:
    """The watched-next table and the known users' last sittings."""

    next: WatchedNext
    user_recent: np.ndarray
    """Users × RECENT: the last videos of each user's last sitting, oldest first, -1 padding the front."""
    user_items_seen: np.ndarray
    """Seconds from each user–video pair's last watch to the data end, aligned with user_items' entries."""

    def save(self, directory: Path) -> tuple[str, ...]:
        arrays = (
            self.next.indptr.astype(np.int64),
            self.next.videos.astype(np.int32),
            self.next.weights.astype(np.float32),
            self.next.support.astype(np.float32),
            self.user_recent.astype(np.int32),
            self.user_items_seen.astype(np.float32),
        )
        for name, array in zip(FILES, arrays):
            np.save(directory / name, np.ascontiguousarray(array))
        return FILES

    @classmethod
    def load(cls, directory: Path, *, users: int, videos: int, pairs: int, mmap: bool = True) -> SessionTables:
        """Memory-mapped and checked against the model's users, videos and user_items entries."""
        mode = "r" if mmap else None
        arrays = {name: np.asarray(np.load(directory / name, mmap_mode=mode)) for name in FILES}
        indptr, followers, recent = arrays["next_indptr.npy"], arrays["next_videos.npy"], arrays["user_recent.npy"]
        indexes = len(indptr) == videos + 1 and indptr[-1] == len(followers) and bool((np.diff(indptr) >= 0).all())
        inside = not len(followers) or (followers.min() >= 0 and followers.max() < videos)
        users_fit = recent.shape == (users, RECENT) and (
            not recent.size or (recent.min() >= -1 and recent.max() < videos)
        )
        checks = (
            ("next_indptr.npy", indexes, f"does not index next_videos.npy for {videos} videos"),
            ("next_weights.npy", len(arrays["next_weights.npy"]) == len(followers), "not as long as next_videos.npy"),
            ("next_videos.npy", inside, f"video indices outside 0..{videos - 1}"),
            ("next_support.npy", len(arrays["next_support.npy"]) == videos, f"the model has {videos} videos"),
            ("user_recent.npy", users_fit, f"expected {users} × {RECENT} video indices"),
            ("user_items_seen.npy", len(arrays["user_items_seen.npy"]) == pairs, f"user_items has {pairs} entries"),
        )
        for name, fits, problem in checks:
            if not fits:
                raise SessionTablesError(f"{directory / name}: {problem}")
        return cls(
            next=WatchedNext(indptr, followers, arrays["next_weights.npy"], arrays["next_support.npy"]),
            user_recent=recent,
            user_items_seen=arrays["user_items_seen.npy"],
        )
