"""An invocation as decode → parse → budget → predict → encode, one way through.

Faults carry their status from where they arise (serving.errors): a ServingError raised anywhere ends the
request with its status; one standing in a query's slot is encoded in that slot. The only mapping left is the
catch-all for a fault nobody foresaw: 500, logged with the request id, never a traceback in the body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope

from serving import codecs, wire
from serving.errors import ClientClosedRequest, InternalError, PayloadTooLarge, RequestTimeout, ServingError
from serving.metrics import STATS_KEY, InvocationStats
from serving.models import LoadedModel
from serving.predictor import Predictor
from serving.settings import Settings

log = logging.getLogger(__name__)

STREAM_SLICE = 1000  # queries parsed, scored and encoded at a time in a Batch Transform mini-batch


class InvocationHandler:
    def __init__(self, settings: Settings, predictor: Predictor):
        self.settings = settings
        self.predictor = predictor

    async def __call__(
        self, scope: Scope, receive: Receive, resolve: Callable[[], Awaitable[LoadedModel]], *, model_name: str = ""
    ) -> Response:
        """Answer one invocation with the model `resolve` gives (it raises when there is none to answer with);
        `model_name` names it in the metrics (multi-model mode)."""
        state = scope.setdefault("state", {})
        stats = state[STATS_KEY] = InvocationStats()
        if model_name:
            stats.model_name = model_name
        request_id = state.get("request_id", "")
        model: LoadedModel | None = None
        with self.predictor.batcher.in_flight():
            try:
                model = await resolve()
                stats.model_version = model.version
                return await self._answer(scope, receive, model, stats, request_id)
            except ServingError as error:
                return error_response(error, model)
            except Exception:
                log.exception("invocation failed", extra={"request_id": request_id})
                return error_response(InternalError(request_id), model)

    async def _answer(
        self, scope: Scope, receive: Receive, model: LoadedModel, stats: InvocationStats, request_id: str
    ) -> Response:
        headers = _headers(scope)
        request_kind = codecs.request_type(headers.get(b"content-type"))
        answer_kind = codecs.response_type(headers.get(b"accept"), request_kind)
        limit = self.settings.max_payload_bytes
        body = await read_body(receive, headers.get(b"content-length"), limit, request_id=request_id)
        if self.settings.batch:
            streamed = self._stream(body, request_kind, answer_kind, model, stats, request_id)
            if streamed is not None:
                return streamed
        decoded = codecs.decode(body, request_kind)
        parsed = [wire.parse(value) for value in decoded.values]
        stats.queries = len(parsed)
        model.budget.check(parsed)
        timeout = self.settings.timeout_seconds
        try:
            outcomes = await self.predictor.predict(model.recommender, parsed, request_id, timeout=timeout)
        except TimeoutError:
            raise RequestTimeout(f"prediction took longer than {timeout:g}s") from None
        stats.count(outcomes)
        status, content = codecs.encode(outcomes, decoded.batched, answer_kind)
        response = Response(content, status_code=status, media_type=answer_kind)
        response.raw_headers.extend(model.headers)
        return response

    def _stream(
        self,
        body: bytes,
        request_kind: str,
        answer_kind: str,
        model: LoadedModel,
        stats: InvocationStats,
        request_id: str,
    ) -> Response | None:
        """A Batch Transform mini-batch (SAGEMAKER_BATCH): every line of a body within the payload limit answered,
        parsed, scored and encoded STREAM_SLICE queries at a time, so memory stays bounded however many lines
        SageMaker packs into it (a 6 MB body of short requests holds ~180,000). No line limit and no response
        budget: the answer streams. None for a single request (answered as usual)."""
        values: Sequence[object]
        if request_kind == codecs.JSONLINES:
            values = codecs.LazyLines(body)
        else:
            decoded = codecs.decode(body, request_kind, max_lines=None)
            if not decoded.batched:
                return None
            values = decoded.values
        deadline = time.monotonic() + self.settings.timeout_seconds

        async def parts() -> AsyncIterator[bytes]:
            if answer_kind == codecs.JSON:
                yield codecs.PREDICTIONS_OPEN
            with self.predictor.batcher.in_flight():  # sent after __call__ returned: counted while it streams
                async for part in slices():
                    yield part
            if answer_kind == codecs.JSON:
                yield codecs.PREDICTIONS_CLOSE

        async def slices() -> AsyncIterator[bytes]:
            for start in range(0, len(values), STREAM_SLICE):
                parsed = [wire.parse(value) for value in values[start : start + STREAM_SLICE]]
                stats.queries += len(parsed)
                try:
                    left = max(deadline - time.monotonic(), 0.001)
                    outcomes = await self.predictor.predict(model.recommender, parsed, request_id, timeout=left)
                except TimeoutError:  # the answer has begun: the rest of the lines get the 504 in their slots
                    late = RequestTimeout(f"prediction took longer than {self.settings.timeout_seconds:g}s")
                    outcomes = [late] * len(parsed)
                stats.count(outcomes)
                yield codecs.encode_part(outcomes, answer_kind, first=start == 0)

        response = StreamingResponse(parts(), media_type=answer_kind)
        response.raw_headers.extend(model.headers)
        return response


def error_response(error: ServingError, model: LoadedModel | None = None) -> Response:
    response = Response(codecs.error_body(error), status_code=error.status, media_type=codecs.JSON)
    if model is not None:
        response.raw_headers.extend(model.headers)
    return response


_READ = (b"content-type", b"accept", b"content-length")


def _headers(scope: Scope) -> dict[bytes, str]:
    """The request headers an invocation reads (ASGI servers give names in lower case)."""
    return {name: value.decode("latin-1") for name, value in scope["headers"] if name in _READ}


async def read_body(receive: Receive, declared: str | None, limit: int, *, request_id: str) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (before any parsing); 499 when the
    caller goes away before all of it has arrived."""
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the {limit} byte limit")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            log.warning("client went away after %d bytes of its request", size, extra={"request_id": request_id})
            raise ClientClosedRequest("the client closed the connection before its request arrived")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the {limit} byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
