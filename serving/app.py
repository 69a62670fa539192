"""The FastAPI app: SageMaker's /ping and /invocations, plus /execution-parameters for Batch Transform.

Each worker loads and warms its model before it accepts a connection: the listening socket belongs to the
gunicorn master, so the kernel accepts connections at once (as SageMaker expects) and queues them for a worker
that can serve. /ping is therefore never 200 from a worker that would answer /invocations with 503, even while
other workers are still loading. A worker whose load failed still serves, answering 503 with the reason.
Scoring runs in worker threads so that /ping stays fast while /invocations is saturated.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import codecs
from serving.environment import Settings
from serving.errors import ModelNotReady, PayloadTooLarge, RequestTimeout, ServingError
from serving.logs import configure_logging
from serving.predictor import Predictor
from serving.schemas import RecommendRequest, SimilarRequest
from vrmodels.recommend import Recommender

log = logging.getLogger("serving")


class ModelState:
    """Loading → ready, or loading → failed; only a ready state serves."""

    def __init__(self, model_dir: Path):
        self.model_dir = model_dir
        self.status = "loading"
        self.error: str | None = None
        self.predictor: Predictor | None = None

    def load(self) -> None:
        started = time.perf_counter()
        try:
            predictor = Predictor(Recommender.load(self.model_dir))
            predictor.warm_up()
        except Exception as exc:
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("model load failed", extra={"model_dir": str(self.model_dir)})
            return
        self.predictor, self.status = predictor, "ready"
        log.info(
            "model ready",
            extra={
                "model_dir": str(self.model_dir),
                "model_version": predictor.recommender.model_version,
                "load_seconds": round(time.perf_counter() - started, 3),
            },
        )

    def ready_predictor(self) -> Predictor:
        if self.predictor is None:
            detail = f": {self.error}" if self.error else "; retry when GET /ping answers 200"
            raise ModelNotReady(f"model is {self.status}{detail}")
        return self.predictor


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    state = ModelState(settings.model_dir)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.load)
        yield

    app = FastAPI(
        title="Video recommender",
        description="SageMaker-compatible inference container for ALS video recommendations.",
        lifespan=lifespan,
    )
    app.state.model = state
    app.add_middleware(RequestLog)

    @app.get("/ping", summary="SageMaker health check: 200 once the model is loaded and warm")
    async def ping() -> Response:
        body = {"status": state.status}
        if state.error:
            body["error"] = state.error
        return Response(orjson.dumps(body), status_code=200 if state.predictor else 503, media_type=codecs.JSON)

    @app.get("/execution-parameters", summary="Batch Transform defaults")
    async def execution_parameters() -> Response:
        concurrent = max(1, min(settings.max_concurrent_transforms, int(100 // settings.max_payload_mb)))
        body = {
            "MaxConcurrentTransforms": concurrent,
            "BatchStrategy": settings.batch_strategy,
            "MaxPayloadInMB": int(settings.max_payload_mb),
        }
        return Response(orjson.dumps(body), media_type=codecs.JSON)

    @app.post("/invocations", summary="Recommendations, similar videos, or a batch of either", openapi_extra=_OPENAPI)
    async def invocations(request: Request) -> Response:
        try:
            predictor = state.ready_predictor()
            request_type = codecs.request_kind(request.headers.get("content-type"))
            answer_type = codecs.response_type(request.headers.get("accept"), request_type)
            body = await _read_body(request, settings.max_payload_bytes)
            decoded = codecs.decode(body, request_type)
            request.scope["state"]["users"] = len(decoded.payloads)
            try:
                results = await asyncio.wait_for(
                    run_in_threadpool(predictor.predict, decoded.payloads), settings.timeout_seconds
                )
            except TimeoutError:
                raise RequestTimeout(f"prediction took longer than {settings.timeout_seconds:g}s") from None
            if not decoded.batched and isinstance(results[0], ServingError):
                raise results[0]
            encoded = codecs.encode([_as_body(result) for result in results], decoded.batched, answer_type)
            return Response(encoded, media_type=answer_type)
        except ServingError as error:
            return Response(orjson.dumps(error.body()), status_code=error.status, media_type=codecs.JSON)
        except Exception:
            request_id = request.scope["state"].get("request_id")
            log.exception("invocation failed", extra={"request_id": request_id})
            body = {"error": {"status": 500, "message": f"internal error; request id {request_id}"}}
            return Response(orjson.dumps(body), status_code=500, media_type=codecs.JSON)

    return app


class RequestLog:
    """Pure ASGI middleware: a request id per call, echoed as X-Request-Id, and one JSON log line each.

    /ping is not logged per call (SageMaker polls it constantly).
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/ping":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-amzn-sagemaker-inference-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": scope["path"],
                    "status": status,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                    "users": scope["state"].get("users"),
                },
            )


async def _read_body(request: Request, limit: int) -> bytes:
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


def _as_body(result: dict | ServingError) -> dict:
    return result.body() if isinstance(result, ServingError) else result


_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            codecs.JSON: {
                "schema": {
                    "oneOf": [
                        RecommendRequest.model_json_schema(),
                        SimilarRequest.model_json_schema(),
                        {"type": "object", "properties": {"instances": {"type": "array"}}},
                    ]
                },
                "example": {"user_id": "u001", "k": 3},
            },
            codecs.JSONLINES: {"example": '{"user_id": "u001", "k": 3}\n{"user_id": "u002", "k": 3}\n'},
        },
    }
}
