"""Multi-model mode (SAGEMAKER_MULTI_MODEL=true): SageMaker's model-management contract over the shared registry.

SageMaker downloads and unpacks a model under /opt/ml/models, then asks any worker to load it (POST /models),
invokes it (POST /models/{name}/invoke), lists it and unloads it (DELETE /models/{name}). The registry
(serving.registry) makes every worker answer for the same set; this is one worker's side of it:
- a load is checked (the url lies under the models root, the name is free, the budget holds), mapped and
  warmed on this worker, then committed: invokable on every worker at once;
- another worker maps a committed model on its first invocation there (memory-mapped: the pages are shared);
- each worker polls the registry and drops the models that were unloaded, then marks them released once their
  memory is (the last in-flight request of a model lets go of it).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
import weakref
from pathlib import Path

import orjson
from starlette.concurrency import run_in_threadpool

from serving.errors import Forbidden, InternalError, InvalidRequest, MalformedRequest, NotFound
from serving.metrics import model_event
from serving.models import LoadedModel, files_bytes
from serving.predictor import Predictor
from serving.registry import Entry, Registry
from serving.settings import Settings
from serving.wire import ModelInfo, ModelList, ModelListed
from vrmodels.model.artifacts import ModelArtifactError

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1  # how soon a worker drops a model another worker unloaded
DEFAULT_PAGE = 100
MAX_PAGE = 1000


class MultiModels:
    """One worker's models, kept in step with the registry."""

    def __init__(self, settings: Settings, predictor: Predictor, registry: Registry):
        self.settings = settings
        self.predictor = predictor
        self.registry = registry
        self._models: dict[str, LoadedModel] = {}
        self._loaded_at: dict[str, float] = {}
        self._attaching: dict[str, asyncio.Future] = {}
        self._generation = -1

    async def load(self, body: bytes) -> Entry:
        """POST /models: map, warm and register a model (400/403/409/422/507 as the contract names them)."""
        name, url = _load_request(body)
        directory = self._inside_root(url)
        size = files_bytes(directory)
        self.registry.claim(name, url, size, budget_bytes=self.settings.multi_model_memory_bytes)
        started = time.perf_counter()
        try:
            model = await run_in_threadpool(self._open, directory, True)
            entry = Entry(name, url, size, time.time(), model.info().model_dump(exclude_unset=True))
            self.registry.hold(name)
            self._attach(entry, model)
            self.registry.commit(entry)
        except BaseException:
            self.registry.abandon(name)
            self._detach(name)
            raise
        load_ms = (time.perf_counter() - started) * 1000
        log.info(
            "model loaded",
            extra={"model_name": name, "model_url": url, "model_version": model.version, "size_bytes": size}
            | model_event(self.settings.variant, name, self.registry.count(), load_ms=load_ms),
        )
        return entry

    async def resolve(self, name: str) -> LoadedModel:
        """The model to invoke: mapped here already, or mapped now when another worker loaded it (404 if none did)."""
        model = self._models.get(name)
        if model is not None:
            return model
        pending = self._attaching.get(name)
        if pending is None:
            pending = self._attaching[name] = asyncio.ensure_future(self._attach_registered(name))
            pending.add_done_callback(lambda _: self._attaching.pop(name, None))
        return await asyncio.shield(pending)

    async def unload(self, name: str) -> None:
        """DELETE /models/{name}: answered once no worker maps the model any more (404 when it is not loaded)."""
        entry = self.registry.remove(name)
        if entry is None:
            raise NotFound(_not_loaded(name))
        self._detach(name)
        wait = self.settings.timeout_seconds + 10 * POLL_SECONDS  # in-flight requests finish within the timeout
        holders = await run_in_threadpool(self.registry.wait_released, name, wait)
        if holders:
            log.error("model still mapped after unload", extra={"model_name": name, "pids": holders})
            raise InternalError(f"unload of {name}: workers {holders} still map it after {wait:g}s")
        loaded = self.registry.count()
        log.info("model unloaded", extra={"model_name": name} | model_event(self.settings.variant, name, loaded))

    def describe(self, name: str) -> ModelListed:
        """GET /models/{name}."""
        entry = self.registry.get(name)
        if entry is None:
            raise NotFound(_not_loaded(name))
        return _listed(entry)

    def list(self, limit: str | None, token: str | None) -> ModelList:
        """GET /models: a page of the loaded models, by name."""
        size, start = _page_size(limit), _page_start(token)
        entries = self.registry.entries()
        listed = [_listed(entry) for entry in entries[start : start + size]]
        if start + size < len(entries):
            return ModelList(models=listed, nextPageToken=str(start + size))
        return ModelList(models=listed)

    def info(self) -> list[ModelInfo]:
        return [ModelInfo(modelName=entry.name, modelUrl=entry.url, **entry.info) for entry in self.registry.entries()]

    async def follow(self) -> None:
        """Drop the models unloaded through other workers, every POLL_SECONDS, for as long as the worker runs."""
        while True:
            self.sync()
            await asyncio.sleep(POLL_SECONDS)

    def sync(self) -> None:
        generation = self.registry.generation()
        if generation == self._generation:
            return
        self._generation = generation
        current = {entry.name: entry.loaded_at for entry in self.registry.entries()}
        for name in [name for name, loaded_at in self._loaded_at.items() if current.get(name) != loaded_at]:
            self._detach(name)

    async def _attach_registered(self, name: str) -> LoadedModel:
        entry = self.registry.get(name)
        if entry is None:
            raise NotFound(_not_loaded(name))
        self.registry.hold(name)  # before looking again: an unload either waits for this mark, or is seen below
        try:
            if self.registry.get(name) != entry:
                raise NotFound(_not_loaded(name))
            model = await run_in_threadpool(self._open, Path(entry.url), False)
        except BaseException:
            self.registry.release(name)
            raise
        self._attach(entry, model)
        return model

    def _open(self, directory: Path, warm: bool) -> LoadedModel:
        try:
            model = LoadedModel.load(directory, self.settings, private=True)
        except ModelArtifactError as exc:
            raise InvalidRequest(f"url: {exc}") from None
        if warm:  # the loading worker proves the model answers on every path before it is committed
            self.predictor.warm_up(model.recommender)
        return model

    def _attach(self, entry: Entry, model: LoadedModel) -> None:
        """Serve `model` here (its caller has marked it held)."""
        self._models[entry.name], self._loaded_at[entry.name] = model, entry.loaded_at
        # The mark goes when the model's memory does: after the last request that holds it has finished.
        weakref.finalize(model, self._released, entry.name, entry.loaded_at)

    def _released(self, name: str, loaded_at: float) -> None:
        if self._loaded_at.get(name) != loaded_at:  # not when this worker holds a newer load of the same name
            self.registry.release(name)

    def _detach(self, name: str) -> None:
        if self._loaded_at.pop(name, None) is not None:  # first: the model's finalizer reads it
            del self._models[name]
            gc.collect()  # a model caught in a reference cycle is freed now, not at some later collection

    def _inside_root(self, url: str) -> Path:
        root = self.settings.multi_model_root.resolve()
        directory = Path(os.path.realpath(url))
        if not directory.is_relative_to(root):
            raise Forbidden(f"url: {url} is outside the models root {root} (VR_MULTI_MODEL_ROOT); nothing was read")
        if not directory.is_dir():
            raise InvalidRequest(f"url: {url} is not a directory")
        return directory


def _load_request(body: bytes) -> tuple[str, str]:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise MalformedRequest('body: send {"model_name": NAME, "url": DIRECTORY}')
    for field in ("model_name", "url"):
        if not isinstance(request.get(field), str) or not request[field]:
            raise MalformedRequest(f"{field}: required, a non-empty string")
        if "\x00" in request[field]:
            raise MalformedRequest(f"{field}: must not contain a NUL character")
    return request["model_name"], request["url"]


def _listed(entry: Entry) -> ModelListed:
    return ModelListed(modelName=entry.name, modelUrl=entry.url)


def _not_loaded(name: str) -> str:
    return f"model {name!r} is not loaded; load it with POST /models"


def _page_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise MalformedRequest(f"limit: a whole number from 1 to {MAX_PAGE}, got {raw!r}")
    return int(raw)


def _page_start(raw: str | None) -> int:
    if raw is None:
        return 0
    if not (raw.isascii() and raw.isdigit()):  # "²".isdigit(), and int("²") fails
        raise MalformedRequest(f"next_page_token: {raw!r} is not a token this server gave")
    return int(raw)
