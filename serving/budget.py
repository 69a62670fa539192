"""What one request may ask for: refused up front when its answer could not fit the response limit.

SageMaker real-time responses are limited to 6 MB, so an answer larger than that is work thrown away, and
its Python objects cost many times its size while being built. Before any scoring, the parsed request is
measured in the bytes its answer would take: for each query, the recommended videos it can get (k, capped by
the catalogue and by its candidates) at the model's widest video id, plus what it might echo as unknown (ids of
`history` and `candidates`, names of `categories`). Over `VR_MAX_RESPONSE_MB` it is refused with 413. The
sizes of an answer's frame and of one item are measured by encoding them (serving.codecs), so the budget follows
the wire shapes wherever they go.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from serving.codecs import answer_object
from serving.errors import PayloadTooLarge
from serving.outcomes import Answered, Parsed
from vrmodels.model.queries import Query, Recommendations

ERROR_BYTES = 512  # an error answer: its message names the field and the rule
_WIDEST_SCORE = -0.123456  # scores go out at 6 decimals (vrmodels.model.resolve.score_list)


def answer_overhead() -> int:
    """Bytes of a recommendations answer with no video and every optional member present (each list holding one
    empty name), and the comma after it."""
    return _encoded(Recommendations([], [], fallback=True, unknown_video_ids=[""], unknown_categories=[""])) + 1


def item_overhead() -> int:
    """Bytes one recommended video adds beyond its id: its object with the widest score, and a comma."""
    return _encoded(Recommendations([""], [_WIDEST_SCORE])) - _encoded(Recommendations([], [])) + 1


def _encoded(answer: Recommendations) -> int:
    return len(orjson.dumps(answer_object(Answered(Query(""), answer))))


class ResponseBudget:
    def __init__(self, limit_bytes: int, videos: int, longest_video_id: int):
        self.limit_bytes = limit_bytes
        self._videos = videos
        self._answer_bytes_0 = answer_overhead()
        self._item_bytes = item_overhead() + longest_video_id

    def check(self, parsed: Sequence[Parsed]) -> None:
        """Raise PayloadTooLarge when the answer to these queries could exceed the limit."""
        estimate = sum(self._answer_bytes(query) for query in parsed)
        if estimate > self.limit_bytes:
            raise PayloadTooLarge(
                f"the answer could take {estimate / 1e6:.1f} MB, over the {self.limit_bytes / 1e6:.1f} MB response "
                "limit (VR_MAX_RESPONSE_MB, default 6 as on SageMaker real-time endpoints): ask for smaller k or "
                "fewer instances per request, or raise VR_MAX_RESPONSE_MB"
            )

    def _answer_bytes(self, query: Parsed) -> int:
        if isinstance(query, Exception):
            return ERROR_BYTES
        k = min(query.k, self._videos)
        if isinstance(query, Query):
            if query.candidates is not None:
                k = min(k, len(query.candidates))
            history = [watch.video_id for watch in query.history] if query.history else None
            echoed = _echo_bytes(history) + _echo_bytes(query.candidates) + _echo_bytes(query.categories)
            who = query.user_id or ""
        else:
            echoed, who = 0, query.video_id
        return max(self._answer_bytes_0 + len(who) + k * self._item_bytes + echoed, ERROR_BYTES)


def _echo_bytes(names: Sequence[str] | None) -> int:
    """Room for `names` echoed back in an unknown-ids or unknown-categories list: quotes and a comma each."""
    return sum(len(name.encode()) + 3 for name in names) if names else 0
