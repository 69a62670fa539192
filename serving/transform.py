"""/invocations as decode → predict → encode, and the one place where faults become HTTP statuses.

Every fault ends here: a ServingError carries its own status; the recommender's own errors map through
FAULTS; a timeout is 504; anything else is a real fault, 500, logged with the request id and never with a
traceback in the body. A batch answers each slot with its own result or error.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from starlette.requests import Request
from starlette.responses import Response

from serving import codecs
from serving.environment import Settings
from serving.errors import InternalError, NotFound, PayloadTooLarge, RequestTimeout, ServingError
from serving.state import ModelState
from vrmodels.recommend import UnknownVideoError

log = logging.getLogger(__name__)

FAULTS: dict[type[Exception], type[ServingError]] = {UnknownVideoError: NotFound}


def as_serving_error(fault: Exception) -> ServingError | None:
    """The ServingError a fault answers with, or None for a real fault (a 500)."""
    if isinstance(fault, ServingError):
        return fault
    for kind, error in FAULTS.items():
        if isinstance(fault, kind):
            return error(f"video_id: {fault}" if isinstance(fault, UnknownVideoError) else str(fault))
    return None


def error_response(error: ServingError) -> Response:
    return Response(orjson.dumps(error.body()), status_code=error.status, media_type=codecs.JSON)


class Transformer:
    def __init__(self, settings: Settings, state: ModelState):
        self.settings = settings
        self.state = state

    async def __call__(self, request: Request) -> Response:
        self.state.in_flight += 1
        try:
            return await self._transform(request)
        except ServingError as error:
            return error_response(error)
        except Exception:
            request_id = request.scope["state"].get("request_id")
            log.exception("invocation failed", extra={"request_id": request_id})
            return error_response(InternalError(f"internal error; request id {request_id}"))
        finally:
            self.state.in_flight -= 1

    async def _transform(self, request: Request) -> Response:
        predictor, budget = self.state.ready()
        request_type = codecs.request_kind(request.headers.get("content-type"))
        answer_type = codecs.response_type(request.headers.get("accept"), request_type)
        decoded = codecs.decode(await read_body(request, self.settings.max_payload_bytes), request_type)
        outcome = request.scope["state"]["outcome"] = {"Queries": len(decoded.payloads)}
        budget.check(decoded.payloads)
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):  # no task per request, unlike wait_for
                results = await predictor.predict(decoded.payloads)
        except TimeoutError:
            raise RequestTimeout(f"prediction took longer than {self.settings.timeout_seconds:g}s") from None
        outcome |= _count(decoded.payloads, results)
        bodies = [_slot_body(result) for result in results]
        if not decoded.batched and not isinstance(results[0], dict):
            return Response(orjson.dumps(bodies[0]), status_code=bodies[0]["error"]["status"], media_type=codecs.JSON)
        return Response(codecs.encode(bodies, decoded.batched, answer_type), media_type=answer_type)


def _count(payloads: list[object], results: list[dict | Exception]) -> dict[str, int]:
    """What the metrics report about the answers (serving.metrics)."""
    fold_ins = sum(1 for payload in payloads if isinstance(payload, dict) and payload.get("history"))
    answers = [result for result in results if isinstance(result, dict)]
    fallbacks = sum(1 for answer in answers if answer.get("fallback"))
    empty = sum(1 for answer in answers if not answer.get("recommendations", answer.get("similar")))
    return {"FoldIns": fold_ins, "Fallbacks": fallbacks, "EmptyAnswers": empty}


def _slot_body(result: dict | Exception) -> dict:
    if isinstance(result, dict):
        return result
    error = as_serving_error(result)
    if error is None:
        raise result
    return error.body()


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (before any parsing)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the {limit} byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the {limit} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
