"""SageMaker's data capture, read back: each invocation's requests and answers, as the server reads and writes them.

Data capture writes JSON Lines under `<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`, locally or in S3: one
invocation per line, its request in captureData.endpointInput and its answer in captureData.endpointOutput, the
body as JSON text or base64. Each side is decoded with the server's own codecs (serving.codecs), requests
parsed by its own parser and answers read as its own wire types (serving.wire), so the monitor sees what the
server saw. A line that is not a capture record, or a body the server could not have read either, is counted
with where it was (file and line) and skipped: one bad record never stops a report.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import orjson

from serving import codecs, wire
from serving.errors import ServingError
from serving.outcomes import Parsed

T = TypeVar("T")
SAMPLES = 5  # bad records named in a report, of each kind


class CaptureError(ValueError):
    """Nothing readable where capture was expected; the message names the place."""


@dataclass(frozen=True)
class Invocation:
    """One captured invocation: its variant (from the path SageMaker wrote it under) and what crossed the wire."""

    variant: str
    time: str | None
    """eventMetadata.inferenceTime (ISO-8601), when captured."""
    requests: list[Parsed]
    """Each request of the body, parsed as the server parses it (a query, or the error it would answer)."""
    answers: list[wire.AnyAnswer | None]
    """Each answer of the body, read as its wire type (None where an answer could not be read)."""


@dataclass
class Tally:
    """What could not be read, counted, with the first few places named."""

    records: int = 0
    bad_records: int = 0
    unreadable_bodies: int = 0
    samples: list[str] = field(default_factory=list)

    def bad(self, where: str, reason: str) -> None:
        self.bad_records += 1
        self._name(f"{where}: {reason}")

    def unreadable(self, where: str, reason: str) -> None:
        self.unreadable_bodies += 1
        self._name(f"{where}: {reason}")

    def _name(self, sample: str) -> None:
        if len(self.samples) < SAMPLES:
            self.samples.append(sample)

    def to_dict(self) -> dict:
        return {
            "records": self.records,
            "bad_records": self.bad_records,
            "unreadable_bodies": self.unreadable_bodies,
            "examples": self.samples,
        }


def records(location: str, tally: Tally, read: Callable[[str, dict], T]) -> Iterator[tuple[str, T]]:
    """Each capture record under `location` (a folder, a file or s3://bucket/prefix), in file order, as
    `read(variant, record)` makes it, with where it was (file, line). A line `read` finds no capture record in
    (it raises KeyError, TypeError, ValueError or AttributeError) is counted bad; one with a body the server could
    not read (ServingError), unreadable; both are named in `tally` and skipped. CaptureError when the location
    holds no capture file at all."""
    found = False
    for source, variant, lines in capture_files(location):
        found = True
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            tally.records += 1
            where = f"{source}, line {number}"
            try:
                value = read(variant, orjson.loads(line))
            except ServingError as error:
                tally.unreadable(where, error.message)
                continue
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # orjson's JSONDecodeError: a ValueError
                tally.bad(where, f"not a SageMaker data capture record ({type(exc).__name__}: {exc})")
                continue
            yield where, value
    if not found:
        raise CaptureError(f"{location}: no capture files (*.jsonl, as SageMaker data capture writes them)")


def invocations(location: str, tally: Tally) -> Iterator[Invocation]:
    """Every readable invocation under `location`, in file order; what cannot be read is counted in `tally`
    (see `records`)."""
    for where, invocation in records(location, tally, _invocation):
        unreadable = [item for item in invocation.requests if isinstance(item, ServingError)]
        if unreadable or any(answer is None for answer in invocation.answers):
            reason = unreadable[0].message if unreadable else "an answer the server would not write"
            tally.unreadable(where, reason)
        yield invocation


def _invocation(variant: str, record: dict) -> Invocation:
    data = record["captureData"]
    requests = _side(data["endpointInput"])
    answers = _side(data["endpointOutput"], answers=True)
    time = (record.get("eventMetadata") or {}).get("inferenceTime")
    return Invocation(variant, time, requests, answers)  # type: ignore[arg-type]


def body_of(captured: dict) -> tuple[str, bytes]:
    """One side of a record as (content type, body bytes); ValueError for an encoding SageMaker does not write."""
    encoding = captured["encoding"]
    if encoding not in ("JSON", "BASE64"):
        raise ValueError(f"encoding {encoding!r}; SageMaker writes JSON or BASE64")
    return captured["observedContentType"], (
        captured["data"].encode() if encoding == "JSON" else base64.b64decode(captured["data"])
    )


def _side(captured: dict, answers: bool = False) -> list:
    """One side of a record: requests parsed, or answers read (None for one that cannot be)."""
    kind, body = body_of(captured)
    try:
        media = codecs.request_type(kind)
    except ServingError as error:
        return [None] if answers else [error]
    if answers:
        return [_answer(value) for value in codecs.decode_answers(body, media)]
    try:
        decoded = codecs.decode(body, media, max_lines=None)
    except ServingError as error:
        return [error]
    return [wire.parse(value) for value in decoded.values]


def _answer(value: object) -> wire.AnyAnswer | None:
    if isinstance(value, ServingError):
        return None
    try:
        return wire.read_answer(value)
    except ValueError:
        return None


def capture_files(location: str) -> Iterator[tuple[str, str, list[str]]]:
    """(name, variant, lines) of every capture file; the variant is the folder SageMaker names after it."""
    if location.startswith("s3://"):
        yield from _s3_files(location)
        return
    root = Path(location)
    if not root.exists():
        raise CaptureError(f"{root}: not found")
    for path in [root] if root.is_file() else sorted(root.rglob("*.jsonl")):
        yield str(path), variant_of(path.parts), path.read_text(errors="replace").splitlines()


def _s3_files(uri: str) -> Iterator[tuple[str, str, list[str]]]:
    try:
        import boto3
    except ImportError:
        raise CaptureError("reading s3:// needs boto3 (pip install -r requirements-dev.txt)") from None
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".jsonl"):
                text = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode(errors="replace")
                yield f"s3://{bucket}/{item['Key']}", variant_of(item["Key"].split("/")), text.splitlines()


def variant_of(parts: tuple[str, ...] | list[str]) -> str:
    """The variant of a capture file's path: the folder before yyyy/mm/dd/hh (`unknown` when the layout differs)."""
    if len(parts) >= 6 and all(part.isdigit() for part in parts[-5:-1]):
        return parts[-6]
    return "unknown"
