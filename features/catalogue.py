"""Reading the video catalogue and checking it row by row: what is known of each video beside its watches.

CSV (optionally compressed) or Parquet: `video_id` required; `channel_id`, `category`, `duration_seconds` and
`published_at` (epoch seconds or ISO-8601) optional, an empty cell meaning "not known". Other columns are kept
aside (listed in the report, never read). A bad file stops with the file, row and column: a duplicate
`video_id`, a duration that is not positive, an unparseable timestamp, no `video_id` column. MovieLens' `u.item`
reads as a catalogue too (`input_format="movielens"`): its first genre as the category, its release date as the
publication time, no channels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.columns import DataFileError, fail_on_first, ids, numbers, read_table, require, timestamps

REQUIRED_COLUMNS = ("video_id",)
OPTIONAL_COLUMNS = ("channel_id", "category", "duration_seconds", "published_at")
COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
MOVIELENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def read_catalogue(path: Path | str, input_format: str = "videos") -> pd.DataFrame:
    """The validated catalogue: one row per video, COLUMNS in order (missing ones filled with "not known")."""
    path = Path(path)
    if input_format == "movielens":
        return _read_movielens_items(path)
    frame = read_table(path, "a video catalogue", {"video_id": str, "channel_id": str, "category": str})
    return validate_catalogue(frame, path)


def validate_catalogue(frame: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    """Check columns and values; raise DataFileError on the first bad row of the first bad column.

    The result has `video_id` and `channel_id`/`category` (str, None where not known), `duration_seconds`
    (float64, NaN) and `published_at` (float64 epoch seconds, NaN); `attrs["ignored_columns"]` lists the rest."""
    require(frame, REQUIRED_COLUMNS, path)
    out = pd.DataFrame(index=frame.index)
    out["video_id"] = ids(frame["video_id"], "video_id", path)
    duplicated = out["video_id"].duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        raise DataFileError(path, f"duplicate video_id {out['video_id'].iloc[row]!r}", row + 1, "video_id")
    for column in ("channel_id", "category"):
        out[column] = ids(frame[column], column, path, allow_missing=True) if column in frame else None
    out["duration_seconds"] = (
        numbers(frame["duration_seconds"], "duration_seconds", path) if ("duration_seconds" in frame) else np.nan
    )
    fail_on_first((out["duration_seconds"] == 0).to_numpy(), path, "duration_seconds", "must be positive")
    out["published_at"] = (
        timestamps(frame["published_at"], "published_at", path, allow_missing=True)
        if "published_at" in frame
        else np.nan
    )
    out = out.reset_index(drop=True)
    out.attrs["ignored_columns"] = [column for column in frame.columns if column not in COLUMNS]
    return out


def _read_movielens_items(path: Path) -> pd.DataFrame:
    """MovieLens `u.item`: id | title | release date | video release date | IMDb URL | 19 genre flags."""
    if not path.exists():
        raise DataFileError(path, "file not found")
    names = ["video_id", "title", "release_date", "video_release_date", "url", *MOVIELENS_GENRES]
    try:
        raw = pd.read_csv(path, sep="|", header=None, names=names, dtype=str, encoding="latin-1", engine="c")
    except (ValueError, OSError) as exc:
        raise DataFileError(path, f"cannot be read as MovieLens u.item: {exc}") from exc
    flags = raw[list(MOVIELENS_GENRES)].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy() > 0
    first_genre = np.where(flags.any(axis=1), np.argmax(flags, axis=1), 0)
    released = pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce")
    unparseable = released.isna().to_numpy() & raw["release_date"].notna().to_numpy()
    fail_on_first(unparseable, path, "release_date", "unparseable date; MovieLens writes 01-Jan-1995")
    frame = pd.DataFrame(
        {
            "video_id": raw["video_id"],
            "category": np.asarray(MOVIELENS_GENRES, dtype=object)[first_genre],
            "published_at": released,
        }
    )
    return validate_catalogue(frame, path)
