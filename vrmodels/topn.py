"""Precomputed top-N per known user: built with the model, looked up at serving.

`topn.npy` holds, per user, the N best videos they have not watched, best first (int32 video indices; -1 pads
the row of a user with fewer than N unwatched videos). It is a function of the model alone (its factors and the
watched videos), computed with the same top-k routine the server's exact path uses, so a known user's request
can be answered by a lookup plus k dot products instead of scoring the whole catalogue. It is rebuilt with every
model and never keyed on requests: it is not a response cache.
"""

from __future__ import annotations

import numpy as np
from implicit.cpu.topk import topk
from scipy.sparse import csr_matrix

DEFAULT_TOPN = 100
FILTERED_SCORE = -1e38  # implicit marks filtered items with -finfo.max; anything below this is filtered
_CHUNK_USERS = 4096


def build_topn(
    user_factors: np.ndarray, item_factors: np.ndarray, user_items: csr_matrix, n: int, num_threads: int = 0
) -> np.ndarray:
    """Users × min(n, videos) best unwatched video indices, best first, -1 where fewer remain."""
    users, videos = user_items.shape
    n = min(n, videos)
    lists = np.full((users, n), -1, dtype=np.int32)
    item_factors = np.asarray(item_factors, dtype=np.float32)
    for start in range(0, users, _CHUNK_USERS):
        end = min(start + _CHUNK_USERS, users)
        ids, scores = topk(
            item_factors,
            np.asarray(user_factors[start:end], dtype=np.float32),
            n,
            filter_query_items=user_items[start:end],
            num_threads=num_threads,
        )
        lists[start:end] = np.where(scores > FILTERED_SCORE, ids, -1)
    return lists


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
