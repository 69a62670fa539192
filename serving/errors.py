"""Faults the server answers with a status and a message that says what to fix: each raised where it arises.

A ServingError is either raised (it ends the whole request) or stands in the slot of one query of a batch
(serving.outcomes). Nothing maps exceptions to statuses afterwards, except the one catch-all in
serving.invocations that turns a fault nobody foresaw into a 500.
"""

from __future__ import annotations


class ServingError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class MalformedRequest(ServingError):
    status = 400


class Forbidden(ServingError):
    status = 403


class NotFound(ServingError):
    status = 404


class MethodNotAllowed(ServingError):
    status = 405


class NotAcceptable(ServingError):
    status = 406


class Conflict(ServingError):
    status = 409


class PayloadTooLarge(ServingError):
    status = 413


class UnsupportedMediaType(ServingError):
    status = 415


class InvalidRequest(ServingError):
    status = 422


class ClientClosedRequest(ServingError):
    """The caller went away before its request had arrived: nothing to answer, and not a fault of the server.

    499, as nginx names it: metrics count it under its own status, never as a 500."""

    status = 499


class InternalError(ServingError):
    """A real fault: the body names the request id to look for in the logs, never the traceback."""

    status = 500

    def __init__(self, request_id: str):
        super().__init__(f"internal error; request id {request_id}")


class InsufficientStorage(ServingError):
    """A multi-model server that cannot load one more model within its memory budget: SageMaker unloads others
    and retries (507, as its multi-model contract names it)."""

    status = 507


class ModelNotReady(ServingError):
    status = 503


class RequestTimeout(ServingError):
    status = 504


def routing_fault(method: str, path: str, status: int) -> ServingError:
    """What a request no route answers gets: 404 for a path nobody serves, 405 for a method a path does not take
    (the router's own statuses), in the documented error shape."""
    if status == MethodNotAllowed.status:
        return MethodNotAllowed(f"{method} is not allowed on {path}; see GET /openapi.json for what each path takes")
    if status == NotFound.status:
        return NotFound(f"no route {path}; GET /openapi.json lists the routes this server answers")
    error = ServingError(f"{method} {path} failed with status {status}")
    error.status = status
    return error
