"""Precomputed top-N lists: a known user's answer by lookup (training builds them, vrmodels.training.aids).

`topn.npy` holds int32 users × N: each user's best unwatched video indices, best first, -1 padded; ranked by the
very routine the server scores with, so a list holds the answer the server would compute.
"""

from __future__ import annotations

import numpy as np

DEFAULT_TOPN = 100


def lookup(lists: np.ndarray, user: int, k: int, excluded: set[int]) -> np.ndarray | None:
    """The user's k best video indices without `excluded`, or None when the list cannot tell.

    A full row ranks only N videos: if filtering leaves fewer than k of them, the answer lies beyond the row.
    A padded row holds every unwatched video, so whatever remains is the whole answer.
    """
    row = lists[user]
    exhaustive = row[-1] < 0
    if exhaustive:
        row = row[row >= 0]
    if excluded:
        row = row[[video not in excluded for video in row.tolist()]]
    if len(row) >= k or exhaustive:
        return row[:k]
    return None
