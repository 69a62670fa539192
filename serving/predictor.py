"""Validated requests → recommender queries → response bodies: the predict step of decode → predict → encode.

Answers that need no scoring pass (a known user's precomputed top-N, the popular fallback) are computed on the
event loop for small requests: cheaper than a thread hop. Everything else, and every query of a large request,
goes through the worker's micro-batcher to its scoring thread. A failing query yields its exception in its own
slot; `serving.transform` turns exceptions into statuses.
"""

from __future__ import annotations

from collections.abc import Callable

from serving.batcher import MicroBatcher
from serving.errors import ServingError
from serving.schemas import parse_request
from vrmodels.recommend import Query, Recommendations, Recommender, SimilarQuery

INLINE_LIMIT = 16  # queries a request may have and still get its cheap answers on the event loop

Result = dict | Exception


class Predictor:
    def __init__(self, recommender: Recommender, max_batch: int, max_wait: float, in_flight: Callable[[], int]):
        self.recommender = recommender
        self._batcher: MicroBatcher[Query | SimilarQuery, Result] = MicroBatcher(
            self.score, max_batch, max_wait, in_flight
        )

    async def predict(self, payloads: list[object]) -> list[Result]:
        results: list[Result | None] = [None] * len(payloads)
        queries: list[tuple[int, Query | SimilarQuery]] = []
        for slot, payload in enumerate(payloads):
            try:
                if isinstance(payload, ServingError):
                    raise payload
                queries.append((slot, parse_request(payload).to_query()))
            except ServingError as error:
                results[slot] = error
        if len(queries) <= INLINE_LIMIT:
            unanswered = []
            for slot, query in queries:
                answer = self.recommender.quick(query)
                if answer is None:
                    unanswered.append((slot, query))
                else:
                    results[slot] = body(query, answer)
            queries = unanswered
        if queries:
            scored = await self._batcher.run([query for _, query in queries])
            for (slot, _), result in zip(queries, scored):
                results[slot] = result
        return results  # type: ignore[return-value]

    def score(self, queries: list[Query | SimilarQuery]) -> list[Result]:
        """Answers for one batch, on the scoring thread: cheap ones first, one exact pass for the rest."""
        answers: list = [self.recommender.quick(query) for query in queries]
        unanswered = [slot for slot, answer in enumerate(answers) if answer is None]
        for slot, answer in zip(unanswered, self.recommender.answer([queries[slot] for slot in unanswered])):
            answers[slot] = answer
        return [answer if isinstance(answer, Exception) else body(q, answer) for q, answer in zip(queries, answers)]

    def warm_up(self) -> None:
        """Touch every code path once (precomputed, fold-in, catalogue, similar) so the first request is not slow."""
        some_video = self.recommender.popular(1).video_ids[0]
        queries = [
            Query("warm-up", 1, history=[some_video]),
            Query("warm-up", 1),
            SimilarQuery(some_video, 1),
        ]
        results = self.score(queries)
        if not all(isinstance(result, dict) for result in results):
            raise RuntimeError(f"warm-up prediction failed: {results}")

    def close(self) -> None:
        self._batcher.close()


def body(query: Query | SimilarQuery, answer: Recommendations) -> dict:
    items = [{"videoId": video, "score": round(score, 6)} for video, score in zip(answer.video_ids, answer.scores)]
    if isinstance(query, SimilarQuery):
        return {"videoId": query.video_id, "similar": items}
    result: dict = {"userId": query.user_id, "recommendations": items}
    if answer.fallback:
        result["fallback"] = True
    if answer.unknown_video_ids:
        result["unknownVideoIds"] = answer.unknown_video_ids
    return result
