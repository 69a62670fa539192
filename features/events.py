"""Reading raw event files and checking them row by row.

Every problem is reported with the file, the 1-based data row and the column, so a bad export
can be fixed at its source instead of being guessed around.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("user_id", "video_id", "timestamp")
NUMERIC_COLUMNS = ("watch_seconds", "video_duration", "rating")
OPTIONAL_COLUMNS = ("event", *NUMERIC_COLUMNS)


class EventsFileError(ValueError):
    """An events file that cannot be used as it is; the message names file, row and column."""

    def __init__(self, path: Path | str, problem: str, row: int | None = None, column: str | None = None):
        where = [str(path)]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {problem}")
        self.path, self.row, self.column = str(path), row, column


def read_events(path: Path | str) -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet events file and validate it.

    Returns a frame with `user_id`, `video_id` (str), `timestamp` (int64 epoch seconds) and
    whichever optional columns were present (`event` as str, the numeric ones as float64).
    """
    path = Path(path)
    if not path.exists():
        raise EventsFileError(path, "file not found")
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            # Arrow dtypes keep an integer column with empty cells intact (NA) instead of failing the read.
            frame = pd.read_csv(
                path, engine="pyarrow", dtype_backend="pyarrow", dtype={"user_id": str, "video_id": str}
            )
    except (ValueError, OSError) as exc:  # pyarrow parse errors are ValueError subclasses
        raise EventsFileError(path, f"cannot be read as events: {exc}") from exc
    return validate_events(frame, path)


def read_movielens(path: Path | str) -> pd.DataFrame:
    """Adapt MovieLens `u.data` (user, item, rating, timestamp; tab-separated, no header)."""
    path = Path(path)
    if not path.exists():
        raise EventsFileError(path, "file not found")
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
    """Check columns and types; raise EventsFileError on the first bad row of the first bad column."""
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise EventsFileError(
            path, f"missing required column(s) {', '.join(repr(c) for c in missing)}; found {list(frame.columns)}"
        )
    frame = frame[[c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in frame.columns]]
    out = pd.DataFrame(index=frame.index)
    for column in ("user_id", "video_id"):
        out[column] = _ids(frame[column], column, path)
    out["timestamp"] = _timestamps(_numpy_backed(frame["timestamp"]), path)
    if "event" in frame.columns:
        events = frame["event"]
        _fail_on_first(events.isna().to_numpy(), path, "event", "empty event")
        out["event"] = events.astype(str).str.strip().str.lower()
    for column in NUMERIC_COLUMNS:
        if column in frame.columns:
            out[column] = _numbers(_numpy_backed(frame[column]), column, path)
    if "watch_seconds" in out.columns:
        _check_durations(out, path)
    return out.reset_index(drop=True)


def _check_durations(events: pd.DataFrame, path: Path | str) -> None:
    """Watch time means nothing without the video's length: completion is watch_seconds / video_duration."""
    watched = events["watch_seconds"].notna().to_numpy()
    if not watched.any():
        return
    if "video_duration" not in events.columns:
        raise EventsFileError(
            path, "column 'watch_seconds' needs a 'video_duration' column (completion = watch_seconds / video_duration)"
        )
    duration = events["video_duration"].to_numpy()
    _fail_on_first(watched & np.isnan(duration), path, "video_duration", "missing where watch_seconds is given")
    _fail_on_first(watched & (duration == 0), path, "video_duration", "must be positive where watch_seconds is given")


def _ids(values: pd.Series, column: str, path: Path | str) -> pd.Series:
    _fail_on_first(values.isna().to_numpy(), path, column, "empty id")
    ids = values.astype(str)
    _fail_on_first((ids.str.strip() == "").to_numpy(), path, column, "empty id")
    return ids


def _timestamps(values: pd.Series, path: Path | str) -> pd.Series:
    """Epoch seconds, or ISO-8601 strings converted to epoch seconds (UTC when no zone is given)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values if values.dt.tz is None else values.dt.tz_convert("UTC").dt.tz_localize(None)
        _fail_on_first(parsed.isna().to_numpy(), path, "timestamp", "empty timestamp")
        return parsed.astype("datetime64[s]").astype(np.int64)
    if pd.api.types.is_numeric_dtype(values):
        _fail_on_first(values.isna().to_numpy(), path, "timestamp", "empty timestamp")
        return values.astype(np.int64)
    numeric = pd.to_numeric(values, errors="coerce")
    if not numeric.isna().any():
        return numeric.astype(np.int64)
    not_numeric = numeric.isna().to_numpy()
    parsed = pd.to_datetime(values[not_numeric], errors="coerce", utc=True, format="ISO8601")
    bad = np.zeros(len(values), dtype=bool)
    bad[not_numeric] = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise EventsFileError(
            path,
            f"unparseable timestamp {values.iloc[row]!r}; use epoch seconds or ISO-8601",
            row=row + 1,
            column="timestamp",
        )
    seconds = numeric.to_numpy(np.float64, na_value=np.nan, copy=True)
    seconds[not_numeric] = parsed.dt.tz_localize(None).astype("datetime64[s]").astype(np.int64).to_numpy()
    return pd.Series(seconds.astype(np.int64), index=values.index)


def _numbers(values: pd.Series, column: str, path: Path | str) -> pd.Series:
    """Floats; an empty cell stays NaN (the signal is absent), text that is not a number is an error."""
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype(np.float64)
    else:
        numbers = pd.to_numeric(values, errors="coerce")
        bad = (numbers.isna() & values.notna() & (values.astype(str).str.strip() != "")).to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise EventsFileError(path, f"{values.iloc[row]!r} is not a number", row=row + 1, column=column)
    _fail_on_first((numbers < 0).to_numpy(), path, column, "negative value")
    return numbers


def _numpy_backed(values: pd.Series) -> pd.Series:
    """Arrow-typed columns (from the CSV reader) as NumPy: numbers as float64/int64 with NaN, text as objects."""
    if not isinstance(values.dtype, pd.ArrowDtype):
        return values
    if pd.api.types.is_numeric_dtype(values.dtype):
        if values.isna().any():
            return pd.Series(values.to_numpy(np.float64, na_value=np.nan), index=values.index)
        return pd.Series(values.to_numpy(), index=values.index)
    return pd.Series(values.to_numpy(object, na_value=None), index=values.index)


def _fail_on_first(bad: np.ndarray, path: Path | str, column: str, problem: str) -> None:
    if bad.any():
        raise EventsFileError(path, problem, row=int(np.argmax(bad)) + 1, column=column)
