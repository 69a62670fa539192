"""What a model knows of its videos beside their factors, as of its data end: the catalogue tables.

Written when a model is trained with a catalogue (format 5 on), memory-mapped at serving like the factors:

    video_channels.npy, video_categories.npy   int32 per video: channel and category codes (-1 not known)
    video_published.npy                        float64 per video: publication time, epoch seconds (NaN not known)
    video_features.npy                         float32 videos × VIDEO_FEATURES: what the ranker reads of a video
    trending.npy                               int32: the most watched-through videos of the last RECENT_DAYS
    channel_fresh_{indptr,videos}.npy          per channel, its uploads of the last FRESH_DAYS, newest first
    category_fresh_{indptr,videos}.npy         per category, its uploads of the last RECENT_DAYS, most viewed first

Every figure is computed as of the model's data end (its latest event), never from the wall clock, so the same
model answers the same way tomorrow. Category names are in the manifest (`catalogue.categories`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vrmodels.model.indices import slice_positions
from vrmodels.model.manifest import CatalogueEntry

VIDEO_FEATURES = (
    "log_views",  # log1p(distinct users who watched it)
    "log_views_recent",  # the same over the last RECENT_DAYS
    "satisfying_rate",  # share of its viewers who watched it through (smoothed)
    "channel_satisfying_rate",  # the same for its channel
    "age_days",  # days since publication
    "log_duration",
    "category",  # the category code, read as categorical
)
RECENT_DAYS = 3
FRESH_DAYS = 7
FILES = (
    "video_channels.npy",
    "video_categories.npy",
    "video_published.npy",
    "video_features.npy",
    "trending.npy",
    "channel_fresh_indptr.npy",
    "channel_fresh_videos.npy",
    "category_fresh_indptr.npy",
    "category_fresh_videos.npy",
)


class VideoTablesError(ValueError):
    """Tables that do not fit the model's videos; the message names the file."""


@dataclass
class VideoTables:
    channels: np.ndarray
    categories: np.ndarray
    published: np.ndarray
    features: np.ndarray
    trending: np.ndarray
    channel_fresh: tuple[np.ndarray, np.ndarray]
    """CSR (indptr, videos): channel code → its recent uploads."""
    category_fresh: tuple[np.ndarray, np.ndarray]
    category_names: list[str]
    data_end: int

    @property
    def videos(self) -> int:
        return len(self.channels)

    def available(self) -> np.ndarray:
        """Per video: published before the data end, or of unknown date (later ones must not be served yet)."""
        with np.errstate(invalid="ignore"):
            return ~(self.published >= self.data_end)

    def unavailable(self) -> np.ndarray:
        """Sorted int32 indices of the videos not yet published at the data end."""
        return np.flatnonzero(~self.available()).astype(np.int32)

    def manifest_entry(self) -> CatalogueEntry:
        """What the manifest says of these tables."""
        return CatalogueEntry(
            categories=self.category_names,
            channels=len(self.channel_fresh[0]) - 1,
            data_end=self.data_end,
            video_features=list(VIDEO_FEATURES),
            recent_days=RECENT_DAYS,
            fresh_days=FRESH_DAYS,
        )

    def save(self, directory: Path) -> tuple[str, ...]:
        arrays = (
            self.channels.astype(np.int32),
            self.categories.astype(np.int32),
            self.published.astype(np.float64),
            np.ascontiguousarray(self.features, dtype=np.float32),
            self.trending.astype(np.int32),
            self.channel_fresh[0].astype(np.int64),
            self.channel_fresh[1].astype(np.int32),
            self.category_fresh[0].astype(np.int64),
            self.category_fresh[1].astype(np.int32),
        )
        for name, array in zip(FILES, arrays):
            np.save(directory / name, array)
        return FILES

    @classmethod
    def load(cls, directory: Path, entry: CatalogueEntry, videos: int, *, mmap: bool = True) -> VideoTables:
        """Memory-mapped and checked against the model's video count and the manifest's `catalogue` entry."""
        mode = "r" if mmap else None
        arrays = {name: np.asarray(np.load(directory / name, mmap_mode=mode)) for name in FILES}
        for name in FILES[:4]:
            if len(arrays[name]) != videos:
                raise VideoTablesError(f"{directory / name}: {len(arrays[name])} rows, the model has {videos} videos")
        if arrays["video_features.npy"].shape[1:] != (len(VIDEO_FEATURES),):
            raise VideoTablesError(f"{directory / 'video_features.npy'}: expected {len(VIDEO_FEATURES)} columns")
        channels, categories = len(arrays["channel_fresh_indptr.npy"]) - 1, len(entry.categories)
        checks = (
            ("video_channels.npy", channels),
            ("video_categories.npy", categories),
            ("trending.npy", videos),
            ("channel_fresh_videos.npy", videos),
            ("category_fresh_videos.npy", videos),
        )
        for name, bound in checks:
            values = arrays[name]
            if len(values) and (values.min() < -1 or values.max() >= bound):
                raise VideoTablesError(f"{directory / name}: codes outside -1..{bound - 1}")
        for name, rows, videos_file in (
            ("channel_fresh_indptr.npy", channels, "channel_fresh_videos.npy"),
            ("category_fresh_indptr.npy", categories, "category_fresh_videos.npy"),
        ):
            indptr = arrays[name]
            if len(indptr) != rows + 1 or indptr[-1] != len(arrays[videos_file]) or (np.diff(indptr) < 0).any():
                raise VideoTablesError(f"{directory / name}: does not index {videos_file} for {rows} rows")
        return cls(
            channels=arrays["video_channels.npy"],
            categories=arrays["video_categories.npy"],
            published=arrays["video_published.npy"],
            features=arrays["video_features.npy"],
            trending=arrays["trending.npy"],
            channel_fresh=(arrays["channel_fresh_indptr.npy"], arrays["channel_fresh_videos.npy"]),
            category_fresh=(arrays["category_fresh_indptr.npy"], arrays["category_fresh_videos.npy"]),
            category_names=list(entry.categories),
            data_end=entry.data_end,
        )


def rows_of(csr: tuple[np.ndarray, np.ndarray], keys: np.ndarray) -> np.ndarray:
    """The concatenated rows of a (indptr, values) table for the given keys (codes; -1 skipped)."""
    indptr, values = csr
    keys = keys[keys >= 0]
    if not len(keys):
        return values[:0]
    starts, lengths = indptr[keys], indptr[keys + 1] - indptr[keys]
    return values[slice_positions(starts, lengths)]
