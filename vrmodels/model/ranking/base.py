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
from vrmodels.model.indices import slice_positions
from vrmodels.model.narrowing import Narrowing
from vrmodels.model.sessions import SessionTables, WatchedNext
from vrmodels.model.topk import CatalogueTopK

Ranked = tuple[np.ndarray, np.ndarray]
"""One query's answer: video indices best first (int), and their scores (float32)."""
SCORING_CHUNK = 256  # queries ranked together at serving: bounds the buffers (scores, candidates × features)
OFFLINE_CHUNK = 4096  # the same offline (precomputed and judged lists), where larger calls are cheaper per query


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
    sitting: Sitting | None = None
    """Where each viewer is in time (None when the model keeps no sittings)."""

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
            sitting=None if self.sitting is None else self.sitting.rows(index, self.videos),
        )

    def among(self, candidates: Sequence[np.ndarray | None]) -> QueryBatch:
        """The same queries, each ranked among other candidates."""
        return replace(self, candidates=list(candidates))

    @classmethod
    def of_users(
        cls,
        user_factors: np.ndarray,
        user_items: csr_matrix,
        users: np.ndarray,
        *,
        k: int,
        narrowing: Narrowing,
        sessions: SessionTables | None = None,
        now: float = 0.0,
    ) -> QueryBatch:
        """Known users as training saw them, each asking for k unwatched videos narrowed alike (the precomputed lists,
        the judged lists, the ranker's examples); with `sessions`, at home at `now` after their last sitting."""
        watched = matrix_rows(user_items, users)
        sitting = None
        if sessions is not None:
            starts, lengths = user_items.indptr[users], np.diff(user_items.indptr)[users]
            sitting = Sitting(
                recent=np.asarray(sessions.user_recent)[users].astype(np.int64),
                position=np.zeros(len(users), dtype=np.int64),
                now=np.full(len(users), float(now)),
                seen=now - np.asarray(sessions.user_items_seen)[slice_positions(starts, lengths)].astype(np.float64),
            )
        return cls(
            vectors=np.asarray(user_factors)[users],
            videos=watched,
            watched=watched,
            k=np.full(len(users), k, dtype=np.int64),
            candidates=[None] * len(users),
            narrowings=[narrowing] * len(users),
            sitting=sitting,
        )


def matrix_rows(matrix: csr_matrix, rows: np.ndarray) -> csr_matrix:
    """matrix[rows]: the matrix itself when `rows` are all of them, a slice when they are consecutive (scipy's fancy
    row indexing copies row by row, and even a slice costs more than ranking one query)."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and (len(rows) < 2 or bool((np.diff(rows) == 1).all())):
        if rows[0] == 0 and len(rows) == matrix.shape[0]:
            return matrix
        return matrix[int(rows[0]) : int(rows[-1]) + 1]
    return matrix[rows]


@dataclass(frozen=True)
class Sitting:
    """Where each viewer of a batch is: in a sitting (the videos of it so far) or at home (after their last one)."""

    recent: np.ndarray
    """Queries × RECENT: the last videos of the sitting in progress, or of the user's last sitting when none is in
    progress; oldest first, -1 padding the front."""
    position: np.ndarray
    """Per query: watches of the sitting in progress so far (0: none in progress)."""
    now: np.ndarray
    """Per query: when it is asked, in epoch seconds (the last watch given, else the model's data end)."""
    seen: np.ndarray
    """Per stored entry of the batch's `videos` matrix, in its order: when the viewer last watched that video (epoch
    seconds). An array beside the matrix rather than a matrix of its own: at one query a call, scipy's constructor
    and checks cost more than the arithmetic."""

    def rows(self, index: np.ndarray, videos: csr_matrix) -> Sitting:
        """These queries' sitting; `videos`: the batch's videos matrix (whose entries `seen` follows)."""
        starts, lengths = videos.indptr[index], np.diff(videos.indptr)[index]
        seen = self.seen[slice_positions(starts, lengths)]
        return Sitting(self.recent[index], self.position[index], self.now[index], seen)

    @property
    def last(self) -> np.ndarray:
        """Per query: the last video watched (-1 none)."""
        return self.recent[:, -1]


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
    ranks_up_next: ClassVar[bool] = False
    """Whether up next for anyone is ranked as a sitting of that one watch (else `similar`)."""

    def __init__(
        self,
        item_factors: np.ndarray,
        topk: CatalogueTopK,
        unavailable: np.ndarray,
        *,
        sessions: SessionTables | None = None,
        up_next_blend: float = 0.0,
    ):
        """`unavailable`: sorted video indices no answer may hold (published after the model's data end);
        `sessions`: the model's watched-next table, blended into up next with weight `up_next_blend`."""
        self.items = item_factors
        self.topk = topk
        self.unavailable = unavailable
        self.sessions = sessions
        self.up_next_blend = up_next_blend

    @classmethod
    @abstractmethod
    def from_artifacts(cls, artifacts: ModelArtifacts, topk: CatalogueTopK, unavailable: np.ndarray) -> Ranking:
        """The ranking of a loaded model directory; ModelArtifactError naming the file it lacks or cannot use."""

    @abstractmethod
    def rank(self, batch: QueryBatch, *, chunk: int = SCORING_CHUNK) -> list[Ranked]:
        """Per query of `batch`, at most its k videos best first and their scores, narrowed as it asks; `chunk`
        queries are scored together at most."""

    def precomputed_width(self, n: int) -> int:
        """How long a precomputed list of at most n videos is worth making."""
        return n

    def aids_entry(self) -> dict:
        """What the manifest's `serving` entry records of this ranking (vrmodels.model.manifest.ServingEntry)."""
        return {}

    def similar(self, videos: np.ndarray, ks: Sequence[int]) -> list[Ranked]:
        """Up next: per video, the ks[i] videos to watch after it (itself and unavailable ones left out), best
        first. By the cosine of their factors; with a watched-next table, blended with it (`up_next`)."""
        if not len(videos):
            return []
        depth = max(ks) + len(self.unavailable) + (UP_NEXT_POOL if self.sessions is not None else 0)
        ids, scores = self.topk.similar(videos, depth)
        answers = []
        for video, k, row_ids, row_scores in zip(videos, ks, ids, scores):
            if self.sessions is not None:
                row_ids, row_scores = up_next(
                    self.items, self.sessions.next, int(video), (row_ids, row_scores), blend=self.up_next_blend
                )
            keep = ~np.isin(row_ids, self.unavailable) if len(self.unavailable) else slice(None)
            answers.append((row_ids[keep][:k], row_scores[keep][:k]))
        return answers


UP_NEXT_POOL = 50  # videos by factor similarity that up next weighs beside the watched-next row


@dataclass(frozen=True)
class UpNextPool:
    """The videos up next may answer after one video (sorted), with their watched-next share and cosine."""

    videos: np.ndarray
    share: np.ndarray
    cosine: np.ndarray


def up_next(items: np.ndarray, table: WatchedNext, video: int, similar: Ranked, *, blend: float) -> Ranked:
    """Up next after `video`: blend × its watched-next share + (1 − blend) × cosine of the factors, over its
    watched-next row and the videos most similar by factors (`similar`: ids and cosines, itself left out),
    best first (ties: the lower index). A video nobody watched anything after is ranked by its factors alone."""
    return blended(up_next_pool(items, table, video, similar), blend=blend)


def up_next_pool(items: np.ndarray, table: WatchedNext, video: int, similar: Ranked) -> UpNextPool:
    """What up next after `video` ranks, before any blend: its watched-next row and `similar`, with both figures
    of each."""
    followers, shares = table.followers(np.asarray([video]))[1:]
    mine = followers != video
    followers, shares = followers[mine], shares[mine]
    pool = np.union1d(similar[0].astype(np.int64), followers)
    cosine = np.zeros(len(pool), dtype=np.float32)
    known = np.searchsorted(pool, similar[0])
    cosine[known] = similar[1]
    extra = np.setdiff1d(followers, similar[0], assume_unique=False)
    if len(extra):
        vectors, query = items[extra], items[video]
        norms = np.linalg.norm(vectors, axis=1) * max(float(np.linalg.norm(query)), 1e-10)
        cosine[np.searchsorted(pool, extra)] = (vectors @ query) / np.where(norms > 0, norms, 1e-10)
    share = np.zeros(len(pool), dtype=np.float32)
    share[np.searchsorted(pool, followers)] = shares
    return UpNextPool(pool, share, cosine)


def blended(candidates: UpNextPool, *, blend: float) -> Ranked:
    """An up-next pool best first by blend × share + (1 − blend) × cosine (ties: the lower index)."""
    score = blend * candidates.share + (1 - blend) * candidates.cosine
    order = np.lexsort((candidates.videos, -score))
    return candidates.videos[order], score[order].astype(np.float32)


def session_options(artifacts: ModelArtifacts) -> dict:
    """The keyword arguments every ranking takes from a model's session tables (none when it keeps none)."""
    entry = artifacts.manifest.sessions
    if artifacts.sessions is None or entry is None:
        return {}
    return {"sessions": artifacts.sessions, "up_next_blend": entry.up_next_blend}
