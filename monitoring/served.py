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
import pandas as pd

from monitoring.capture import Tally, body_of, records
from serving import codecs, wire

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
    for where, (variant, time, answers, read_lists, requests) in records(location, tally, _invocation):
        for request, answer, read in zip(requests, answers, read_lists):
            if read is None:
                if not (isinstance(answer, dict) and wire.ERROR in answer):
                    tally.unreadable(where, "an answer the server would not write")
                continue
            listed, user, list_id = read
            if user is None and isinstance(request, dict) and isinstance(request.get("user_id"), str):
                user = request["user_id"]
            variants.append(variant)
            users.append(user)
            times.append(np.nan if time is None else time)
            ids.append(list_id)
            lengths.append(len(listed))
            videos.extend(listed)
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


def _invocation(variant: str, record: dict) -> tuple[str, float | None, list, list, list]:
    """(variant, served at, answers, each answer's list as _list_of reads it, requests) of a capture record; the
    requests are decoded only when a list names no user (up next: the request is where the viewer is named)."""
    data = record["captureData"]
    answers = codecs.decode_answers(*_typed(*body_of(data["endpointOutput"])))
    time = wire.epoch_seconds((record.get("eventMetadata") or {}).get("inferenceTime"))
    read = [_list_of(answer) for answer in answers]
    requests: list[object] = [None] * len(answers)
    if any(listed is not None and listed[1] is None for listed in read):
        decoded = _requests(*body_of(data["endpointInput"]))
        requests = decoded if len(decoded) == len(answers) else requests
    return variant, time, answers, read, requests


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
