"""What a query lets through: not excluded, available, in its categories, published after its time, and at most
`max_per_channel` videos of one channel. Applied to any ranked list (precomputed, scored, popular) in the same
way, so every path narrows alike.
"""

from __future__ import annotations

import numpy as np

from vrmodels.model.videos import VideoTables


class Narrowing:
    def __init__(
        self,
        excluded: np.ndarray,
        allowed: np.ndarray | None = None,
        *,
        channels: np.ndarray | None = None,
        max_per_channel: int | None = None,
        unknown_categories: list[str] | None = None,
    ):
        """`excluded`: sorted video indices; `allowed`: per video, or None for every video; `channels`: per video
        channel codes (-1 unknown: such videos are not capped) when there is a `max_per_channel`."""
        self.excluded = excluded
        self.allowed = allowed
        self.channels = channels
        self.max_per_channel = max_per_channel
        self.unknown_categories = unknown_categories or []

    @classmethod
    def of(
        cls,
        excluded: np.ndarray,
        tables: VideoTables | None,
        *,
        category_codes: dict[str, int],
        categories: list[str] | None,
        published_after: float | None,
        max_per_channel: int | None,
    ) -> Narrowing:
        """From a query's fields (the caller checked that `tables` exist when a field needs them); `excluded` holds
        the videos no query may get (the query's exclusions and the unavailable)."""
        allowed, unknown = None, []
        if tables is not None and (categories is not None or published_after is not None):
            allowed = tables.available()
            if categories is not None:
                codes = [category_codes[name] for name in categories if name in category_codes]
                unknown = [name for name in categories if name not in category_codes]
                allowed = allowed & np.isin(tables.categories, codes)
            if published_after is not None:
                with np.errstate(invalid="ignore"):
                    allowed = allowed & (tables.published > published_after)
        channels = tables.channels if tables is not None and max_per_channel is not None else None
        return cls(excluded, allowed, channels=channels, max_per_channel=max_per_channel, unknown_categories=unknown)

    @property
    def restricts(self) -> bool:
        """Whether only part of the catalogue may be answered (categories, publication time)."""
        return self.allowed is not None

    def allowed_videos(self, videos: int) -> np.ndarray:
        """Every video index (of `videos`) it lets through, sorted, before the per-channel cap."""
        candidates = np.flatnonzero(self.allowed) if self.allowed is not None else np.arange(videos)
        return np.setdiff1d(candidates, self.excluded, assume_unique=True).astype(np.int32)

    def pick(self, ranked: np.ndarray, k: int) -> tuple[np.ndarray, bool]:
        """Positions in `ranked` (video indices, best first) of the first k it lets through, and whether k were
        found."""
        keep = np.ones(len(ranked), dtype=bool)
        if len(self.excluded):
            keep &= ~np.isin(ranked, self.excluded)
        if self.allowed is not None:
            keep &= self.allowed[ranked]
        positions = np.flatnonzero(keep)
        if self.max_per_channel is not None and self.channels is not None:
            positions = _capped(positions, self.channels[ranked[positions]], self.max_per_channel, k)
        return positions[:k], len(positions) >= k


def _capped(positions: np.ndarray, channels: np.ndarray, cap: int, k: int) -> np.ndarray:
    """The positions whose channel has not yet been seen `cap` times before them (unknown channels never count)."""
    chosen, seen = [], {}
    for position, channel in zip(positions.tolist(), channels.tolist()):
        if channel >= 0:
            if seen.get(channel, 0) >= cap:
                continue
            seen[channel] = seen.get(channel, 0) + 1
        chosen.append(position)
        if len(chosen) == k:
            break
    return np.asarray(chosen, dtype=np.int64)
