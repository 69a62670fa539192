"""The Recommender: one loaded model directory, answering queries (vrmodels.model.queries) with string ids.

Two entry points serve many callers cheaply:
- `quick(query)` answers what needs no scoring pass: a known user from the precomputed top-N lists (a lookup
  and k dot products) and an unknown user from the popularity ranking. It returns None otherwise.
- `answer(queries)` scores everything else in one pass per kind: one fold-in solve for every history, one
  top-k over the catalogue for every ranking, one similar-items call. Results are identical to asking one by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix

from vrmodels.model import topn
from vrmodels.model.artifacts import ModelArtifacts, load_model_dir
from vrmodels.model.catalogue import DEFAULT_POOL, FILTERED_SCORE, CatalogueRanker
from vrmodels.model.queries import Answer, AnyQuery, Query, Recommendations, SimilarQuery, UnknownVideo

_NO_VIDEOS = np.zeros(0, dtype=np.int32)
_SCORING_CHUNK = 256  # queries per top-k call: bounds the scores buffer to 256 × videos floats


class Recommender:
    def __init__(
        self,
        artifacts: ModelArtifacts,
        num_threads: int = 1,
        use_ann: bool = True,
        ann_candidates: int = DEFAULT_POOL,
        ann_ef_search: int = DEFAULT_POOL,
    ):
        parameters = artifacts.manifest.get("parameters", {})
        self.manifest = artifacts.manifest
        self.model_version: str = artifacts.manifest.get("model_version", "unknown")
        self.num_threads = num_threads
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
        self._users, self._videos = artifacts.users, artifacts.videos
        ann = artifacts.ann if use_ann else None
        self._ranker = CatalogueRanker(self._item_factors, ann, ann_candidates, ann_ef_search, num_threads)
        self._popularity = artifacts.popularity
        # Private to each worker, so kept small: 4 bytes per video each.
        self._popular_order = np.argsort(-artifacts.popularity, kind="stable").astype(np.int32)
        top = max(1e-12, float(artifacts.popularity.max(initial=0.0)))
        self._popular_score = (artifacts.popularity / top).astype(np.float32)
        # A history video weighted like a typical training interaction: the median of at most 100,000 evenly
        # spaced confidences (the median of them all would copy every confidence into each worker's memory).
        data = artifacts.user_items.data
        self._history_confidence = float(np.median(data[:: max(1, len(data) // 100_000)])) if len(data) else 1.0

    @classmethod
    def load(cls, model_dir: Path | str, **options: object) -> Recommender:
        """`options`: num_threads, use_ann, ann_candidates, ann_ef_search (see __init__)."""
        return cls(load_model_dir(model_dir), **options)  # type: ignore[arg-type]

    @property
    def approximate(self) -> bool:
        """True when catalogue rankings come from the ANN indexes (re-ranked exactly)."""
        return self._ranker.approximate

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

    def quick(self, query: AnyQuery) -> Recommendations | None:
        """The answer when it needs no scoring pass (precomputed top-N, popular fallback), else None."""
        if isinstance(query, SimilarQuery):
            return None
        user = self._users.index_of(query.user_id) if query.user_id is not None else None
        if user is None:
            return self._popular(query) if not query.history else None
        if query.history or query.candidates is not None or not query.exclude_watched or query.k > self.topn_size:
            return None
        excluded = set(self._known_indices(query.exclude).tolist()) if query.exclude else set()
        videos = topn.lookup(self._topn, user, query.k, excluded)
        if videos is None:
            return None
        scores = self._item_factors[videos] @ self._user_factors[user]
        return Recommendations(self._videos.ids_of(videos), _score_list(scores))

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
            if isinstance(ranking, Recommendations):
                results[slot] = ranking
            else:
                ranked.append(ranking)
        self._fold_in(ranked)
        for ranking in ranked:
            if ranking.candidates is not None:
                results[ranking.slot] = self._rank_candidates(ranking)
        whole_catalogue = [ranking for ranking in ranked if ranking.candidates is None]
        for start in range(0, len(whole_catalogue), _SCORING_CHUNK):
            for ranking, answer in self._rank_catalogue(whole_catalogue[start : start + _SCORING_CHUNK]):
                results[ranking.slot] = answer
        for slot, answer in self._similar(similar):
            results[slot] = answer
        return results  # type: ignore[return-value]

    # ---- internals ----

    def _popular(self, query: Query) -> Recommendations:
        """The fallback: most popular videos, among `candidates` when given, without `exclude`."""
        excluded = set(self._known_indices(query.exclude).tolist()) if query.exclude else set()
        unknown: list[str] = []
        if query.candidates is not None:
            known, unknown = self._indices(query.candidates)
            known = [video for video in known.tolist() if video not in excluded]
            chosen = sorted(known, key=lambda video: (-self._popularity[video], video))[: query.k]
        else:
            chosen = [
                video for video in self._popular_order[: query.k + len(excluded)].tolist() if video not in excluded
            ]
            chosen = chosen[: query.k]
        scores = _score_list(self._popular_score[chosen])
        return Recommendations(self._videos.ids_of(chosen), scores, fallback=True, unknown_video_ids=unknown)

    def _ranking(self, slot: int, query: Query) -> _Ranking | Recommendations:
        """What to score for one recommend query (or its popular answer when there is nothing to score from)."""
        user = self._users.index_of(query.user_id) if query.user_id is not None else None
        unknown: list[str] = []
        history = _NO_VIDEOS
        if query.history:
            history, unknown = self._indices(query.history)
        if user is None and len(history) == 0:
            answer = self._popular(query)
            return Recommendations(answer.video_ids, answer.scores, True, unknown + answer.unknown_video_ids)
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
            filtered=_union(videos if query.exclude_watched else _NO_VIDEOS, self._known_indices(query.exclude)),
            candidates=candidates,
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

    def _rank_candidates(self, ranking: _Ranking) -> Recommendations:
        videos = np.setdiff1d(ranking.candidates, ranking.filtered, assume_unique=True)
        scores = self._item_factors[videos] @ ranking.vector
        best = np.argsort(-scores, kind="stable")[: ranking.k]
        return Recommendations(
            self._videos.ids_of(videos[best]), _score_list(scores[best]), unknown_video_ids=ranking.unknown
        )

    def _rank_catalogue(self, rankings: list[_Ranking]) -> list[tuple[_Ranking, Recommendations]]:
        if not rankings:
            return []
        k = max(ranking.k for ranking in rankings)
        filters = _csr(
            [r.filtered for r in rankings], [np.ones(len(r.filtered), np.float32) for r in rankings], self.video_count
        )
        ids, scores = self._ranker.top_k(np.stack([ranking.vector for ranking in rankings]), filters, k)
        answers = []
        for ranking, row_ids, row_scores in zip(rankings, ids, scores):
            keep = row_scores[: ranking.k] > FILTERED_SCORE
            answer = Recommendations(
                self._videos.ids_of(row_ids[: ranking.k][keep]),
                _score_list(row_scores[: ranking.k][keep]),
                unknown_video_ids=ranking.unknown,
            )
            answers.append((ranking, answer))
        return answers

    def _similar(self, requests: list[tuple[int, int, int]]) -> list[tuple[int, Recommendations]]:
        if not requests:
            return []
        videos = np.asarray([video for _, video, _ in requests])
        ids, scores = self._ranker.similar(videos, max(k for _, _, k in requests))
        return [
            (slot, Recommendations(self._videos.ids_of(row_ids[:k]), _score_list(row_scores[:k])))
            for (slot, _, k), row_ids, row_scores in zip(requests, ids, scores)
        ]

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
    filtered: np.ndarray  # sorted video indices never to return
    candidates: np.ndarray | None
    unknown: list[str]
    vector: np.ndarray | None = None


def _score_list(scores: np.ndarray) -> list[float]:
    """Scores to 6 decimals, as answers carry them: float32 holds no more, and the answer stays short."""
    return np.round(scores.astype(np.float64), 6).tolist()


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
