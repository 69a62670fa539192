"""Faults the server answers with a 4xx/5xx status and a message that says what to fix."""

from __future__ import annotations


class ServingError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"error": {"status": self.status, "message": self.message}}


class MalformedRequest(ServingError):
    status = 400


class NotFound(ServingError):
    status = 404


class NotAcceptable(ServingError):
    status = 406


class PayloadTooLarge(ServingError):
    status = 413


class UnsupportedMediaType(ServingError):
    status = 415


class InvalidRequest(ServingError):
    status = 422


class InternalError(ServingError):
    """A real fault: the body names the request id to look for in the logs, never the traceback."""

    status = 500


class ModelNotReady(ServingError):
    status = 503


class RequestTimeout(ServingError):
    status = 504
