"""Pure ASGI middleware: a request id per call, echoed as X-Request-Id, and one JSON log line each; an
invocation's line also carries its metrics in CloudWatch EMF (serving.metrics).

/ping is not logged per call (SageMaker polls it constantly).
"""

from __future__ import annotations

import random
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.logs import RequestLogger
from serving.metrics import STATS_KEY, RequestMetrics

INFERENCE_ID_HEADER = b"x-amzn-sagemaker-inference-id"


class RequestLog:
    def __init__(self, app: ASGIApp, variant: str, multi_model: bool = False):
        self.app = app
        self.logger = RequestLogger()
        self.metrics = RequestMetrics(variant, multi_model)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/ping":
            await self.app(scope, receive, send)
            return
        request_id = next((v for k, v in scope["headers"] if k == INFERENCE_ID_HEADER), b"").decode("latin-1")[:64]
        # 128 random bits from the worker's own generator (reseeded at fork): os.urandom is a system call a request.
        request_id = request_id or f"{random.getrandbits(128):032x}"
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
            if self.logger.enabled():
                now, latency_ms = time.time(), round((time.perf_counter() - started) * 1000, 3)
                fields = {"request_id": request_id, "method": scope["method"], "route": scope["path"], "status": status}
                stats = state.get(STATS_KEY)
                if stats is not None:
                    fields |= self.metrics.members(now, status, latency_ms, stats=stats)
                else:
                    fields["latency_ms"] = latency_ms
                self.logger.log(fields, now)
