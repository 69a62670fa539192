"""ALS alone: videos ordered by the inner product of the user's factors with theirs.

A query ranked among given candidates, or narrowed to part of the catalogue (categories, publication time), is
scored exactly over the videos it allows; every other query gets one top-k over the catalogue
(vrmodels.model.topk), many queries per call. A per-channel cap fetches deeper, four times as deep each round,
until k videos survive it.
"""

from __future__ import annotations

import numpy as np

from vrmodels.model.artifacts import ModelArtifacts
from vrmodels.model.indices import rows_matrix, union
from vrmodels.model.ranking.base import SCORING_CHUNK, QueryBatch, Ranked, Ranking, session_options
from vrmodels.model.topk import FILTERED_SCORE, CatalogueTopK


class AlsRanking(Ranking):
    kind = "als"
    label = "ALS"

    @classmethod
    def from_artifacts(cls, artifacts: ModelArtifacts, topk: CatalogueTopK, unavailable: np.ndarray) -> AlsRanking:
        return cls(np.asarray(artifacts.item_factors), topk, unavailable, **session_options(artifacts))

    def rank(self, batch: QueryBatch, *, chunk: int = SCORING_CHUNK) -> list[Ranked]:
        answers: list[Ranked | None] = [None] * len(batch)
        whole_catalogue = []
        for row, narrowing in enumerate(batch.narrowings):
            among = batch.candidates[row]
            if narrowing.restricts:
                allowed = narrowing.allowed_videos(len(self.items))
                among = allowed if among is None else np.intersect1d(among, allowed, assume_unique=True)
            if among is None:
                whole_catalogue.append(row)
            else:
                answers[row] = self._rank_among(batch, row, among)
        for start in range(0, len(whole_catalogue), chunk):
            rows = whole_catalogue[start : start + chunk]
            for row, answer in zip(rows, self._rank_catalogue(batch, rows)):
                answers[row] = answer
        return answers  # type: ignore[return-value]

    def _rank_among(self, batch: QueryBatch, row: int, among: np.ndarray) -> Ranked:
        narrowing = batch.narrowings[row]
        videos = np.setdiff1d(among, union(batch.watched_of(row), narrowing.excluded), assume_unique=True)
        scores = self.items[videos] @ batch.vectors[row]
        order = np.argsort(-scores, kind="stable")
        positions, _ = narrowing.pick(videos[order], int(batch.k[row]))
        best = order[positions]
        return videos[best], scores[best]

    def _rank_catalogue(self, batch: QueryBatch, rows: list[int]) -> list[Ranked]:
        """One top-k over the catalogue for many rows; a per-channel cap fetches deeper until k survive."""
        answers: dict[int, Ranked] = {}
        pending, depth = rows, 1
        while pending:
            narrowings = [batch.narrowings[row] for row in pending]
            wanted = [int(batch.k[row]) * (4**depth if n.max_per_channel else 1) for row, n in zip(pending, narrowings)]
            k = min(max(wanted), len(self.items))
            filtered = [union(batch.watched_of(row), n.excluded) for row, n in zip(pending, narrowings)]
            ids, scores = self.topk.top_k(batch.vectors[pending], rows_matrix(filtered, len(self.items)), k)
            deeper = []
            for row, narrowing, row_ids, row_scores in zip(pending, narrowings, ids, scores):
                valid = row_scores > FILTERED_SCORE
                positions, complete = narrowing.pick(row_ids[valid], int(batch.k[row]))
                if complete or k >= len(self.items) or not narrowing.max_per_channel:
                    answers[row] = (row_ids[valid][positions], row_scores[valid][positions])
                else:
                    deeper.append(row)
            pending, depth = deeper, depth + 1
        return [answers[row] for row in rows]
