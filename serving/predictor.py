"""Parsed queries → outcomes: the predict step of decode → predict → encode.

Answers that need no scoring pass (a known user's precomputed top-N, the popular fallback) are computed on the
event loop for small requests: cheaper than a thread hop. Everything else, and every query of a large request,
goes through the worker's micro-batcher, which scores it on the worker's scoring thread (a lone query on the event
loop: serving.batcher); `Recommender.lookup` runs there only for queries that have not tried it yet. Each
query's result is typed where it is made: answered, or a ServingError in its own slot (an unknown video: 404; a
fault nobody foresaw: 500, logged with the request id, the other queries of the batch answered as usual).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from serving.batcher import MicroBatcher
from serving.errors import InternalError, InvalidRequest, NotFound, ServingError
from serving.outcomes import Answered, Outcome, Parsed
from vrmodels.model.queries import Answer, AnyQuery, Query, SimilarQuery, UnknownVideo, UnsupportedFilter
from vrmodels.model.recommend import Recommender

log = logging.getLogger(__name__)

INLINE_LIMIT = 16  # queries a request may have and still get its cheap answers on the event loop


@dataclass(slots=True)
class Job:
    """One query on its way to the micro-batcher."""

    recommender: Recommender
    query: AnyQuery
    request_id: str
    lookup_tried: bool


class Predictor:
    """One per worker: its micro-batcher and scoring thread serve every model the worker holds."""

    def __init__(self, max_batch: int, max_wait: float):
        self.batcher: MicroBatcher[Job, Outcome] = MicroBatcher(self.score, max_batch, max_wait)

    async def predict(
        self, recommender: Recommender, parsed: Sequence[Parsed], request_id: str, *, timeout: float
    ) -> list[Outcome]:
        """Each query's outcome, in order; TimeoutError when scoring takes longer than `timeout` seconds (answers
        that need no scoring never wait, so they are never timed)."""
        outcomes: list[Outcome | None] = [None] * len(parsed)
        pending: list[tuple[int, AnyQuery]] = []
        for slot, item in enumerate(parsed):
            if isinstance(item, ServingError):
                outcomes[slot] = item
            else:
                pending.append((slot, item))
        inline = len(pending) <= INLINE_LIMIT
        if inline:
            unanswered = []
            for slot, query in pending:
                outcome = _lookup(recommender, query, request_id)
                if outcome is None:
                    unanswered.append((slot, query))
                else:
                    outcomes[slot] = outcome
            pending = unanswered
        if pending:
            jobs = [Job(recommender, query, request_id, inline) for _, query in pending]
            scored = await self.batcher.run(jobs, timeout)
            for (slot, _), outcome in zip(pending, scored):
                outcomes[slot] = outcome
        return outcomes  # type: ignore[return-value]

    def score(self, jobs: list[Job]) -> list[Outcome]:
        """Outcomes for one batch of the micro-batcher: cheap answers first, one exact pass per model for the rest."""
        outcomes: list[Outcome | None] = [None] * len(jobs)
        by_model: dict[Recommender, list[int]] = {}
        for index, job in enumerate(jobs):
            if not job.lookup_tried:
                outcomes[index] = _lookup(job.recommender, job.query, job.request_id)
            if outcomes[index] is None:
                by_model.setdefault(job.recommender, []).append(index)
        for recommender, indices in by_model.items():
            try:
                answers: list[Answer | ServingError] = recommender.rank([jobs[i].query for i in indices])
            except Exception:  # one query's fault must not fail the others: score them one by one
                answers = [_answer_alone(jobs[i]) for i in indices]
            for index, answer in zip(indices, answers):
                outcomes[index] = _outcome(jobs[index].query, answer)
        return outcomes  # type: ignore[return-value]

    def warm_up(self, recommender: Recommender) -> None:
        """Touch every code path once (precomputed, fold-in, catalogue, similar) so the first request is not slow."""
        popular = recommender.lookup(Query(None, 1))
        some_video = popular.video_ids[0]  # type: ignore[union-attr]  (an unknown user always gets the fallback)
        queries = [Query("warm-up", 1, history=[some_video]), Query("warm-up", 1), SimilarQuery(some_video, 1)]
        outcomes = self.score([Job(recommender, query, "warm-up", lookup_tried=False) for query in queries])
        if not all(isinstance(outcome, Answered) for outcome in outcomes):
            raise RuntimeError(f"warm-up prediction failed: {outcomes}")

    def close(self) -> None:
        self.batcher.close()


def _lookup(recommender: Recommender, query: AnyQuery, request_id: str) -> Outcome | None:
    try:
        answer = recommender.lookup(query)
    except Exception:
        return _fault(request_id)
    return None if answer is None else _outcome(query, answer)


def _answer_alone(job: Job) -> Answer | ServingError:
    try:
        return job.recommender.rank([job.query])[0]
    except Exception:
        return _fault(job.request_id)


def _fault(request_id: str) -> InternalError:
    log.exception("query failed", extra={"request_id": request_id})
    return InternalError(request_id)


def _outcome(query: AnyQuery, answer: Answer | ServingError) -> Outcome:
    if isinstance(answer, ServingError):
        return answer
    if isinstance(answer, UnknownVideo):
        return NotFound(f"video_id: {answer}")
    if isinstance(answer, UnsupportedFilter):
        return InvalidRequest(str(answer))
    return Answered(query, answer)
