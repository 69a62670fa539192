"""Pure ASGI middleware: a request id per call, echoed as X-Request-Id, and one JSON log line each.

/ping is not logged per call (SageMaker polls it constantly).
"""

from __future__ import annotations

import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.logs import RequestLogger

INFERENCE_ID_HEADER = b"x-amzn-sagemaker-inference-id"


class RequestLog:
    def __init__(self, app: ASGIApp):
        self.app = app
        self.logger = RequestLogger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/ping":
            await self.app(scope, receive, send)
            return
        request_id = next((v for k, v in scope["headers"] if k == INFERENCE_ID_HEADER), b"").decode("latin-1")[:64]
        request_id = request_id or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        id_header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.logger.log(
                {
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": scope["path"],
                    "status": status,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                    "users": state.get("users"),
                }
            )
