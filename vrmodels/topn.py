"""Precomputed top-N per known user: built with the model, looked up at serving.

`topn.npy` holds, per user, the N best videos they have not watched, best first (int32 video indices; -1 pads
the row of a user with fewer than N unwatched videos). It is a function of the model alone (its factors, the
watched videos and its ANN indexes if any), computed with the routine the server ranks with
(vrmodels.catalogue), so a known user's request can be answered by a lookup plus k dot products instead of
scoring the whole catalogue. It is rebuilt with every model and never keyed on requests: not a response cache.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from vrmodels import ann
from vrmodels.ann import AnnIndexes
from vrmodels.catalogue import FILTERED_SCORE, CatalogueRanker

DEFAULT_TOPN = 100
_CHUNK_USERS = 4096


def build_topn(ranker: CatalogueRanker, user_factors: np.ndarray, user_items: csr_matrix, n: int) -> np.ndarray:
    """Users × min(n, videos) best unwatched video indices, best first, -1 where fewer remain.

    `ranker` is the one the server will use (exact, or the model's ANN indexes), so the lists hold its answers.
    """
    users = user_items.shape[0]
    n = min(n, ranker.videos)
    lists = np.full((users, n), -1, dtype=np.int32)
    for start in range(0, users, _CHUNK_USERS):
        end = min(start + _CHUNK_USERS, users)
        ids, scores = ranker.top_k(user_factors[start:end], user_items[start:end], n)
        lists[start:end] = np.where(scores > FILTERED_SCORE, ids, -1)
    return lists


def serving_aids(
    user_factors: np.ndarray, item_factors: np.ndarray, user_items: csr_matrix, topn_size: int, ann_mode: str
) -> tuple[np.ndarray | None, AnnIndexes | None, dict]:
    """What the server uses instead of scoring the whole catalogue: ANN indexes (`ann_mode`: auto, on, off),
    then each user's top-N ranked through them; and the manifest entry that says what was built and why."""
    build, reason = ann.should_build(ann_mode, item_factors.shape[0])
    print(f"[serving] {reason}", flush=True)
    indexes = AnnIndexes.build(item_factors) if build else None
    lists = (
        build_topn(CatalogueRanker(item_factors, indexes), user_factors, user_items, topn_size) if topn_size else None
    )
    entry = {"topn": topn_size, "ann": {"mode": ann_mode, "built": build, "reason": reason}}
    if build:
        entry["ann"] |= {"kind": "faiss.IndexHNSWFlat", "m": ann.HNSW_M, "ef_construction": ann.EF_CONSTRUCTION}
    return lists, indexes, entry


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
