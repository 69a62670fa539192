"""The recommend API: the only part of `vrmodels` that the server imports.

Load a model directory once, then ask for top-k videos for a known user, for a watch history the
model has never seen (fold-in), for many users at once, for the most popular videos, or for videos
similar to one video. Ids in and out are the product's string ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix

from vrmodels.artifacts import MANIFEST_FILE, ModelArtifactError, ModelArtifacts, load_model_dir
from vrmodels.evaluation import FILTERED_SCORE

_NO_VIDEOS = np.zeros(0, dtype=np.int64)

__all__ = [
    "ModelArtifactError",
    "Recommendation",
    "Recommendations",
    "Recommender",
    "UnknownVideoError",
    "is_model_dir",
]


def is_model_dir(directory: Path | str) -> bool:
    """True when `directory` holds a model (a manifest), e.g. one SageMaker extracted into /opt/ml/model."""
    return (Path(directory) / MANIFEST_FILE).is_file()


class UnknownVideoError(KeyError):
    def __init__(self, video_id: str):
        super().__init__(video_id)
        self.video_id = video_id

    def __str__(self) -> str:
        return f"video {self.video_id!r} is not in the model"


@dataclass(frozen=True)
class Recommendation:
    video_id: str
    score: float


@dataclass(frozen=True)
class Recommendations:
    items: list[Recommendation]
    fallback: bool = False
    """True when the user was unknown and had no history, so these are the most popular videos."""
    unknown_video_ids: list[str] = field(default_factory=list)
    """Ids from `history` or `candidates` that the model does not know; they were not used."""


class Recommender:
    def __init__(self, artifacts: ModelArtifacts, num_threads: int = 1):
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
        self._model.user_factors = np.asarray(artifacts.user_factors)
        self._model.item_factors = np.asarray(artifacts.item_factors)
        self._user_items = artifacts.user_items
        self._video_ids = np.asarray(artifacts.video_ids, dtype=object)
        self._user_index = {user_id: index for index, user_id in enumerate(artifacts.user_ids)}
        self._video_index = {video_id: index for index, video_id in enumerate(artifacts.video_ids)}
        self._popular_order = np.argsort(-artifacts.popularity, kind="stable")
        self._popular_score = artifacts.popularity / max(1e-12, float(artifacts.popularity.max(initial=0.0)))
        # A history video the model has not seen weighted like a typical training interaction.
        self._history_confidence = float(np.median(artifacts.user_items.data)) if artifacts.user_items.nnz else 1.0

    @classmethod
    def load(cls, model_dir: Path | str, num_threads: int = 1) -> Recommender:
        return cls(load_model_dir(model_dir), num_threads=num_threads)

    @property
    def video_count(self) -> int:
        return len(self._video_ids)

    def knows_user(self, user_id: str) -> bool:
        return user_id in self._user_index

    def recommend(
        self,
        user_id: str | None,
        k: int = 10,
        exclude_watched: bool = True,
        exclude: Iterable[str] = (),
        candidates: Sequence[str] | None = None,
        history: Sequence[str] | None = None,
    ) -> Recommendations:
        """Top-k for one user. `history` folds fresh watches in; unknown user and no history → popular."""
        user = self._user_index.get(user_id) if user_id is not None else None
        if user is None and not history:
            return self.popular(k, exclude=exclude)
        unknown: list[str] = []
        if history:
            known_history, unknown_history = self._indices(history)
            unknown += unknown_history
            row = self._history_row(user, known_history)
            query: int | np.ndarray = 0
            recalculate = True
        else:
            row = self._user_row(user)
            query = user
            recalculate = False
        excluded = self._known_indices(exclude)
        items = None
        if candidates is not None:
            known_candidates, unknown_candidates = self._indices(candidates)
            unknown += unknown_candidates
            items = np.setdiff1d(known_candidates, excluded)
            if len(items) == 0:
                return Recommendations([], unknown_video_ids=unknown)
        ids, scores = self._model.recommend(
            query,
            row,
            N=min(k, self.video_count),  # implicit pads with video 0 at score 0 past the catalogue
            filter_already_liked_items=exclude_watched,
            filter_items=excluded if items is None and len(excluded) else None,
            recalculate_user=recalculate,
            items=items,
        )
        return Recommendations(self._to_items(ids, scores), unknown_video_ids=unknown)

    def recommend_batch(
        self, user_ids: Sequence[str], k: int = 10, exclude_watched: bool = True
    ) -> list[Recommendations]:
        """Many users through implicit's batched top-k; unknown users get the popular fallback."""
        results: list[Recommendations | None] = [None] * len(user_ids)
        known = [(slot, self._user_index[u]) for slot, u in enumerate(user_ids) if u in self._user_index]
        if known:
            slots, users = (np.asarray(column) for column in zip(*known))
            ids, scores = self._model.recommend(
                users, self._user_items[users], N=min(k, self.video_count), filter_already_liked_items=exclude_watched
            )
            for slot, row_ids, row_scores in zip(slots, ids, scores):
                results[slot] = Recommendations(self._to_items(row_ids, row_scores))
        popular = None
        for slot, result in enumerate(results):
            if result is None:
                popular = popular or self.popular(k)
                results[slot] = popular
        return results  # type: ignore[return-value]

    def popular(self, k: int = 10, exclude: Iterable[str] = ()) -> Recommendations:
        """Most-watched videos; score = popularity relative to the most popular video (1.0)."""
        excluded = set(self._known_indices(exclude).tolist())
        chosen = [i for i in self._popular_order[: k + len(excluded)] if i not in excluded][:k]
        return Recommendations(
            [Recommendation(self._video_ids[i], float(self._popular_score[i])) for i in chosen], fallback=True
        )

    def similar(self, video_id: str, k: int = 10) -> list[Recommendation]:
        """Videos whose factors are closest by cosine, the video itself left out."""
        video = self._video_index.get(video_id)
        if video is None:
            raise UnknownVideoError(video_id)
        ids, scores = self._model.similar_items(video, N=min(k + 1, self.video_count))
        keep = ids != video
        return self._to_items(ids[keep][:k], scores[keep][:k])

    def _user_videos(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """One user's training videos and confidences, sliced from the CSR arrays (scipy's row indexing is slow)."""
        start, end = self._user_items.indptr[user], self._user_items.indptr[user + 1]
        return self._user_items.indices[start:end], self._user_items.data[start:end]

    def _user_row(self, user: int) -> csr_matrix:
        videos, confidences = self._user_videos(user)
        return csr_matrix((confidences, videos, np.array([0, len(videos)])), shape=(1, self.video_count))

    def _history_row(self, user: int | None, history: np.ndarray) -> csr_matrix:
        """The user's training row (if any) plus the history videos, as a 1-row CSR for fold-in."""
        confidences = np.zeros(self.video_count, dtype=np.float32)
        confidences[history] = self._history_confidence
        if user is not None:
            known, known_confidences = self._user_videos(user)
            confidences[known] = np.maximum(confidences[known], known_confidences)
        return csr_matrix(confidences.reshape(1, -1))

    def _indices(self, video_ids: Iterable[str]) -> tuple[np.ndarray, list[str]]:
        known, unknown = [], []
        for video_id in video_ids:
            index = self._video_index.get(video_id)
            if index is None:
                unknown.append(video_id)
            else:
                known.append(index)
        return np.unique(np.asarray(known, dtype=np.int64)), unknown

    def _known_indices(self, video_ids: Iterable[str]) -> np.ndarray:
        return self._indices(video_ids)[0] if video_ids else _NO_VIDEOS

    def _to_items(self, ids: np.ndarray, scores: np.ndarray) -> list[Recommendation]:
        keep = scores > FILTERED_SCORE  # implicit pads with filtered items when fewer than k remain
        return [Recommendation(v, float(s)) for v, s in zip(self._video_ids[ids[keep]], scores[keep])]
