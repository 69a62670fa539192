"""The Recommender: one loaded model directory, answering queries (vrmodels.model.queries) with string ids.

Two entry points serve many callers cheaply:
- `quick(query)` answers what needs no scoring pass: a known user from the precomputed top-N lists (a lookup,
  then the list narrowed as the query asks) and an unknown user from the popularity ranking. It returns None
  otherwise.
- `answer(queries)` scores everything else in one pass per kind: one fold-in solve for every history, then
  either the two stages (vrmodels.model.twostage) when the model has a ranker, or one top-k over the catalogue
  for every ranking; one similar-items call. Results are identical to asking one by one.

A query narrowed by categories, publication time or a per-channel cap is answered from the same ranking,
narrowed (vrmodels.model.narrowing); when fewer than k videos survive, the ranking is redone over what the query
allows (the exact fallback, as for `exclude`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix

from vrmodels.model.artifacts import ModelArtifacts, load_model_dir
from vrmodels.model.catalogue import DEFAULT_POOL, FILTERED_SCORE, CatalogueRanker
from vrmodels.model.narrowing import Narrowing
from vrmodels.model.queries import (
    Answer,
    AnyQuery,
    Query,
    Recommendations,
    SimilarQuery,
    UnknownVideo,
    UnsupportedFilter,
)
from vrmodels.model.twostage import POOL, Profiles, TwoStage

_NO_VIDEOS = np.zeros(0, dtype=np.int32)
_SCORING_CHUNK = 256  # queries per top-k call: bounds the scores buffer to 256 × videos floats
_NO_CATALOGUE = "this model was trained without a video catalogue (features.build_features --videos)"


class Recommender:
    def __init__(
        self,
        artifacts: ModelArtifacts,
        num_threads: int = 1,
        use_ann: bool = True,
        ann_candidates: int = DEFAULT_POOL,
        ann_ef_search: int = DEFAULT_POOL,
        column_major_copy: bool = True,
    ):
        parameters = artifacts.manifest.get("parameters", {})
        self.manifest = artifacts.manifest
        self.model_version: str = artifacts.manifest.get("model_version", "unknown")
        self._model = AlternatingLeastSquares(
            factors=artifacts.item_factors.shape[1],
            regularization=parameters.get("regularization", 0.01),
            alpha=parameters.get("alpha", 1.0),
            num_threads=num_threads,
        )
        # Plain ndarray views of the memory maps: same shared pages, without np.memmap's per-slice cost.
        self._user_factors = np.asarray(artifacts.user_factors)
        self._item_factors = np.asarray(artifacts.item_factors)
        self._model.user_factors, self._model.item_factors = self._user_factors, self._item_factors
        self._user_items = artifacts.user_items
        self._topn = None if artifacts.topn is None else np.asarray(artifacts.topn)
        self._topn_scores = None if artifacts.topn_scores is None else np.asarray(artifacts.topn_scores)
        self._users, self._videos = artifacts.users, artifacts.videos
        ann = artifacts.ann if use_ann else None
        self._catalogue = CatalogueRanker(
            self._item_factors, ann, ann_candidates, ann_ef_search, num_threads, column_major_copy
        )
        self._tables = artifacts.tables
        self._category_codes = (
            {name: code for code, name in enumerate(self._tables.category_names)} if self._tables else {}
        )
        self._unavailable = np.flatnonzero(~self._tables.available()).astype(np.int32) if self._tables else _NO_VIDEOS
        self._two_stage = None
        if artifacts.ranker is not None and artifacts.tables is not None:
            pool = artifacts.manifest.get("serving", {}).get("two_stage", {}).get("pool", POOL)
            self._two_stage = TwoStage(self._item_factors, artifacts.tables, self._catalogue, artifacts.ranker, pool)
        self._popularity = artifacts.popularity
        # Private to each worker, so kept small: 4 bytes per video each.
        order = np.argsort(-artifacts.popularity, kind="stable").astype(np.int32)
        self._popular_order = order[~np.isin(order, self._unavailable)] if len(self._unavailable) else order
        top = max(1e-12, float(artifacts.popularity.max(initial=0.0)))
        self._popular_score = (artifacts.popularity / top).astype(np.float32)
        # A history video weighted like a typical training interaction: the median of at most 100,000 evenly
        # spaced confidences (the median of them all would copy every confidence into each worker's memory).
        data = artifacts.user_items.data
        self._history_confidence = float(np.median(data[:: max(1, len(data) // 100_000)])) if len(data) else 1.0

    @classmethod
    def load(cls, model_dir: Path | str, **options: object) -> Recommender:
        """`options`: num_threads, use_ann, ann_candidates, ann_ef_search, column_major_copy (see __init__ and
        vrmodels.model.catalogue)."""
        return cls(load_model_dir(model_dir), **options)  # type: ignore[arg-type]

    @property
    def approximate(self) -> bool:
        """True when catalogue rankings come from the ANN indexes (re-ranked exactly)."""
        return self._catalogue.approximate

    @property
    def two_stage(self) -> bool:
        """True when rankings come from the two stages (the model has a ranker)."""
        return self._two_stage is not None

    @property
    def user_count(self) -> int:
        return len(self._users)

    @property
    def video_count(self) -> int:
        return len(self._videos)

    @property
    def longest_video_id(self) -> int:
        """Bytes of the longest video id (an upper bound of its characters; response sizes are estimated from it)."""
        return self._videos.longest

    @property
    def topn_size(self) -> int:
        """N of the precomputed lists (0 when the model directory has none)."""
        return 0 if self._topn is None else self._topn.shape[1]

    # ---- the two entry points ----

    def quick(self, query: AnyQuery) -> Recommendations | UnsupportedFilter | None:
        """The answer when it needs no scoring pass (precomputed top-N, popular fallback), else None."""
        if isinstance(query, SimilarQuery):
            return None
        narrowing = self._narrowing(query)
        if isinstance(narrowing, UnsupportedFilter):
            return narrowing
        user = self._users.index_of(query.user_id) if query.user_id is not None else None
        if user is None:
            return self._popular(query, narrowing) if not query.history else None
        if query.history or query.candidates is not None or not query.exclude_watched or query.k > self.topn_size:
            return None
        row = self._topn[user]  # type: ignore[index]
        exhaustive = row[-1] < 0
        listed = row[row >= 0] if exhaustive else row
        positions, complete = narrowing.pick(listed, query.k)
        if not complete and not exhaustive:
            return None  # the answer lies beyond the list
        videos = listed[positions]
        if self._topn_scores is not None:
            scores = self._topn_scores[user][positions]
        else:
            scores = self._item_factors[videos] @ self._user_factors[user]
        return Recommendations(
            self._videos.ids_of(videos), _score_list(scores), unknown_categories=narrowing.unknown_categories
        )

    def answer(self, queries: Sequence[AnyQuery]) -> list[Answer]:
        """Exact answers to many queries, scored together; an unknown `video_id` is answered UnknownVideo."""
        results: list[Answer | None] = [None] * len(queries)
        ranked: list[_Ranking] = []
        similar: list[tuple[int, int, int]] = []
        for slot, query in enumerate(queries):
            if isinstance(query, SimilarQuery):
                video = self._videos.index_of(query.video_id)
                if video is None:
                    results[slot] = UnknownVideo(query.video_id)
                else:
                    similar.append((slot, video, query.k))
                continue
            ranking = self._ranking(slot, query)
            if isinstance(ranking, _Ranking):
                ranked.append(ranking)
            else:
                results[slot] = ranking
        self._fold_in(ranked)
        rank = self._rank_two_stage if self._two_stage is not None else self._rank_als
        for ranking, answer in rank(ranked):
            results[ranking.slot] = answer
        for slot, answer in self._similar(similar):
            results[slot] = answer
        return results  # type: ignore[return-value]

    # ---- preparing a query ----

    def _narrowing(self, query: Query) -> Narrowing | UnsupportedFilter:
        if query.narrowed and self._tables is None:
            fields = ("categories", "max_per_channel", "published_after")
            return UnsupportedFilter(next(name for name in fields if getattr(query, name) is not None), _NO_CATALOGUE)
        excluded = _union(self._known_indices(query.exclude), self._unavailable)
        categories = list(query.categories) if query.categories is not None else None
        return Narrowing.of(
            excluded, self._tables, self._category_codes, categories, query.published_after, query.max_per_channel
        )

    def _popular(self, query: Query, narrowing: Narrowing) -> Recommendations:
        """The fallback: most popular videos, among `candidates` when given, narrowed as the query asks."""
        unknown: list[str] = []
        if query.candidates is not None:
            known, unknown = self._indices(query.candidates)
            order = known[np.lexsort((known, -self._popularity[known]))]
        else:
            order = self._popular_order
        positions, _ = narrowing.pick(order, query.k)
        chosen = order[positions]
        return Recommendations(
            self._videos.ids_of(chosen),
            _score_list(self._popular_score[chosen]),
            fallback=True,
            unknown_video_ids=unknown,
            unknown_categories=narrowing.unknown_categories,
        )

    def _ranking(self, slot: int, query: Query) -> _Ranking | Recommendations | UnsupportedFilter:
        """What to score for one recommend query (or its answer when there is nothing to score)."""
        narrowing = self._narrowing(query)
        if isinstance(narrowing, UnsupportedFilter):
            return narrowing
        user = self._users.index_of(query.user_id) if query.user_id is not None else None
        unknown: list[str] = []
        history = _NO_VIDEOS
        if query.history:
            history, unknown = self._indices(query.history)
        if user is None and len(history) == 0:
            answer = self._popular(query, narrowing)
            return Recommendations(
                answer.video_ids, answer.scores, True, unknown + answer.unknown_video_ids, answer.unknown_categories
            )
        candidates = None
        if query.candidates is not None:
            candidates, unknown_candidates = self._indices(query.candidates)
            unknown += unknown_candidates
        videos, confidences = self._user_videos(user) if user is not None else (_NO_VIDEOS, _NO_VIDEOS)
        if len(history):
            videos, confidences = _merge_history(videos, confidences, history, self._history_confidence)
        return _Ranking(
            slot=slot,
            k=query.k,
            user=user,
            fold_in=len(history) > 0,
            videos=videos,
            confidences=confidences,
            watched=videos if query.exclude_watched else _NO_VIDEOS,
            candidates=candidates,
            narrowing=narrowing,
            unknown=unknown,
        )

    def _fold_in(self, rankings: list[_Ranking]) -> None:
        """User vectors for every ranking: the trained one, or one solve for all histories together."""
        folded = [ranking for ranking in rankings if ranking.fold_in]
        if folded:
            rows = _csr(
                [ranking.videos for ranking in folded], [ranking.confidences for ranking in folded], self.video_count
            )
            vectors = self._model.recalculate_user(np.arange(len(folded)), rows)
            for ranking, vector in zip(folded, vectors):
                ranking.vector = vector
        for ranking in rankings:
            if not ranking.fold_in:
                ranking.vector = self._user_factors[ranking.user]

    # ---- ranking: ALS alone ----

    def _rank_als(self, rankings: list[_Ranking]) -> list[tuple[_Ranking, Recommendations]]:
        """Candidates (or everything a narrowed query allows) ranked exactly; the rest by catalogue top-k."""
        answers, whole_catalogue = [], []
        for ranking in rankings:
            among = ranking.candidates
            if ranking.narrowing.restricts:
                allowed = ranking.narrowing.allowed_videos(self.video_count)
                among = allowed if among is None else np.intersect1d(among, allowed, assume_unique=True)
            if among is None:
                whole_catalogue.append(ranking)
            else:
                answers.append((ranking, self._rank_among(ranking, among)))
        for start in range(0, len(whole_catalogue), _SCORING_CHUNK):
            answers += self._rank_catalogue(whole_catalogue[start : start + _SCORING_CHUNK])
        return answers

    def _rank_among(self, ranking: _Ranking, among: np.ndarray) -> Recommendations:
        videos = np.setdiff1d(among, _union(ranking.watched, ranking.narrowing.excluded), assume_unique=True)
        scores = self._item_factors[videos] @ ranking.vector
        order = np.argsort(-scores, kind="stable")
        positions, _ = ranking.narrowing.pick(videos[order], ranking.k)
        best = order[positions]
        return self._recommendations(ranking, videos[best], scores[best])

    def _rank_catalogue(self, rankings: list[_Ranking]) -> list[tuple[_Ranking, Recommendations]]:
        """One top-k over the catalogue for many rankings; a per-channel cap fetches deeper until k survive."""
        answers, pending, depth = [], rankings, 1
        while pending:
            wanted = [ranking.k * (4**depth if ranking.narrowing.max_per_channel else 1) for ranking in pending]
            k = min(max(wanted), self.video_count)
            filtered = [_union(ranking.watched, ranking.narrowing.excluded) for ranking in pending]
            filters = _csr(filtered, [np.ones(len(row), np.float32) for row in filtered], self.video_count)
            ids, scores = self._catalogue.top_k(np.stack([ranking.vector for ranking in pending]), filters, k)
            deeper = []
            for ranking, row_ids, row_scores in zip(pending, ids, scores):
                valid = row_scores > FILTERED_SCORE
                positions, complete = ranking.narrowing.pick(row_ids[valid], ranking.k)
                if complete or k >= self.video_count or not ranking.narrowing.max_per_channel:
                    answers.append(
                        (
                            ranking,
                            self._recommendations(ranking, row_ids[valid][positions], row_scores[valid][positions]),
                        )
                    )
                else:
                    deeper.append(ranking)
            pending, depth = deeper, depth + 1
        return answers

    # ---- ranking: the two stages ----

    def _rank_two_stage(self, rankings: list[_Ranking]) -> list[tuple[_Ranking, Recommendations]]:
        """The two stages over each query's candidates; a narrowed query whose ranking leaves fewer than k videos
        is ranked again over everything it allows."""
        answers, short = [], []
        ranked = self._two_stage_pass(rankings, [ranking.candidates for ranking in rankings])
        for ranking, (videos, scores) in zip(rankings, ranked):
            positions, complete = ranking.narrowing.pick(videos, ranking.k)
            if complete or ranking.candidates is not None:
                answers.append((ranking, self._recommendations(ranking, videos[positions], scores[positions])))
            else:
                short.append(ranking)
        if short:
            allowed = [
                np.setdiff1d(ranking.narrowing.allowed_videos(self.video_count), ranking.watched, assume_unique=True)
                for ranking in short
            ]
            for ranking, (videos, scores) in zip(short, self._two_stage_pass(short, allowed)):
                positions, _ = ranking.narrowing.pick(videos, ranking.k)
                answers.append((ranking, self._recommendations(ranking, videos[positions], scores[positions])))
        return answers

    def _two_stage_pass(
        self, rankings: list[_Ranking], restrict: list[np.ndarray | None]
    ) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        two_stage: TwoStage = self._two_stage  # type: ignore[assignment]
        for start in range(0, len(rankings), _SCORING_CHUNK):
            chunk = rankings[start : start + _SCORING_CHUNK]
            profiles = Profiles(
                vectors=np.stack([ranking.vector for ranking in chunk]),
                videos=_csr([r.videos for r in chunk], [r.confidences for r in chunk], self.video_count),
                filtered=_csr(
                    [r.watched for r in chunk], [np.ones(len(r.watched), np.float32) for r in chunk], self.video_count
                ),
                restrict=restrict[start : start + _SCORING_CHUNK],
            )
            k = max(ranking.k for ranking in chunk)
            yield from zip(*two_stage.rank(profiles, k))

    # ---- similar videos, and shared pieces ----

    def _similar(self, requests: list[tuple[int, int, int]]) -> list[tuple[int, Recommendations]]:
        if not requests:
            return []
        videos = np.asarray([video for _, video, _ in requests])
        ids, scores = self._catalogue.similar(videos, max(k for _, _, k in requests) + len(self._unavailable))
        answers = []
        for (slot, _, k), row_ids, row_scores in zip(requests, ids, scores):
            keep = ~np.isin(row_ids, self._unavailable) if len(self._unavailable) else slice(None)
            answers.append(
                (slot, Recommendations(self._videos.ids_of(row_ids[keep][:k]), _score_list(row_scores[keep][:k])))
            )
        return answers

    def _recommendations(self, ranking: _Ranking, videos: np.ndarray, scores: np.ndarray) -> Recommendations:
        return Recommendations(
            self._videos.ids_of(videos),
            _score_list(scores),
            unknown_video_ids=ranking.unknown,
            unknown_categories=ranking.narrowing.unknown_categories,
        )

    def _user_videos(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """One user's training videos and confidences, sliced from the CSR arrays (scipy's row indexing is slow)."""
        start, end = self._user_items.indptr[user], self._user_items.indptr[user + 1]
        return self._user_items.indices[start:end], self._user_items.data[start:end]

    def _indices(self, video_ids: Iterable[str]) -> tuple[np.ndarray, list[str]]:
        return self._videos.indices_of(video_ids)

    def _known_indices(self, video_ids: Iterable[str]) -> np.ndarray:
        return self._indices(video_ids)[0] if video_ids else _NO_VIDEOS


@dataclass(eq=False, slots=True)
class _Ranking:
    """One recommend query, resolved to indices: whom to score, what to leave out, among what."""

    slot: int
    k: int
    user: int | None
    fold_in: bool
    videos: np.ndarray  # the user's videos (training ∪ history), sorted
    confidences: np.ndarray
    watched: np.ndarray  # sorted: the user's videos when they are left out, else none
    candidates: np.ndarray | None
    narrowing: Narrowing
    unknown: list[str]
    vector: np.ndarray | None = None


def _score_list(scores: np.ndarray) -> list[float]:
    """Scores to 6 decimals, as answers carry them: float32 holds no more, and the answer stays short."""
    return np.round(np.asarray(scores, dtype=np.float64), 6).tolist()


def _union(sorted_unique: np.ndarray, other: np.ndarray) -> np.ndarray:
    """np.union1d, skipped when one side is empty (the common case; union1d costs a sort even then)."""
    if not len(other):
        return sorted_unique
    return np.union1d(sorted_unique, other) if len(sorted_unique) else other


def _merge_history(
    videos: np.ndarray, confidences: np.ndarray, history: np.ndarray, history_confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Training videos plus fresh history; a video in both keeps the larger confidence."""
    merged = np.union1d(videos, history)
    values = np.zeros(len(merged), dtype=np.float32)
    values[np.searchsorted(merged, history)] = history_confidence
    trained = np.searchsorted(merged, videos)
    values[trained] = np.maximum(values[trained], confidences)
    return merged.astype(np.int32), values


def _csr(rows: list[np.ndarray], values: list[np.ndarray], columns: int) -> csr_matrix:
    """One CSR built from per-row sorted column indices and values, without a dense detour."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(row) for row in rows], out=indptr[1:])
    indices = np.concatenate(rows).astype(np.int32, copy=False) if rows else _NO_VIDEOS
    data = np.concatenate(values).astype(np.float32, copy=False) if values else np.zeros(0, np.float32)
    return csr_matrix((data, indices, indptr), shape=(len(rows), columns))
