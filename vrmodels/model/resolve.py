"""A query resolved against the model before any ranking: whom to score and what to leave out, or the answer
that needs no ranking.

`Resolver.resolve` turns a `Query` into
- a `ResolvedQuery`: the user (known, or described by a fresh history), the videos the user watched with their
  confidences, what to leave out, what to rank among, how to narrow; or
- the popular fallback (`Recommendations` with `fallback`), for a user the model does not know and no usable
  history; or
- `UnsupportedFilter`, when the query narrows in a way the model cannot (categories without a catalogue).
`FoldIn` then gives every resolved query its user vector: the trained one, or one solve for all histories of a
batch together; `batch_of` lays them out for a ranking (vrmodels.model.ranking).

A history is the sitting in progress, oldest first. With a model that keeps sittings (format 6 on,
vrmodels.model.sessions) each watch of it weighs in the fold-in as a typical training interaction (the median
confidence) times its recency (half as much `history_half_life_hours` before the latest watch when watches carry
timestamps; half as much `history_half_life_watches` watches before the last when they do not) times the skip
weight when it was an early skip (watched seconds against the catalogue's duration under `skip_below`), and
its last videos, its length and its time place the viewer in a sitting. With an older model a history is a set
of videos at the median confidence, as it always was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix

from vrmodels.model.artifacts import ModelArtifacts
from vrmodels.model.ids import split_known
from vrmodels.model.indices import NO_VIDEOS, rows_matrix, union
from vrmodels.model.narrowing import Narrowing
from vrmodels.model.queries import Query, Recommendations, UnsupportedFilter, Watch
from vrmodels.model.ranking.base import QueryBatch, Sitting, matrix_rows
from vrmodels.model.sessions import RECENT

NO_CATALOGUE = "this model was trained without a video catalogue (features.build_features --videos)"
NO_WEIGHTS = np.zeros(0, dtype=np.float32)
NO_TIMES = np.zeros(0, dtype=np.float64)
NO_POSITIONS = np.zeros(0, dtype=np.int64)


@dataclass(eq=False, slots=True)
class ResolvedQuery:
    """One recommend query, resolved to indices: whom to score, what to leave out, among what."""

    k: int
    user: int | None
    """The known user's index; None for one described by a history alone."""
    fold_in: bool
    """Whether the user vector is folded in from `videos` (a history was given)."""
    videos: np.ndarray
    """The user's videos (training ∪ history), sorted."""
    confidences: np.ndarray
    watched: np.ndarray
    """Sorted: the user's videos when they are left out, else none."""
    candidates: np.ndarray | None
    narrowing: Narrowing
    unknown: list[str]
    """Ids of `history` and `candidates` the model does not know."""
    recent: np.ndarray = field(default_factory=lambda: NO_VIDEOS)
    """The last videos of the sitting in progress (or of the user's last sitting when none is), oldest first."""
    position: int = 0
    """Watches of the sitting in progress so far."""
    now: float = 0.0
    """When it is asked (epoch seconds): the latest watch given, else the model's data end."""
    seen: np.ndarray = field(default_factory=lambda: NO_TIMES)
    """With sittings: when each of `videos` was last watched (epoch seconds)."""


class Resolver:
    def __init__(self, artifacts: ModelArtifacts):
        self.users, self.videos = artifacts.users, artifacts.videos
        self._user_items = artifacts.user_items
        self.tables = artifacts.tables
        self._category_codes = (
            {name: code for code, name in enumerate(self.tables.category_names)} if self.tables else {}
        )
        self.unavailable = self.tables.unavailable() if self.tables else NO_VIDEOS
        self._popularity = artifacts.popularity
        # Private to each worker, so kept small: 4 bytes per video each.
        order = np.argsort(-artifacts.popularity, kind="stable").astype(np.int32)
        self._popular_order = order[~np.isin(order, self.unavailable)] if len(self.unavailable) else order
        top = max(1e-12, float(artifacts.popularity.max(initial=0.0)))
        self.popular_scores = (artifacts.popularity / top).astype(np.float32)
        # A history video weighted like a typical training interaction: the median of at most 100,000 evenly
        # spaced confidences (the median of them all would copy every confidence into each worker's memory).
        data = artifacts.user_items.data
        self._history_confidence = float(np.median(data[:: max(1, len(data) // 100_000)])) if len(data) else 1.0
        self.sessions = artifacts.sessions
        self._entry = artifacts.manifest.sessions
        self._confidence = artifacts.manifest.confidence or {}
        self._durations = None
        if self.tables is not None and "log_duration" in (artifacts.manifest.catalogue.video_features or []):  # type: ignore[union-attr]
            self._durations = self.tables.features[:, artifacts.manifest.catalogue.video_features.index("log_duration")]  # type: ignore[union-attr]

    def user(self, user_id: str | None) -> int | None:
        return self.users.index_of(user_id) if user_id is not None else None

    def narrowing(self, query: Query) -> Narrowing | UnsupportedFilter:
        """What the query lets through: its exclusions and the unavailable videos, and its catalogue filters."""
        if query.narrowed and self.tables is None:
            fields = ("categories", "max_per_channel", "published_after")
            return UnsupportedFilter(next(name for name in fields if getattr(query, name) is not None), NO_CATALOGUE)
        excluded = union(self.indices(query.exclude)[0] if query.exclude else NO_VIDEOS, self.unavailable)
        return Narrowing.of(
            excluded,
            self.tables,
            category_codes=self._category_codes,
            categories=list(query.categories) if query.categories is not None else None,
            published_after=query.published_after,
            max_per_channel=query.max_per_channel,
        )

    def plain(self) -> Narrowing:
        """What a query that narrows nothing lets through: every available video."""
        return Narrowing(self.unavailable)

    def popular(self, query: Query, narrowing: Narrowing) -> Recommendations:
        """The fallback: most popular videos, among `candidates` when given, narrowed as the query asks."""
        unknown: list[str] = []
        if query.candidates is not None:
            known, unknown = self.indices(query.candidates)
            order = known[np.lexsort((known, -self._popularity[known]))]
        else:
            order = self._popular_order
        positions, _ = narrowing.pick(order, query.k)
        chosen = order[positions]
        return Recommendations(
            self.videos.ids_of(chosen),
            score_list(self.popular_scores[chosen]),
            fallback=True,
            unknown_video_ids=unknown,
            unknown_categories=narrowing.unknown_categories,
        )

    def resolve(self, query: Query) -> ResolvedQuery | Recommendations | UnsupportedFilter:
        """What to rank for one recommend query, or its answer when there is nothing to rank."""
        narrowing = self.narrowing(query)
        if isinstance(narrowing, UnsupportedFilter):
            return narrowing
        user = self.user(query.user_id)
        unknown: list[str] = []
        history, positions = NO_VIDEOS, NO_POSITIONS
        if query.history:
            ids = [watch.video_id for watch in query.history]
            positions = self.videos.positions_of(ids)
            history, unknown = split_known(ids, positions)
        if user is None and len(history) == 0:
            answer = self.popular(query, narrowing)
            return Recommendations(
                answer.video_ids,
                answer.scores,
                fallback=True,
                unknown_video_ids=unknown + answer.unknown_video_ids,
                unknown_categories=answer.unknown_categories,
            )
        candidates = None
        if query.candidates is not None:
            candidates, unknown_candidates = self.indices(query.candidates)
            unknown += unknown_candidates
        videos, confidences = self.user_videos(user) if user is not None else (NO_VIDEOS, NO_VIDEOS)
        if self.sessions is not None:
            return self._in_sitting(
                query, narrowing, user=user, unknown=unknown, candidates=candidates, positions=positions
            )
        if len(history):
            videos, confidences = merge_history(
                videos, confidences, history, history_confidence=self._history_confidence
            )
        return ResolvedQuery(
            k=query.k,
            user=user,
            fold_in=len(history) > 0,
            videos=videos,
            confidences=confidences,
            watched=videos if query.exclude_watched else NO_VIDEOS,
            candidates=candidates,
            narrowing=narrowing,
            unknown=unknown,
        )

    def _in_sitting(
        self,
        query: Query,
        narrowing: Narrowing,
        *,
        user: int | None,
        unknown: list[str],
        candidates: np.ndarray | None,
        positions: np.ndarray,
    ) -> ResolvedQuery:
        """A query placed in time: its history weighed by recency and skips, its sitting's last videos, the
        times the viewer last watched each of their videos (`positions`: each history watch's video index, -1 when
        unknown)."""
        entry, sessions = self._entry, self.sessions
        data_end = float(entry.data_end)  # type: ignore[union-attr]
        ordered, weights, times, latest = self._weighed(query.history or (), positions)
        now = latest if latest is not None else data_end
        videos, confidences = self.user_videos(user) if user is not None else (NO_VIDEOS, NO_VIDEOS)
        seen = NO_TIMES
        if user is not None:
            start, end = self._user_items.indptr[user], self._user_items.indptr[user + 1]
            seen = data_end - sessions.user_items_seen[start:end].astype(np.float64)  # type: ignore[union-attr]
        if len(ordered):
            videos, confidences, seen = merge_watches(
                (videos, confidences, seen), (ordered, weights, np.where(np.isnan(times), now, times))
            )
            recent = ordered[-RECENT:]
        elif user is not None:
            recent = np.asarray(sessions.user_recent[user])  # type: ignore[union-attr]
            recent = recent[recent >= 0]
        else:
            recent = NO_VIDEOS
        return ResolvedQuery(
            k=query.k,
            user=user,
            fold_in=len(ordered) > 0,
            videos=videos,
            confidences=confidences,
            watched=videos if query.exclude_watched else NO_VIDEOS,
            candidates=candidates,
            narrowing=narrowing,
            unknown=unknown,
            recent=recent.astype(np.int64),
            position=len(ordered),
            now=now,
            seen=seen,
        )

    def _weighed(
        self, history: Sequence[Watch], positions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
        """The known watches of a history in order (`positions`: their video indices, -1 when unknown): their video
        indices, fold-in confidences and times (NaN when not given), and the latest time given (None when none is)."""
        entry = self._entry
        found = np.flatnonzero(positions >= 0)
        if not len(found):
            return NO_VIDEOS, NO_WEIGHTS, NO_TIMES, None
        known = [history[i] for i in found.tolist()]
        ordered = positions[found].astype(np.int32)
        times = np.asarray([np.nan if w.timestamp is None else w.timestamp for w in known], dtype=np.float64)
        given = ~np.isnan(times)
        latest = float(times[given].max()) if given.any() else None
        if latest is not None:
            hours = np.where(given, latest - times, 0.0) / 3600
            recency = np.exp2(-hours / entry.history_half_life_hours)  # type: ignore[union-attr]
        else:
            back = np.arange(len(ordered) - 1, -1, -1, dtype=np.float64)
            recency = np.exp2(-back / entry.history_half_life_watches)  # type: ignore[union-attr]
        skip = np.ones(len(ordered))
        if self._durations is not None:
            watched = np.asarray([np.nan if w.watched_seconds is None else w.watched_seconds for w in known])
            with np.errstate(invalid="ignore"):
                ratio = watched / np.exp(self._durations[ordered])
                skipped = ratio < self._confidence.get("skip_below", 0.8)
            skip[skipped] = self._confidence.get("skip_weight", 0.05)
        return ordered, (self._history_confidence * recency * skip).astype(np.float32), times, latest

    def user_videos(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """One user's training videos and confidences, sliced from the CSR arrays (scipy's row indexing is slow)."""
        start, end = self._user_items.indptr[user], self._user_items.indptr[user + 1]
        return self._user_items.indices[start:end], self._user_items.data[start:end]

    def indices(self, video_ids: Iterable[str]) -> tuple[np.ndarray, list[str]]:
        """Sorted indices of the known ids, and the unknown ids."""
        return self.videos.indices_of(video_ids)


class FoldIn:
    """User vectors for resolved queries: the trained one, or folded in from a history (implicit's
    recalculate_user: one least-squares solve per user against the fixed item factors)."""

    def __init__(self, artifacts: ModelArtifacts, num_threads: int = 1):
        self._user_factors = np.asarray(artifacts.user_factors)
        item_factors = np.asarray(artifacts.item_factors)
        self._model = AlternatingLeastSquares(
            factors=item_factors.shape[1],
            regularization=artifacts.manifest.regularization,
            alpha=artifacts.manifest.alpha,
            num_threads=num_threads,
        )
        self._model.user_factors, self._model.item_factors = self._user_factors, item_factors

    def vectors(self, queries: Sequence[ResolvedQuery], videos: csr_matrix) -> np.ndarray:
        """Queries × factors: the trained vector of each known user, folded in from its row of `videos` (queries ×
        videos, confidences) for each query with a history; one solve for all histories together."""
        vectors = np.empty((len(queries), self._user_factors.shape[1]), dtype=self._user_factors.dtype)
        folded = np.asarray([row for row, query in enumerate(queries) if query.fold_in], dtype=np.int64)
        if len(folded):
            vectors[folded] = self._model.recalculate_user(np.arange(len(folded)), matrix_rows(videos, folded))
        for row, query in enumerate(queries):
            if not query.fold_in:
                vectors[row] = self._user_factors[query.user]
        return vectors


def batch_of(queries: Sequence[ResolvedQuery], videos: int, *, fold_in: FoldIn, sittings: bool = False) -> QueryBatch:
    """Resolved queries laid out for a ranking, with their vectors (`fold_in`) and, with `sittings`, where each viewer
    is."""
    matrix = rows_matrix([query.videos for query in queries], videos, [query.confidences for query in queries])
    sitting = None
    if sittings:
        recent = np.full((len(queries), RECENT), -1, dtype=np.int64)
        for row, query in enumerate(queries):
            if len(query.recent):
                recent[row, RECENT - len(query.recent) :] = query.recent
        sitting = Sitting(
            recent=recent,
            position=np.asarray([query.position for query in queries], dtype=np.int64),
            now=np.asarray([query.now for query in queries], dtype=np.float64),
            seen=np.concatenate([query.seen for query in queries] or [NO_TIMES]),
        )
    return QueryBatch(
        vectors=fold_in.vectors(queries, matrix),
        videos=matrix,
        watched=matrix  # the same rows: a ranking reads which videos a query leaves out, never their values
        if all(query.watched is query.videos for query in queries)
        else rows_matrix([query.watched for query in queries], videos),
        k=np.asarray([query.k for query in queries], dtype=np.int64),
        candidates=[query.candidates for query in queries],
        narrowings=[query.narrowing for query in queries],
        sitting=sitting,
    )


def score_list(scores: np.ndarray) -> list[float]:
    """Scores to 6 decimals, as answers carry them: float32 holds no more, and the answer stays short."""
    return np.round(np.asarray(scores, dtype=np.float64), 6).tolist()


def merge_watches(
    trained: tuple[np.ndarray, np.ndarray, np.ndarray], history: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(videos, confidences, last seen) of the training videos and of a history (in watch order, repeats
    allowed): sorted by video, each keeping its largest confidence and its latest time."""
    videos = np.concatenate([trained[0], history[0]]).astype(np.int32)
    confidences = np.concatenate([trained[1], history[1]]).astype(np.float32)
    times = np.concatenate([trained[2], history[2]]).astype(np.float64)
    merged, inverse = np.unique(videos, return_inverse=True)
    best = np.zeros(len(merged), dtype=np.float32)
    np.maximum.at(best, inverse, confidences)
    latest = np.full(len(merged), -np.inf)
    np.maximum.at(latest, inverse, times)
    return merged.astype(np.int32), best, latest


def merge_history(
    videos: np.ndarray, confidences: np.ndarray, history: np.ndarray, *, history_confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Training videos plus fresh history; a video in both keeps the larger confidence."""
    merged = np.union1d(videos, history)
    values = np.zeros(len(merged), dtype=np.float32)
    values[np.searchsorted(merged, history)] = history_confidence
    trained = np.searchsorted(merged, videos)
    values[trained] = np.maximum(values[trained], confidences)
    return merged.astype(np.int32), values
