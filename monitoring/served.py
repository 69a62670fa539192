"""The lists an endpoint served, read back from SageMaker's data capture as columns, for attribution.

Every answered list of every captured invocation (single answers, `instances` batches, JSON Lines; JSON or
base64 bodies): its variant (the folder SageMaker wrote it under), when it was served (eventMetadata.inferenceTime),
for whom (the answer's userId, else the request's user_id), its recommendationId when the server gave one, and its
videos in order. Bodies are decoded with the server's own codecs but not validated field by field (the drift
monitor does that): a million lists read in seconds. What cannot be read is counted in a capture Tally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd

from monitoring.capture import CaptureError, Tally, body_of, capture_files
from serving import codecs, wire
from serving.errors import ServingError

LIST_KEYS = (wire.RECOMMENDATIONS, wire.SIMILAR)  # the members holding an answer's videos


@dataclass
class Served:
    lists: pd.DataFrame
    """One row per list: `variant`, `user` (None when neither side names one), `time` (epoch seconds, NaN when
    not captured), `recommendation_id` (None from older servers), `length`."""
    items: pd.DataFrame
    """One row per recommended video: `list` (row of `lists`), `position` (1 = first), `video`."""
    tally: Tally


def served_lists(location: str) -> Served:
    """Every list served under `location` (a folder, a file or s3://bucket/prefix). CaptureError when there is no
    capture file there at all."""
    tally = Tally()
    variants: list[str] = []
    users: list[str | None] = []
    times: list[float] = []
    ids: list[str | None] = []
    lengths: list[int] = []
    videos: list[str] = []
    found = False
    for source, variant, lines in capture_files(location):
        found = True
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            tally.records += 1
            where = f"{source}, line {number}"
            try:
                record = orjson.loads(line)
                data = record["captureData"]
                answers = codecs.decode_answers(*_typed(*body_of(data["endpointOutput"])))
                time = wire.epoch_seconds((record.get("eventMetadata") or {}).get("inferenceTime"))
                read = [_list_of(answer) for answer in answers]
                requests: list[object] = [None] * len(answers)
                if any(listed is not None and listed[1] is None for listed in read):  # up next: the user asked
                    decoded = _requests(*body_of(data["endpointInput"]))
                    requests = decoded if len(decoded) == len(answers) else requests
            except ServingError as error:
                tally.unreadable(where, error.message)
                continue
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                tally.bad(where, f"not a SageMaker data capture record ({type(exc).__name__}: {exc})")
                continue
            for request, answer, listed_answer in zip(requests, answers, read):
                if listed_answer is None:
                    if not (isinstance(answer, dict) and wire.ERROR in answer):
                        tally.unreadable(where, "an answer the server would not write")
                    continue
                listed, user, list_id = listed_answer
                if user is None and isinstance(request, dict) and isinstance(request.get("user_id"), str):
                    user = request["user_id"]
                variants.append(variant)
                users.append(user)
                times.append(np.nan if time is None else time)
                ids.append(list_id)
                lengths.append(len(listed))
                videos.extend(listed)
    if not found:
        raise CaptureError(f"{location}: no capture files (*.jsonl, as SageMaker data capture writes them)")
    lists = pd.DataFrame(
        {
            "variant": pd.Series(variants, dtype=object),
            "user": pd.Series(users, dtype=object),
            "time": np.asarray(times, dtype=np.float64),
            "recommendation_id": pd.Series(ids, dtype=object),
            "length": np.asarray(lengths, dtype=np.int64),
        }
    )
    counts = lists["length"].to_numpy()
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    items = pd.DataFrame(
        {
            "list": np.repeat(np.arange(len(lists)), counts),
            "position": np.arange(len(videos)) - starts + 1,
            "video": pd.Series(videos, dtype=object),
        }
    )
    return Served(lists, items, tally)


def _typed(content_type: str, body: bytes) -> tuple[bytes, str]:
    return body, codecs.request_type(content_type)


def _requests(content_type: str, body: bytes) -> list[object]:
    """The decoded request values (a request that did not decode stays its error, in its slot)."""
    return codecs.decode(*_typed(content_type, body), max_lines=None).values


def _list_of(answer: object) -> tuple[list[str], str | None, str | None] | None:
    """(videos, userId, recommendationId) of an answered list; None for an error or anything else."""
    if not isinstance(answer, dict):
        return None
    items = next((answer[key] for key in LIST_KEYS if key in answer), None)
    if not isinstance(items, list):
        return None
    try:
        listed = [item[wire.VIDEO_ID] for item in items]
    except (TypeError, KeyError):
        return None
    if not all(isinstance(video, str) for video in listed):
        return None
    user, list_id = answer.get(wire.USER_ID), answer.get(wire.RECOMMENDATION_ID)
    return listed, user if isinstance(user, str) else None, list_id if isinstance(list_id, str) else None
