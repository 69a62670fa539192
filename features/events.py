"""Reading raw event files and checking them row by row (the file, row and column of the first problem)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.columns import DataFileError, fail_on_first, ids, numbers, read_table, require, timestamps

REQUIRED_COLUMNS = ("user_id", "video_id", "timestamp")
NUMERIC_COLUMNS = ("watch_seconds", "video_duration", "rating")
RECOMMENDATION_ID = "recommendation_id"
"""Optional: the recommendationId of the list the watch came from, as the platform sends it back (empty for a
watch that followed no list). Read for attribution (monitoring.attribution); training ignores it."""
OPTIONAL_COLUMNS = ("event", *NUMERIC_COLUMNS, RECOMMENDATION_ID)


def read_events(path: Path | str) -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet events file and validate it.

    Returns a frame with `user_id`, `video_id` (str), `timestamp` (int64 epoch seconds) and
    whichever optional columns were present (`event` as str, the numeric ones as float64).
    """
    path = Path(path)
    return validate_events(
        read_table(path, "events", dict.fromkeys(("user_id", "video_id", RECOMMENDATION_ID), str)), path
    )


def read_movielens(path: Path | str) -> pd.DataFrame:
    """Adapt MovieLens `u.data` (user, item, rating, timestamp; tab-separated, no header)."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "file not found")
    frame = pd.read_csv(
        path,
        sep="\t",
        header=None,
        names=["user_id", "video_id", "rating", "timestamp"],
        dtype={"user_id": str, "video_id": str},
        engine="c",
    )
    frame["event"] = "rating"
    return validate_events(frame, path)


def validate_events(frame: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    """Check columns and types; raise DataFileError on the first bad row of the first bad column."""
    require(frame, REQUIRED_COLUMNS, path)
    frame = frame[[c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in frame.columns]]
    out = pd.DataFrame(index=frame.index)
    for column in ("user_id", "video_id"):
        out[column] = ids(frame[column], column, path)
    out["timestamp"] = timestamps(frame["timestamp"], "timestamp", path)
    if RECOMMENDATION_ID in frame.columns:
        out[RECOMMENDATION_ID] = ids(frame[RECOMMENDATION_ID], RECOMMENDATION_ID, path, allow_missing=True)
    if "event" in frame.columns:
        events = frame["event"]
        fail_on_first(events.isna().to_numpy(), path, "event", "empty event")
        out["event"] = events.astype(str).str.strip().str.lower()
    for column in NUMERIC_COLUMNS:
        if column in frame.columns:
            out[column] = numbers(frame[column], column, path)
    if "watch_seconds" in out.columns:
        _check_durations(out, path)
    return out.reset_index(drop=True)


def _check_durations(events: pd.DataFrame, path: Path | str) -> None:
    """Watch time means nothing without the video's length: completion is watch_seconds / video_duration."""
    watched = events["watch_seconds"].notna().to_numpy()
    if not watched.any():
        return
    if "video_duration" not in events.columns:
        raise DataFileError(
            path, "column 'watch_seconds' needs a 'video_duration' column (completion = watch_seconds / video_duration)"
        )
    duration = events["video_duration"].to_numpy()
    fail_on_first(watched & np.isnan(duration), path, "video_duration", "missing where watch_seconds is given")
    fail_on_first(watched & (duration == 0), path, "video_duration", "must be positive where watch_seconds is given")
