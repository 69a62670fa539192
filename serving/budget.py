"""What one request may ask for: refused up front when its answer could not fit the response limit.

SageMaker real-time responses are limited to 6 MB, so an answer larger than that is work thrown away, and
its Python objects cost many times its size while being built. Before any scoring, the parsed request is
measured in the bytes its answer would take: for each query, the recommended videos it can get (k, capped by
the catalogue and by its candidates) at the model's widest video id, plus the ids of `history` and
`candidates` it might echo as unknown. Over `VR_MAX_RESPONSE_MB` it is refused with 413.
"""

from __future__ import annotations

from collections.abc import Sequence

from serving.errors import PayloadTooLarge
from serving.outcomes import Parsed
from vrmodels.model.queries import Query

# {"videoId":"","score":-0.123456}, around each video id; {"userId":"","recommendations":[]} around each answer
ITEM_OVERHEAD = len('{"videoId":"","score":-0.123456},')
ANSWER_OVERHEAD = len('{"userId":"","recommendations":[],"fallback":true,"unknownVideoIds":[]},')
ERROR_BYTES = 512  # an error answer: its message names the field and the rule


class ResponseBudget:
    def __init__(self, limit_bytes: int, videos: int, longest_video_id: int):
        self.limit_bytes = limit_bytes
        self._videos = videos
        self._item_bytes = ITEM_OVERHEAD + longest_video_id

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
            echoed = _ids_bytes(query.history) + _ids_bytes(query.candidates)
            who = query.user_id or ""
        else:
            echoed, who = 0, query.video_id
        return max(ANSWER_OVERHEAD + len(who) + k * self._item_bytes + echoed, ERROR_BYTES)


def _ids_bytes(ids: Sequence[str] | None) -> int:
    """Room for `ids` echoed back in unknownVideoIds."""
    return sum(len(video) + 3 for video in ids) if ids else 0
