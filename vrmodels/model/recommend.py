"""The Recommender: one loaded model directory answering queries (vrmodels.model.queries) with string ids.

resolve (vrmodels.model.resolve) → rank by the model's kind (vrmodels.model.ranking) → answers. Two entry
points serve many callers cheaply:
- `lookup(query)` answers what needs no ranking: a known user from the precomputed top-N lists (a lookup, then
  the list narrowed as the query asks), up next for anyone from the precomputed up-next lists, and a user the
  model cannot personalise from the popularity ranking. It returns None otherwise.
- `rank(queries)` ranks everything else in one pass: one fold-in solve for every history, one ranking call for
  every recommend query, one up-next call. Each answer is the one the query would get alone.

Up next for one viewer (`SimilarQuery` with a user or a history) is a recommend query for that viewer, who has just
watched the video: its history ends with it, and the answer leaves it out. Up next for anyone is the ranking's
`similar` (factor similarity, blended with the watched-next table when the model has one), or, for a ranking that
`ranks_up_next`, a sitting of that one watch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vrmodels.model.artifacts import ModelArtifactError, ModelArtifacts, load_model_dir
from vrmodels.model.manifest import Manifest
from vrmodels.model.queries import (
    Answer,
    AnyQuery,
    Query,
    Recommendations,
    SimilarQuery,
    UnknownVideo,
    UnsupportedFilter,
    Watch,
)
from vrmodels.model.ranking import RANKINGS
from vrmodels.model.ranking.base import SCORING_CHUNK, Ranked, Ranking
from vrmodels.model.resolve import FoldIn, ResolvedQuery, Resolver, batch_of, score_list
from vrmodels.model.topk import DEFAULT_POOL, CatalogueTopK
from vrmodels.model.topn import PrecomputedLists


@dataclass(frozen=True)
class ScoringOptions:
    """How a loaded model scores (the server's settings choose them)."""

    num_threads: int = 1
    use_ann: bool = True
    """Use the model's ANN indexes when it has them (False: every top-k exact)."""
    ann_candidates: int = DEFAULT_POOL
    ann_ef_search: int = DEFAULT_POOL
    column_major_copy: bool = True
    """Exact top-k scores a column-major copy of the item factors (vrmodels.model.topk)."""


class Recommender:
    def __init__(self, artifacts: ModelArtifacts, options: ScoringOptions = ScoringOptions()):
        self.manifest: Manifest = artifacts.manifest
        self._videos = artifacts.videos
        self.users = artifacts.users
        self.resolver = Resolver(artifacts)
        self._fold_in = FoldIn(artifacts, options.num_threads)
        topk = CatalogueTopK(
            np.asarray(artifacts.item_factors),
            artifacts.ann if options.use_ann else None,
            pool=options.ann_candidates,
            ef_search=options.ann_ef_search,
            num_threads=options.num_threads,
            column_major_copy=options.column_major_copy,
        )
        kind = RANKINGS.get(self.manifest.kind)
        if kind is None:
            raise ModelArtifactError(
                f"{artifacts.directory}: model kind {self.manifest.kind!r}, this code serves {', '.join(RANKINGS)}"
            )
        self.ranking: Ranking = kind.from_artifacts(artifacts, topk, self.resolver.unavailable)
        self._lists = None
        if artifacts.topn is not None:
            factors = (np.asarray(artifacts.user_factors), np.asarray(artifacts.item_factors))
            self._lists = PrecomputedLists(artifacts.topn, artifacts.topn_scores, factors=factors)
        self._up_next = None
        if artifacts.up_next is not None:
            self._up_next = PrecomputedLists(artifacts.up_next, artifacts.up_next_scores)
        self._plain = self.resolver.plain()

    @classmethod
    def load(cls, model_dir: Path | str, options: ScoringOptions = ScoringOptions()) -> Recommender:
        return cls(load_model_dir(model_dir), options)

    @property
    def model_version(self) -> str:
        return self.manifest.model_version

    @property
    def approximate(self) -> bool:
        """True when catalogue rankings come from the ANN indexes (re-ranked exactly)."""
        return self.ranking.topk.approximate

    @property
    def user_count(self) -> int:
        return len(self.users)

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
        return 0 if self._lists is None else self._lists.size

    @property
    def up_next_size(self) -> int:
        """N of the precomputed up-next lists (0 when the model directory has none)."""
        return 0 if self._up_next is None else self._up_next.size

    def lookup(self, query: AnyQuery) -> Recommendations | UnsupportedFilter | None:
        """The answer when it needs no ranking (precomputed top-N or up next, popular fallback), else None."""
        if isinstance(query, SimilarQuery):
            return self._listed_up_next(query)
        narrowing = self.resolver.narrowing(query)
        if isinstance(narrowing, UnsupportedFilter):
            return narrowing
        user = self.resolver.user(query.user_id)
        if user is None:
            return self.resolver.popular(query, narrowing) if not query.history else None
        if self._lists is None or query.history or query.candidates is not None or not query.exclude_watched:
            return None
        found = self._lists.lookup(user, narrowing, query.k)
        if found is None:
            return None
        videos, scores = found
        return Recommendations(
            self._videos.ids_of(videos), score_list(scores), unknown_categories=narrowing.unknown_categories
        )

    def _listed_up_next(self, query: SimilarQuery) -> Recommendations | None:
        """Up next for anyone from the precomputed lists; None for a viewer's, an unknown video (rank() answers it)
        or a k beyond the lists."""
        if self._up_next is None or query.personal:
            return None
        video = self._videos.index_of(query.video_id)
        found = None if video is None else self._up_next.lookup(video, self._plain, query.k)
        if found is None:
            return None
        videos, scores = found
        return Recommendations(self._videos.ids_of(videos), score_list(scores))

    def rank(self, queries: Sequence[AnyQuery]) -> list[Answer]:
        """Exact answers to many queries, ranked together; an unknown `video_id` is answered UnknownVideo."""
        results: list[Answer | None] = [None] * len(queries)
        resolved: list[tuple[int, ResolvedQuery]] = []
        similar: list[tuple[int, int, int]] = []
        for slot, query in enumerate(queries):
            if isinstance(query, SimilarQuery):
                video = self._videos.index_of(query.video_id)
                if video is None:
                    results[slot] = UnknownVideo(query.video_id)
                    continue
                if not query.personal and not self.ranking.ranks_up_next:
                    similar.append((slot, video, query.k))
                    continue
                query = after_watching(query)
            outcome = self.resolver.resolve(query)
            if isinstance(outcome, ResolvedQuery):
                resolved.append((slot, outcome))
            else:
                results[slot] = outcome
        if resolved:
            ranked = self.ranked([query for _, query in resolved])
            for (slot, query), (videos, scores) in zip(resolved, ranked):
                results[slot] = Recommendations(
                    self._videos.ids_of(videos),
                    score_list(scores),
                    unknown_video_ids=query.unknown,
                    unknown_categories=query.narrowing.unknown_categories,
                )
        if similar:
            videos = np.asarray([video for _, video, _ in similar])
            for (slot, _, _), (ids, scores) in zip(similar, self.ranking.similar(videos, [k for *_, k in similar])):
                results[slot] = Recommendations(self._videos.ids_of(ids), score_list(scores))
        return results  # type: ignore[return-value]

    def ranked(self, queries: Sequence[ResolvedQuery], *, chunk: int = SCORING_CHUNK) -> list[Ranked]:
        """Resolved queries ranked together, `chunk` at a time: each one's videos (indices) and scores."""
        sittings = self.resolver.sessions is not None
        batch = batch_of(queries, self.video_count, fold_in=self._fold_in, sittings=sittings)
        return self.ranking.rank(batch, chunk=chunk)


def after_watching(query: SimilarQuery) -> Query:
    """Up next as a recommend query: the viewer's (or anyone's) recommendations, their sitting ending with the video
    just watched."""
    history = [*(query.history or ()), Watch(query.video_id)]
    return Query(query.user_id, query.k, history=history)
