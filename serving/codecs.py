"""Wire formats, both ways: JSON (one request, or {"instances": [...]}) and JSON Lines (one request per line).

Decoding never fails a whole JSON Lines body for one bad line: that line's slot carries the error. Encoding
turns each outcome (serving.outcomes) into its answer or error object, by the shapes serving.wire declares; a
single request that failed answers with the error's own status, a batch answers 200 with each error in its slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from serving.errors import InvalidRequest, MalformedRequest, NotAcceptable, ServingError, UnsupportedMediaType
from serving.identifiers import random_id
from serving.outcomes import Answered, Outcome
from serving.wire import (
    ERROR,
    FALLBACK,
    INSTANCES,
    MAX_LINES,
    MESSAGE,
    PREDICTIONS,
    RECOMMENDATION_ID,
    RECOMMENDATIONS,
    SCORE,
    SIMILAR,
    SIMILAR_TO,
    STATUS,
    UNKNOWN_CATEGORIES,
    UNKNOWN_VIDEO_IDS,
    USER_ID,
    VIDEO_ID,
)
from vrmodels.model.queries import SimilarQuery

JSON = "application/json"
JSONLINES = "application/jsonlines"
RECOMMENDATION_ID_BITS = 96  # 24 hex digits: no two of a platform's lists share one (a collision ~ 2^48 lists)
JSONLINES_ALIASES = frozenset({JSONLINES, "application/x-jsonlines", "application/jsonl", "application/x-ndjson"})


@dataclass(slots=True)
class Decoded:
    values: list[object]
    """One decoded JSON value per request, or the MalformedRequest of a line that did not decode."""
    batched: bool
    """True for {"instances": [...]} and for JSON Lines: answer with a list, not a single object."""


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def request_type(content_type_header: str | None) -> str:
    """JSON or JSONLINES for a Content-Type header, or a 415 that names what to send."""
    kind = media_type(content_type_header)
    if kind == JSON:
        return JSON
    if kind in JSONLINES_ALIASES:
        return JSONLINES
    raise UnsupportedMediaType(f"Content-Type {kind or '(none)'!r} is not supported; send {JSON} or {JSONLINES}")


def response_type(accept_header: str | None, request_kind: str) -> str:
    """The media type to answer with: the request's own unless Accept asks for the other one."""
    if not accept_header:
        return request_kind
    accepted = [media_type(part) for part in accept_header.split(",")]
    if request_kind in accepted or "*/*" in accepted or "application/*" in accepted:
        return request_kind
    for candidate in (JSON, JSONLINES):
        if candidate in accepted:
            return candidate
    raise NotAcceptable(f"cannot answer with {accept_header!r}; this server produces {JSON} and {JSONLINES}")


def decode(body: bytes, kind: str, max_lines: int | None = MAX_LINES) -> Decoded:
    """`max_lines` None: no limit but the body's size (Batch Transform mini-batches)."""
    return _decode_json(body, max_lines) if kind == JSON else _decode_jsonlines(body, max_lines)


def encode(outcomes: list[Outcome], batched: bool, kind: str) -> tuple[int, bytes]:
    """The status and the body that answer these outcomes."""
    if batched:
        items = encode_part(outcomes, kind, first=True)
        return 200, items if kind == JSONLINES else PREDICTIONS_OPEN + items + PREDICTIONS_CLOSE
    (outcome,) = outcomes
    return (outcome.status if isinstance(outcome, ServingError) else 200), orjson.dumps(_object(outcome))


PREDICTIONS_OPEN, PREDICTIONS_CLOSE = b'{"' + PREDICTIONS.encode() + b'":[', b"]}"  # around a JSON batch's answers


def encode_part(outcomes: list[Outcome], kind: str, first: bool) -> bytes:
    """A run of a batch's answers, led by a separator unless `first`: for JSON Lines one line each, separated by
    newlines and none after the last (SageMaker's AssembleWith=Line adds one after each mini-batch's answer, so a
    trailing one would become an empty output line); for JSON, comma-separated items of `predictions`, which
    PREDICTIONS_OPEN and PREDICTIONS_CLOSE enclose."""
    separator = b"\n" if kind == JSONLINES else b","
    items = separator.join(orjson.dumps(_object(outcome)) for outcome in outcomes)
    return items if first or not items else separator + items


def error_body(error: ServingError) -> bytes:
    return orjson.dumps(error_object(error))


def error_object(error: ServingError) -> dict:
    """{"error": {"status", "message"}} (serving.wire.ErrorAnswer)."""
    return {ERROR: {STATUS: error.status, MESSAGE: error.message}}


def _object(outcome: Outcome) -> dict:
    if isinstance(outcome, Answered):
        return answer_object(outcome)
    return error_object(outcome)


def answer_object(answered: Answered) -> dict:
    """serving.wire.RecommendationsAnswer (its optional members only when they say something) or SimilarAnswer,
    each with a new recommendation id."""
    query, answer = answered.query, answered.recommendations
    items = [{VIDEO_ID: video, SCORE: score} for video, score in zip(answer.video_ids, answer.scores)]
    list_id = random_id(RECOMMENDATION_ID_BITS)
    if isinstance(query, SimilarQuery):
        return {SIMILAR_TO: query.video_id, SIMILAR: items, RECOMMENDATION_ID: list_id}
    result: dict = {USER_ID: query.user_id, RECOMMENDATIONS: items, RECOMMENDATION_ID: list_id}
    if answer.fallback:
        result[FALLBACK] = True
    if answer.unknown_video_ids:
        result[UNKNOWN_VIDEO_IDS] = answer.unknown_video_ids
    if answer.unknown_categories:
        result[UNKNOWN_CATEGORIES] = answer.unknown_categories
    return result


def _decode_json(body: bytes, max_lines: int | None) -> Decoded:
    if not body.strip():
        raise MalformedRequest('empty body; send a JSON object such as {"user_id": "u001", "k": 3}')
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    if isinstance(value, dict) and INSTANCES in value:
        instances = value[INSTANCES]
        if not isinstance(instances, list) or not instances:
            raise InvalidRequest(f"{INSTANCES}: must be a non-empty list of request objects")
        if max_lines is not None and len(instances) > max_lines:
            raise InvalidRequest(f"{INSTANCES}: at most {max_lines} per request, got {len(instances)}")
        return Decoded(instances, batched=True)
    return Decoded([value], batched=False)


def _decode_jsonlines(body: bytes, max_lines: int | None) -> Decoded:
    lines = lines_of(body)
    if max_lines is not None and len(lines) > max_lines:
        raise InvalidRequest(f"at most {max_lines} lines per request, got {len(lines)}")
    return Decoded(decode_lines(lines), batched=True)


def lines_of(body: bytes) -> list[bytes]:
    """The request lines of a JSON Lines body (blank lines are no requests), undecoded."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        raise MalformedRequest("empty body; send one JSON request object per line")
    return lines


class LazyLines(Sequence):
    """A JSON Lines body's requests, each slice decoded when it is taken (a Batch Transform mini-batch may hold
    hundreds of thousands: decoded all at once they would take ten times the body's memory)."""

    def __init__(self, body: bytes):
        self._lines = lines_of(body)

    def __len__(self) -> int:
        return len(self._lines)

    def __getitem__(self, window: slice) -> list[object]:  # type: ignore[override]
        start, _, _ = window.indices(len(self._lines))
        return decode_lines(self._lines[window], start + 1)


def decode_lines(lines: list[bytes], first_number: int = 1) -> list[object]:
    """Each line's JSON value, or the MalformedRequest naming its number (counted from `first_number`)."""
    values: list[object] = []
    for number, line in enumerate(lines, start=first_number):
        try:
            values.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            values.append(MalformedRequest(f"line {number} is not valid JSON: {exc}"))
    return values


def decode_answers(body: bytes, kind: str) -> list[object]:
    """The answer objects of a body this server wrote (one answer, `predictions`, or one per JSON Lines line), each
    still to be read (serving.wire.read_answer); a line that is not JSON stays a MalformedRequest in its slot."""
    if kind == JSONLINES:
        return decode_lines([line for line in body.split(b"\n") if line.strip()])
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [MalformedRequest(f"body is not valid JSON: {exc}")]
    if isinstance(value, dict) and isinstance(value.get(PREDICTIONS), list):
        return value[PREDICTIONS]
    return [value]
