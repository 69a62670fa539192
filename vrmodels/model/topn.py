"""Precomputed top-N lists: a known user's answer, or a video's up next for anyone, by lookup (training builds
them, vrmodels.training.aids).

`topn.npy` holds int32 users × N: each user's best unwatched video indices, best first, -1 padded; ranked by the
model's own ranking (vrmodels.model.ranking), so a list holds the answer the server would compute. `up_next.npy`
holds the same per video (rows: videos), for a model that ranks up next, with its scores. A padded row
holds every video the ranking could propose, so whatever a narrowing leaves of it is the whole answer; a full
row ranks only N, so when the narrowing leaves fewer than k the answer lies beyond it. With `topn_scores.npy`
(a learned ranking's scores) a lookup returns the stored scores; without, the ALS score, recomputed exactly.
"""

from __future__ import annotations

import numpy as np

from vrmodels.model.narrowing import Narrowing

DEFAULT_TOPN = 100


class PrecomputedLists:
    """Rows (users, or videos for up next) × N lists; without scores, a row's scores are its factors' dot products
    with the listed videos' (`factors`: the rows' and the videos')."""

    def __init__(
        self,
        lists: np.ndarray,
        scores: np.ndarray | None,
        *,
        factors: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        if scores is None and factors is None:
            raise ValueError("lists without scores need the factors to compute them")
        self._lists = np.asarray(lists)
        self._scores = None if scores is None else np.asarray(scores)
        self._factors = factors

    @property
    def size(self) -> int:
        """N: the longest answer a list holds."""
        return self._lists.shape[1]

    def lookup(self, row_index: int, narrowing: Narrowing, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The row's first k listed videos the narrowing lets through and their scores, or None when the list
        cannot tell (k beyond N, or fewer than k left of a full row)."""
        if k > self.size:
            return None
        row = self._lists[row_index]
        exhaustive = row[-1] < 0
        listed = row[row >= 0] if exhaustive else row
        positions, complete = narrowing.pick(listed, k)
        if not complete and not exhaustive:
            return None
        videos = listed[positions]
        if self._scores is not None:
            return videos, self._scores[row_index][positions]
        row_factors, item_factors = self._factors  # type: ignore[misc]  (given when scores are not)
        return videos, item_factors[videos] @ row_factors[row_index]
