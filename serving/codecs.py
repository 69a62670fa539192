"""Wire formats: JSON (one request or {"instances": [...]}) and JSON Lines (one request per line).

Decoding never fails a whole JSON Lines body for one bad line: that line's slot carries the error.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from serving.errors import InvalidRequest, MalformedRequest, NotAcceptable, UnsupportedMediaType
from serving.schemas import MAX_BATCH

JSON = "application/json"
JSONLINES = "application/jsonlines"
JSONLINES_ALIASES = {JSONLINES, "application/x-jsonlines", "application/jsonl", "application/x-ndjson"}


@dataclass
class DecodedBody:
    payloads: list[object]
    """One entry per request; an entry may be a ServingError for a line that did not decode."""
    content_type: str
    batched: bool
    """True for {"instances": [...]} and for JSON Lines: answer with a list, not a single object."""


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def request_kind(content_type_header: str | None) -> str:
    """JSON or JSONLINES for a Content-Type header, or a 415 that names what to send."""
    kind = media_type(content_type_header)
    if kind == JSON:
        return JSON
    if kind in JSONLINES_ALIASES:
        return JSONLINES
    raise UnsupportedMediaType(f"Content-Type {kind or '(none)'!r} is not supported; send {JSON} or {JSONLINES}")


def decode(body: bytes, kind: str) -> DecodedBody:
    return _decode_json(body) if kind == JSON else _decode_jsonlines(body)


def response_type(accept_header: str | None, request_type: str) -> str:
    """The media type to answer with: the request's own unless Accept asks for the other one."""
    if not accept_header:
        return request_type
    accepted = [media_type(part) for part in accept_header.split(",")]
    if request_type in accepted or "*/*" in accepted or "application/*" in accepted:
        return request_type
    for candidate in (JSON, JSONLINES):
        if candidate in accepted:
            return candidate
    raise NotAcceptable(f"cannot answer with {accept_header!r}; this server produces {JSON} and {JSONLINES}")


def encode(results: list[dict], batched: bool, kind: str) -> bytes:
    if kind == JSONLINES:
        return b"".join(orjson.dumps(result) + b"\n" for result in results)
    if batched:
        return orjson.dumps({"predictions": results})
    return orjson.dumps(results[0])


def _decode_json(body: bytes) -> DecodedBody:
    if not body.strip():
        raise MalformedRequest('empty body; send a JSON object such as {"user_id": "u001", "k": 3}')
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    if isinstance(value, dict) and "instances" in value:
        instances = value["instances"]
        if not isinstance(instances, list) or not instances:
            raise InvalidRequest("instances: must be a non-empty list of request objects")
        if len(instances) > MAX_BATCH:
            raise InvalidRequest(f"instances: at most {MAX_BATCH} per request, got {len(instances)}")
        return DecodedBody(instances, JSON, batched=True)
    return DecodedBody([value], JSON, batched=False)


def _decode_jsonlines(body: bytes) -> DecodedBody:
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        raise MalformedRequest("empty body; send one JSON request object per line")
    if len(lines) > MAX_BATCH:
        raise InvalidRequest(f"at most {MAX_BATCH} lines per request, got {len(lines)}")
    payloads: list[object] = []
    for number, line in enumerate(lines, start=1):
        try:
            payloads.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            payloads.append(MalformedRequest(f"line {number} is not valid JSON: {exc}"))
    return DecodedBody(payloads, JSONLINES, batched=True)
