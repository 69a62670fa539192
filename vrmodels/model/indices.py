"""Sorted arrays of video indices, and rows of them as a sparse matrix: the small pieces every ranking shares."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

NO_VIDEOS = np.zeros(0, dtype=np.int32)


def union(sorted_unique: np.ndarray, other: np.ndarray) -> np.ndarray:
    """np.union1d, skipped when one side is empty (the common case; union1d costs a sort even then)."""
    if not len(other):
        return sorted_unique
    return np.union1d(sorted_unique, other) if len(sorted_unique) else other


def find_sorted(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `wanted` sits in sorted `keys`, and whether it is there."""
    if not len(keys):
        return np.zeros(len(wanted), dtype=np.int64), np.zeros(len(wanted), dtype=bool)
    position = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return position, keys[position] == wanted


def slice_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions, in a CSR table's values, of the slices [starts[i], starts[i] + lengths[i]) one after the
    other: the rows of a table for many keys gathered by one fancy index, never a Python loop."""
    firsts = np.cumsum(lengths) - lengths  # where each slice starts in the result
    return np.repeat(starts - firsts, lengths) + np.arange(lengths.sum())


def entry_rows(matrix: csr_matrix) -> np.ndarray:
    """The row (int64) of each stored entry of a CSR matrix, in storage order: its COO rows without scipy's COO."""
    return np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))


def rows_matrix(rows: list[np.ndarray], columns: int, values: list[np.ndarray] | None = None) -> csr_matrix:
    """One CSR from per-row sorted column indices and their values (ones when not given), without a dense detour."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(row) for row in rows], out=indptr[1:])
    indices = np.concatenate(rows).astype(np.int32, copy=False) if rows else NO_VIDEOS
    if values is None:
        data = np.ones(len(indices), dtype=np.float32)
    else:
        data = np.concatenate(values).astype(np.float32, copy=False) if values else np.zeros(0, np.float32)
    return csr_matrix((data, indices, indptr), shape=(len(rows), columns))
