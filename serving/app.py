"""The ASGI application: SageMaker's /ping and /invocations, plus /execution-parameters for Batch Transform.

Each worker loads and warms its model before it accepts a connection: the listening socket belongs to the
gunicorn master, so the kernel accepts connections at once (as SageMaker expects) and queues them for a worker
that can serve. /ping is therefore never 200 from a worker that would answer /invocations with 503, even while
other workers are still loading. A worker whose load failed still serves, answering 503 with the reason.
Scoring runs on each worker's scoring thread, so /ping stays fast while /invocations is saturated.

The two hot routes are served straight from ASGI: FastAPI's per-request stack (routing, dependency solving, its
exception and telemetry middlewares) costs more than a whole precomputed answer, and the event loop shares the
GIL with the scoring thread. They are still declared on the FastAPI app, which documents them in /openapi.json
and answers them the same way; FastAPI serves everything else (/docs, /execution-parameters, 404s).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import orjson
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from serving import codecs
from serving.environment import Settings
from serving.middleware import RequestLog
from serving.models import ModelState
from serving.openapi import document
from serving.predictor import Predictor
from serving.transform import Transformer


class Application:
    """What a worker serves: hot routes straight to their handlers, the rest through FastAPI; every call logged."""

    def __init__(self, api: FastAPI, hot_routes: dict[tuple[str, str], ASGIApp], variant: str):
        self.api = api
        self._hot_routes = hot_routes
        self._logged = RequestLog(self._dispatch, variant)

    @property
    def state(self) -> State:
        return self.api.state

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """Load (unless loaded) and warm the model on entry, release it on exit, as a worker's start and stop do."""
        return self.api.router.lifespan_context(self.api)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._logged(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self._hot_routes.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        )
        await (handler or self.api)(scope, receive, send)


def create_app(settings: Settings | None = None) -> Application:
    settings = settings or Settings.from_env()
    predictor = Predictor(settings.max_batch, settings.batch_wait_ms / 1000)
    state = ModelState(settings, predictor)
    transform = Transformer(settings, predictor)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.warm)  # loads first unless gunicorn's master already did
        yield
        predictor.close()

    app = FastAPI(
        title="Video recommender",
        description="SageMaker-compatible inference container for ALS video recommendations.",
        lifespan=lifespan,
    )
    app.state.model_state = state
    app.openapi = lambda: document(app)  # type: ignore[method-assign]  (every status and shape, serving/openapi.py)

    def ping_response() -> Response:
        body = {"status": state.status}
        if state.error:
            body["error"] = state.error
        return Response(orjson.dumps(body), status_code=200 if state.model else 503, media_type=codecs.JSON)

    @app.get("/ping", summary="SageMaker health check: 200 once the model is loaded and warm")
    async def ping() -> Response:
        return ping_response()

    @app.get("/execution-parameters", summary="Batch Transform defaults")
    async def execution_parameters() -> Response:
        concurrent = max(1, min(settings.max_concurrent_transforms, int(100 // settings.max_payload_mb)))
        body = {
            "MaxConcurrentTransforms": concurrent,
            "BatchStrategy": settings.batch_strategy,
            "MaxPayloadInMB": int(settings.max_payload_mb),
        }
        return Response(orjson.dumps(body), media_type=codecs.JSON)

    @app.post("/invocations", summary="Recommendations, similar videos, or a batch of either")
    async def invocations(request: Request) -> Response:
        return await transform(request.scope, request.receive, state.ready)

    async def hot_ping(scope: Scope, receive: Receive, send: Send) -> None:
        await ping_response()(scope, receive, send)

    async def hot_invocations(scope: Scope, receive: Receive, send: Send) -> None:
        await (await transform(scope, receive, state.ready))(scope, receive, send)

    return Application(app, {("GET", "/ping"): hot_ping, ("POST", "/invocations"): hot_invocations}, settings.variant)
