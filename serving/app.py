"""The ASGI application: SageMaker's /ping and /invocations, plus /execution-parameters for Batch Transform and
/info for operators; in multi-model mode (SAGEMAKER_MULTI_MODEL), SageMaker's /models routes instead.

Each worker loads and warms its model before it accepts a connection: the listening socket belongs to the
gunicorn master, so the kernel accepts connections at once (as SageMaker expects) and queues them for a worker
that can serve. /ping is therefore never 200 from a worker that would answer /invocations with 503, even while
other workers are still loading. A worker whose load failed still serves, answering 503 with the reason.
Scoring runs on each worker's scoring thread, so /ping stays fast while /invocations is saturated. In
multi-model mode /ping is 200 from the start: models are loaded on demand (serving.multimodel).

The hot routes (/ping and /invocations; /models/{name}/invoke) are served straight from ASGI: FastAPI's
per-request stack (routing, dependency solving, its exception and telemetry middlewares) costs more than a whole
precomputed answer, and the event loop shares the GIL with the scoring thread. They are still declared on the
FastAPI app, which documents them in /openapi.json and answers them the same way; FastAPI serves everything
else (/docs, /info, /execution-parameters, the model management routes, 404s).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from serving import codecs
from serving.errors import InvalidRequest, NotFound, ServingError, routing_fault
from serving.invocations import InvocationHandler, error_response, read_body
from serving.middleware import RequestLog
from serving.models import ModelState
from serving.multimodel import MultiModels
from serving.openapi import document
from serving.predictor import Predictor
from serving.registry import Registry
from serving.settings import Settings, worker_account
from serving.wire import ExecutionParameters, InfoAnswer, PingAnswer, StatusAnswer


class Application:
    """What a worker serves: hot routes straight to their handlers, the rest through FastAPI; every call logged."""

    def __init__(
        self,
        api: FastAPI,
        hot_routes: dict[tuple[str, str], ASGIApp],
        settings: Settings,
        *,
        invoke_model: Callable[[Scope, Receive, Send, str], Awaitable[None]] | None = None,
    ):
        self.api = api
        self._hot_routes = hot_routes
        self._invoke_model = invoke_model
        self._logged = RequestLog(self._dispatch, settings)

    @property
    def state(self) -> State:
        return self.api.state

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """Load (unless loaded) and warm the model on entry, release it on exit, as a worker's start and stop do."""
        return self.api.router.lifespan_context(self.api)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._logged(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = None
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            handler = self._hot_routes.get((method, path))
            if handler is None and self._invoke_model and method == "POST":
                name = _model_name(path)
                if name is not None:
                    await self._invoke_model(scope, receive, send, name)
                    return
        await (handler or self.api)(scope, receive, send)


def create_app(settings: Settings | None = None) -> Application:
    """The single-model app, or the multi-model one when SAGEMAKER_MULTI_MODEL is set."""
    settings = settings or Settings.from_env()
    predictor = Predictor(settings.max_batch, settings.batch_wait_ms / 1000)
    handler = InvocationHandler(settings, predictor)
    if settings.multi_model:
        return _multi_model_app(settings, predictor, handler)
    return _single_model_app(settings, predictor, handler)


def _single_model_app(settings: Settings, predictor: Predictor, handler: InvocationHandler) -> Application:
    state = ModelState(settings, predictor)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.warm)  # loads first unless gunicorn's master already did
        yield
        predictor.close()

    app = _api(settings, lifespan, "SageMaker-compatible inference container for ALS video recommendations.")
    app.state.model_state = state

    def ping_response() -> Response:
        answer = PingAnswer(status=state.status, error=state.error) if state.error else PingAnswer(status=state.status)
        return _json(answer, 200 if state.model else 503)

    @app.get("/ping", summary="SageMaker health check: 200 once the model is loaded and warm")
    async def ping() -> Response:
        return ping_response()

    @app.get("/info", summary="What this server serves: the model's version, data, serving aids and evaluation")
    async def info() -> Response:
        model = await state.resolve()
        return _json(InfoAnswer(mode="single-model", status=state.status, model=model.info()))

    @app.post("/invocations", summary="Recommendations, similar videos, or a batch of either")
    async def invocations(request: Request) -> Response:
        return await handler(request.scope, request.receive, state.resolve)

    async def hot_ping(scope: Scope, receive: Receive, send: Send) -> None:
        await ping_response()(scope, receive, send)

    async def hot_invocations(scope: Scope, receive: Receive, send: Send) -> None:
        await (await handler(scope, receive, state.resolve))(scope, receive, send)

    return Application(app, {("GET", "/ping"): hot_ping, ("POST", "/invocations"): hot_invocations}, settings)


def _multi_model_app(settings: Settings, predictor: Predictor, handler: InvocationHandler) -> Application:
    registry = Registry.create(worker_account(settings.worker_user))
    models = MultiModels(settings, predictor, registry)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        follower = asyncio.create_task(models.follow())
        yield
        follower.cancel()
        predictor.close()

    app = _api(settings, lifespan, "SageMaker-compatible multi-model inference container for video recommendations.")
    app.state.models = models

    @app.get("/ping", summary="SageMaker health check: 200 as soon as the server runs (models load on demand)")
    async def ping() -> Response:
        return _json(PingAnswer(status="ready", models=registry.count()))

    @app.get("/info", summary="What this server serves: each loaded model's version, data, serving aids, evaluation")
    async def info() -> Response:
        return _json(InfoAnswer(mode="multi-model", models=models.info()))

    @app.post("/models", summary="Load a model unpacked under the models root (SageMaker multi-model contract)")
    async def load(request: Request) -> Response:
        body = await read_body(request.receive, request.headers.get("content-length"), MAX_LOAD_BODY, request_id="")
        entry = await models.load(body)
        return _json(StatusAnswer(status=f"model {entry.name} loaded", modelName=entry.name, modelUrl=entry.url))

    @app.get("/models", summary="The loaded models, by name, a page at a time")
    async def list_models(limit: str | None = None, next_page_token: str | None = None) -> Response:
        return _json(models.list(limit, next_page_token))

    @app.get("/models/{name}", summary="One loaded model")
    async def describe(name: str) -> Response:
        return _json(models.describe(name))

    @app.delete("/models/{name}", summary="Unload a model: answered once no worker maps it any more")
    async def unload(name: str) -> Response:
        await models.unload(name)
        return _json(StatusAnswer(status=f"model {name} unloaded"))

    @app.post("/models/{name}/invoke", summary="Invoke one loaded model: exactly as /invocations")
    async def invoke(name: str, request: Request) -> Response:
        return await _invoke(request.scope, request.receive, name)

    @app.post("/invocations", summary="Not served in multi-model mode: invoke POST /models/{name}/invoke")
    async def invocations() -> Response:
        raise NotFound("multi-model mode: invoke a loaded model with POST /models/{name}/invoke")

    async def _invoke(scope: Scope, receive: Receive, name: str) -> Response:
        target = next((v for k, v in scope["headers"] if k == TARGET_MODEL_HEADER), b"").decode("latin-1")
        return await handler(scope, receive, lambda: models.resolve(name), model_name=target or name)

    async def hot_invoke(scope: Scope, receive: Receive, send: Send, name: str) -> None:
        await (await _invoke(scope, receive, name))(scope, receive, send)

    return Application(app, {}, settings, invoke_model=hot_invoke)


MAX_LOAD_BODY = 64 * 1024
TARGET_MODEL_HEADER = b"x-amzn-sagemaker-target-model"


def _model_name(path: str) -> str | None:
    """NAME of /models/NAME/invoke."""
    if path.startswith("/models/") and path.endswith("/invoke"):
        name = path[len("/models/") : -len("/invoke")]
        if name and "/" not in name:
            return name
    return None


def _api(settings: Settings, lifespan: Callable, description: str) -> FastAPI:
    """The FastAPI app both modes share: its title, its OpenAPI document, /execution-parameters."""
    app = FastAPI(title="Video recommender", description=description, lifespan=lifespan)
    app.openapi = lambda: document(app)  # type: ignore[method-assign]  (every status and shape, serving/openapi.py)

    @app.exception_handler(ServingError)
    async def serving_error(_: Request, error: ServingError) -> Response:
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, error: StarletteHTTPException) -> Response:
        """A path no route serves, or a method it does not take: the documented error shape, not FastAPI's."""
        return error_response(routing_fault(request.method, request.url.path, error.status_code))

    @app.exception_handler(RequestValidationError)
    async def parameter_error(_: Request, error: RequestValidationError) -> Response:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return error_response(InvalidRequest(fields))

    @app.get("/execution-parameters", summary="Batch Transform defaults")
    async def execution_parameters() -> Response:
        concurrent = max(1, min(settings.max_concurrent_transforms, int(100 // settings.max_payload_mb)))
        return _json(
            ExecutionParameters(
                MaxConcurrentTransforms=concurrent,
                BatchStrategy=settings.batch_strategy,
                MaxPayloadInMB=int(settings.max_payload_mb),
            )
        )

    return app


def _json(answer: BaseModel, status: int = 200) -> Response:
    """An operator route's answer: the members it was given (optional ones left out unless set)."""
    return Response(answer.model_dump_json(exclude_unset=True), status_code=status, media_type=codecs.JSON)
