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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares

from vrmodels.model.artifacts import ModelArtifacts
from vrmodels.model.indices import NO_VIDEOS, rows_matrix, union
from vrmodels.model.narrowing import Narrowing
from vrmodels.model.queries import Query, Recommendations, UnsupportedFilter
from vrmodels.model.ranking.base import QueryBatch

NO_CATALOGUE = "this model was trained without a video catalogue (features.build_features --videos)"


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
    vector: np.ndarray | None = None


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
        history = NO_VIDEOS
        if query.history:
            history, unknown = self.indices(query.history)
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
        self._videos = item_factors.shape[0]

    def vectors(self, queries: Sequence[ResolvedQuery]) -> None:
        """Set every query's `vector`: one solve for all histories together."""
        folded = [query for query in queries if query.fold_in]
        if folded:
            rows = rows_matrix(
                [query.videos for query in folded], self._videos, [query.confidences for query in folded]
            )
            for query, vector in zip(folded, self._model.recalculate_user(np.arange(len(folded)), rows)):
                query.vector = vector
        for query in queries:
            if not query.fold_in:
                query.vector = self._user_factors[query.user]


def batch_of(queries: Sequence[ResolvedQuery], videos: int) -> QueryBatch:
    """Resolved queries with their vectors, laid out for a ranking."""
    return QueryBatch(
        vectors=np.stack([query.vector for query in queries]),  # type: ignore[misc]
        videos=rows_matrix([query.videos for query in queries], videos, [query.confidences for query in queries]),
        watched=rows_matrix([query.watched for query in queries], videos),
        k=np.asarray([query.k for query in queries], dtype=np.int64),
        candidates=[query.candidates for query in queries],
        narrowings=[query.narrowing for query in queries],
    )


def score_list(scores: np.ndarray) -> list[float]:
    """Scores to 6 decimals, as answers carry them: float32 holds no more, and the answer stays short."""
    return np.round(np.asarray(scores, dtype=np.float64), 6).tolist()


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
