"""Pure ASGI middleware: a request id per call, echoed as X-Request-Id; each invocation added to the worker's
metrics window (serving.metrics), published as EMF every VR_METRICS_INTERVAL_SECONDS and at shutdown; one JSON
access line for a sample of requests (VR_ACCESS_LOG_SAMPLE), for every 5xx, and for 4xx at most one a second.

Logs are billed per GB: a line per request (about 400 bytes) cost more than the instance serving it, while the
metrics, which carry the counts and the latency distribution, take a few lines a minute. /ping is never logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.identifiers import random_id
from serving.logs import RequestLogger
from serving.metrics import STATS_KEY, MetricsWindow
from serving.settings import Settings

INFERENCE_ID_HEADER = b"x-amzn-sagemaker-inference-id"
CLIENT_ERROR_LINES_PER_SECOND = 1.0  # 4xx access lines; those left out are counted on the next one


class RequestLog:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.logger = RequestLogger()
        self.metrics = MetricsWindow(settings.variant, multi_model=settings.multi_model)
        self.interval = settings.metrics_interval_seconds
        self.sample = settings.access_log_sample
        self._next_client_error = 0.0
        self._unlogged_client_errors = 0
        self._publisher: asyncio.Task | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._publishing(send))
            return
        if scope["type"] != "http" or scope["path"] == "/ping":
            await self.app(scope, receive, send)
            return
        request_id = next((v for k, v in scope["headers"] if k == INFERENCE_ID_HEADER), b"").decode("latin-1")[:64]
        request_id = request_id or random_id(128)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            latency_ms = round((time.perf_counter() - started) * 1000, 3)
            stats = state.get(STATS_KEY)
            if stats is not None:
                self.metrics.add(status, latency_ms, stats)
            level = self._access_line_level(status)
            if level is not None:
                fields = {
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": scope["path"],
                    "status": status,
                    "latency_ms": latency_ms,
                }
                if 400 <= status < 500 and self._unlogged_client_errors:
                    fields["unlogged_4xx"], self._unlogged_client_errors = self._unlogged_client_errors, 0
                self.logger.log(fields, time.time(), level=level)

    def _access_line_level(self, status: int) -> int | None:
        """The level of this request's access line, or None for no line."""
        if status >= 500:
            return logging.ERROR if self.logger.enabled(logging.ERROR) else None
        if not self.logger.enabled():
            return None
        if status >= 400:
            now = time.monotonic()
            if now < self._next_client_error:
                self._unlogged_client_errors += 1
                return None
            self._next_client_error = now + 1 / CLIENT_ERROR_LINES_PER_SECOND
            return logging.INFO
        return logging.INFO if random.random() < self.sample else None

    def publish(self) -> None:
        """Write the metrics window (EMF lines, whatever VR_LOG_LEVEL: they are metrics, not logs)."""
        now = time.time()
        for document in self.metrics.documents(now):
            self.logger.log(document, now, message="metrics")

    def _publishing(self, send: Send) -> Send:
        """The lifespan's `send`: starts publishing every interval once started, publishes what is left at shutdown."""

        async def forward(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self._publisher = asyncio.get_running_loop().create_task(self._publish_every_interval())
            elif message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                if self._publisher is not None:
                    self._publisher.cancel()
                self.publish()
            await send(message)

        return forward

    async def _publish_every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.publish()
