"""Reading input tables and checking their columns, shared by every input kind (events, catalogue).

Every problem is reported with the file, the 1-based data row and the column, so a bad export can be fixed at its
source instead of being guessed around.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


class DataFileError(ValueError):
    """An input file (events or catalogue) that cannot be used as it is; the message names file, row and column."""

    def __init__(self, path: Path | str, problem: str, row: int | None = None, column: str | None = None):
        where = [str(path)]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {problem}")
        self.path, self.row, self.column = str(path), row, column


def read_table(path: Path, what: str, dtype: dict[str, type]) -> pd.DataFrame:
    """A CSV (optionally compressed) or Parquet file as a frame; DataFileError when it cannot be read at all."""
    if not path.exists():
        raise DataFileError(path, "file not found")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        # Arrow dtypes keep an integer column with empty cells intact (NA) instead of failing the read.
        return pd.read_csv(path, engine="pyarrow", dtype_backend="pyarrow", dtype=dtype)
    except (ValueError, OSError) as exc:  # pyarrow parse errors are ValueError subclasses
        raise DataFileError(path, f"cannot be read as {what}: {exc}") from exc


def require(frame: pd.DataFrame, columns: tuple[str, ...], path: Path | str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataFileError(
            path, f"missing required column(s) {', '.join(repr(c) for c in missing)}; found {list(frame.columns)}"
        )


def ids(values: pd.Series, column: str, path: Path | str, allow_missing: bool = False) -> pd.Series:
    """Non-empty strings; with `allow_missing`, an empty cell stays None."""
    values = numpy_backed(values)
    missing = values.isna().to_numpy()
    if not allow_missing:
        fail_on_first(missing, path, column, "empty id")
    text = values.astype(str)
    fail_on_first(((text.str.strip() == "").to_numpy() & ~missing), path, column, "empty id")
    return text.astype(object).where(~missing, None) if allow_missing else text


def timestamps(values: pd.Series, column: str, path: Path | str, allow_missing: bool = False) -> pd.Series:
    """Epoch seconds, or ISO-8601 strings converted to epoch seconds (UTC when no zone is given): int64, or
    float64 with NaN for empty cells when `allow_missing`."""
    values = numpy_backed(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values if values.dt.tz is None else values.dt.tz_convert("UTC").dt.tz_localize(None)
        seconds = (parsed - pd.Timestamp(0)).dt.total_seconds().floordiv(1)
        return _complete(seconds, column, path, allow_missing)
    if pd.api.types.is_numeric_dtype(values):
        return _complete(values.astype(np.float64), column, path, allow_missing)
    empty = (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()
    numeric = pd.to_numeric(values.where(~empty), errors="coerce")
    not_numeric = numeric.isna().to_numpy() & ~empty
    parsed = pd.to_datetime(values[not_numeric], errors="coerce", utc=True, format="ISO8601")
    bad = np.zeros(len(values), dtype=bool)
    bad[not_numeric] = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataFileError(
            path, f"unparseable timestamp {values.iloc[row]!r}; use epoch seconds or ISO-8601", row + 1, column
        )
    seconds = numeric.to_numpy(np.float64, na_value=np.nan, copy=True)
    seconds[not_numeric] = parsed.dt.tz_localize(None).astype("datetime64[s]").astype(np.int64).to_numpy()
    return _complete(pd.Series(seconds, index=values.index), column, path, allow_missing)


def _complete(seconds: pd.Series, column: str, path: Path | str, allow_missing: bool) -> pd.Series:
    if allow_missing:
        return seconds.astype(np.float64)
    fail_on_first(seconds.isna().to_numpy(), path, column, "empty timestamp")
    return seconds.astype(np.int64)


def numbers(values: pd.Series, column: str, path: Path | str) -> pd.Series:
    """Floats; an empty cell stays NaN (the signal is absent), text that is not a number is an error."""
    values = numpy_backed(values)
    if pd.api.types.is_numeric_dtype(values):
        result = values.astype(np.float64)
    else:
        result = pd.to_numeric(values, errors="coerce")
        bad = (result.isna() & values.notna() & (values.astype(str).str.strip() != "")).to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise DataFileError(path, f"{values.iloc[row]!r} is not a number", row=row + 1, column=column)
    fail_on_first((result < 0).to_numpy(), path, column, "negative value")
    return result


def numpy_backed(values: pd.Series) -> pd.Series:
    """Arrow-typed columns (from the CSV reader) as NumPy: numbers as float64/int64 with NaN, text as objects."""
    if not isinstance(values.dtype, pd.ArrowDtype):
        return values
    if pd.api.types.is_numeric_dtype(values.dtype):
        if values.isna().any():
            return pd.Series(values.to_numpy(np.float64, na_value=np.nan), index=values.index)
        return pd.Series(values.to_numpy(), index=values.index)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return pd.Series(values.to_numpy(), index=values.index)
    return pd.Series(values.to_numpy(object, na_value=None), index=values.index)


def fail_on_first(bad: np.ndarray, path: Path | str, column: str, problem: str) -> None:
    if bad.any():
        raise DataFileError(path, problem, row=int(np.argmax(bad)) + 1, column=column)
