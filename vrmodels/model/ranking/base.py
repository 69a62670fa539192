"""The ranking interface: every model kind orders videos for a batch of resolved queries the same way.

A `Ranking` is chosen at load from the manifest's kind (vrmodels.model.ranking.RANKINGS) and does two things:
- `rank(batch)`: for each resolved query of a `QueryBatch`, its answer as video indices best first, with scores,
  narrowed as the query asks and cut to its k;
- `similar(videos, ks)`: the videos closest to each of `videos` (by default the cosine of their factors).
The server ranks requests with it (vrmodels.model.recommend), and training builds the precomputed lists and
judges the model with it (vrmodels.training.aids, vrmodels.training.trainer), so a precomputed or judged answer
is the one the server would compute.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from scipy.sparse import csr_matrix

from vrmodels.model.artifacts import ModelArtifacts
from vrmodels.model.narrowing import Narrowing
from vrmodels.model.topk import CatalogueTopK

Ranked = tuple[np.ndarray, np.ndarray]
"""One query's answer: video indices best first (int), and their scores (float32)."""


@dataclass(frozen=True)
class QueryBatch:
    """Resolved queries, column by column: the users to score, what to leave out, and among what."""

    vectors: np.ndarray
    """Queries × factors: the user's trained factors, or folded in from a history."""
    videos: csr_matrix
    """Queries × videos: each user's videos (training and fresh history) with their confidence."""
    watched: csr_matrix
    """Queries × videos: never proposed (the user's videos, unless the query keeps them)."""
    k: np.ndarray
    """Per query: how many videos it asks for."""
    candidates: Sequence[np.ndarray | None]
    """Per query: rank only these (sorted video indices), or None for the whole catalogue."""
    narrowings: Sequence[Narrowing]
    """Per query: what its answer may hold (exclusions, categories, publication time, per-channel cap)."""

    def __len__(self) -> int:
        return len(self.vectors)

    def watched_of(self, row: int) -> np.ndarray:
        """The sorted video indices row `row` leaves out."""
        return self.watched.indices[self.watched.indptr[row] : self.watched.indptr[row + 1]]

    def rows(self, rows: slice | Sequence[int]) -> QueryBatch:
        """The sub-batch of these rows."""
        picked = range(len(self))[rows] if isinstance(rows, slice) else rows
        index = np.asarray(list(picked), dtype=np.int64)
        return QueryBatch(
            vectors=self.vectors[index],
            videos=self.videos[index],
            watched=self.watched[index],
            k=self.k[index],
            candidates=[self.candidates[row] for row in index],
            narrowings=[self.narrowings[row] for row in index],
        )

    def among(self, candidates: Sequence[np.ndarray | None]) -> QueryBatch:
        """The same queries, each ranked among other candidates."""
        return replace(self, candidates=list(candidates))

    @classmethod
    def of_users(
        cls, user_factors: np.ndarray, user_items: csr_matrix, users: np.ndarray, *, k: int, narrowing: Narrowing
    ) -> QueryBatch:
        """Known users as training saw them, each asking for k unwatched videos narrowed alike (the precomputed lists,
        the judged lists, the ranker's examples)."""
        watched = user_items[users]
        return cls(
            vectors=np.asarray(user_factors)[users],
            videos=watched,
            watched=watched,
            k=np.full(len(users), k, dtype=np.int64),
            candidates=[None] * len(users),
            narrowings=[narrowing] * len(users),
        )


class Ranking(ABC):
    """How one model kind orders videos; subclasses name their kind and register in vrmodels.model.ranking."""

    kind: ClassVar[str]
    """The manifest's name for the kind (`Manifest.kind`), and its model's name in the evaluation's metrics."""
    label: ClassVar[str]
    """How reports name it."""
    learned: ClassVar[bool] = False
    """Whether a learned second stage orders its candidates."""
    stores_scores: ClassVar[bool] = False
    """Whether precomputed lists keep their scores (else a lookup recomputes them: a dot product each)."""

    def __init__(self, item_factors: np.ndarray, topk: CatalogueTopK, unavailable: np.ndarray):
        """`unavailable`: sorted video indices no answer may hold (published after the model's data end)."""
        self.items = item_factors
        self.topk = topk
        self.unavailable = unavailable

    @classmethod
    @abstractmethod
    def from_artifacts(cls, artifacts: ModelArtifacts, topk: CatalogueTopK, unavailable: np.ndarray) -> Ranking:
        """The ranking of a loaded model directory; ModelArtifactError naming the file it lacks or cannot use."""

    @abstractmethod
    def rank(self, batch: QueryBatch) -> list[Ranked]:
        """Per query of `batch`, at most its k videos best first and their scores, narrowed as it asks."""

    def precomputed_width(self, n: int) -> int:
        """How long a precomputed list of at most n videos is worth making."""
        return n

    def aids_entry(self) -> dict:
        """What the manifest's `serving` entry records of this ranking (vrmodels.model.manifest.ServingEntry)."""
        return {}

    def similar(self, videos: np.ndarray, ks: Sequence[int]) -> list[Ranked]:
        """Per video, the ks[i] videos closest to it by cosine of their factors (itself and unavailable ones left
        out), best first."""
        if not len(videos):
            return []
        ids, scores = self.topk.similar(videos, max(ks) + len(self.unavailable))
        answers = []
        for k, row_ids, row_scores in zip(ks, ids, scores):
            keep = ~np.isin(row_ids, self.unavailable) if len(self.unavailable) else slice(None)
            answers.append((row_ids[keep][:k], row_scores[keep][:k]))
        return answers
