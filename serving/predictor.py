"""Validated requests → recommender calls → response objects (decode → predict → encode's middle step).

Plain known-user requests in one batch go through the recommender's batched top-k together; every
other request is answered on its own. A failing request yields its error in its own slot.
"""

from __future__ import annotations

from collections import defaultdict

from serving.errors import NotFound, ServingError
from serving.schemas import RecommendRequest, SimilarRequest, parse_request
from vrmodels.recommend import Recommendation, Recommendations, Recommender, UnknownVideoError

Result = dict | ServingError


class Predictor:
    def __init__(self, recommender: Recommender):
        self.recommender = recommender

    def predict(self, payloads: list[object]) -> list[Result]:
        results: list[Result | None] = [None] * len(payloads)
        batchable: dict[tuple[int, bool], list[tuple[int, RecommendRequest]]] = defaultdict(list)
        for slot, payload in enumerate(payloads):
            try:
                if isinstance(payload, ServingError):
                    raise payload
                request = parse_request(payload)
                if len(payloads) > 1 and isinstance(request, RecommendRequest) and request.is_plain:
                    batchable[(request.k, request.exclude_watched)].append((slot, request))
                else:
                    results[slot] = self._answer(request)
            except ServingError as error:
                results[slot] = error
        for (k, exclude_watched), members in batchable.items():
            user_ids = [request.user_id for _, request in members]
            answers = self.recommender.recommend_batch(user_ids, k=k, exclude_watched=exclude_watched)
            for (slot, request), answer in zip(members, answers):
                results[slot] = recommendations_body(request.user_id, answer)
        return results  # type: ignore[return-value]

    def warm_up(self) -> None:
        """Touch every code path once (batched, fold-in, similar) so the first real request is not slow."""
        some_video = self.recommender.popular(1).items[0].video_id
        self.predict([{"user_id": "warm-up", "history": [some_video], "k": 1}, {"video_id": some_video, "k": 1}])
        results = self.predict([{"user_id": "warm-up", "k": 1}] * 2)
        if not all(isinstance(result, dict) for result in results):
            raise RuntimeError(f"warm-up prediction failed: {results}")

    def _answer(self, request: RecommendRequest | SimilarRequest) -> dict:
        if isinstance(request, SimilarRequest):
            try:
                similar = self.recommender.similar(request.video_id, k=request.k)
            except UnknownVideoError as exc:
                raise NotFound(f"video_id: {exc}") from None
            return {"videoId": request.video_id, "similar": _items(similar)}
        answer = self.recommender.recommend(
            request.user_id,
            k=request.k,
            exclude_watched=request.exclude_watched,
            exclude=request.exclude,
            candidates=request.candidates,
            history=request.history,
        )
        return recommendations_body(request.user_id, answer)


def recommendations_body(user_id: str | None, answer: Recommendations) -> dict:
    body: dict = {"userId": user_id, "recommendations": _items(answer.items)}
    if answer.fallback:
        body["fallback"] = True
    if answer.unknown_video_ids:
        body["unknownVideoIds"] = answer.unknown_video_ids
    return body


def _items(items: list[Recommendation]) -> list[dict]:
    return [{"videoId": item.video_id, "score": round(item.score, 6)} for item in items]
