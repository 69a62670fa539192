"""What one request may ask for: refused up front when its answer could not fit the response limit.

SageMaker real-time responses are limited to 6 MB, so an answer larger than that is work thrown away, and
its Python objects cost many times its size while being built. Before any validation or scoring, the decoded
request is measured in the bytes its answer would take: for each instance or line, the recommended videos it
can get (k, capped by the catalogue and by its candidates) at the model's widest video id, plus the ids of
`history` and `candidates` it might echo as unknown. Over `VR_MAX_RESPONSE_MB` it is refused with 413. The
walk touches only the decoded JSON and allocates nothing per item.
"""

from __future__ import annotations

from serving.errors import PayloadTooLarge
from serving.schemas import DEFAULT_K

# {"videoId":"","score":-0.123456}, around each video id; {"userId":"","recommendations":[]} around each answer
ITEM_OVERHEAD = len('{"videoId":"","score":-0.123456},')
ANSWER_OVERHEAD = len('{"userId":"","recommendations":[],"fallback":true,"unknownVideoIds":[]},')
ERROR_BYTES = 512  # an error answer: its message names the field and the rule


class ResponseBudget:
    def __init__(self, limit_bytes: int, videos: int, longest_video_id: int):
        self.limit_bytes = limit_bytes
        self._videos = videos
        self._item_bytes = ITEM_OVERHEAD + longest_video_id

    def check(self, payloads: list[object]) -> None:
        """Raise PayloadTooLarge when the answer to `payloads` could exceed the limit."""
        estimate = sum(self._answer_bytes(payload) for payload in payloads)
        if estimate > self.limit_bytes:
            raise PayloadTooLarge(
                f"the answer could take {estimate / 1e6:.1f} MB, over the {self.limit_bytes / 1e6:.1f} MB response "
                "limit (VR_MAX_RESPONSE_MB, default 6 as on SageMaker real-time endpoints): ask for smaller k or "
                "fewer instances per request, or raise VR_MAX_RESPONSE_MB (Batch Transform: with MaxPayloadInMB)"
            )

    def _answer_bytes(self, payload: object) -> int:
        if not isinstance(payload, dict):
            return ERROR_BYTES
        k = payload.get("k", DEFAULT_K)
        k = min(k, self._videos) if isinstance(k, int) and not isinstance(k, bool) and k > 0 else 0
        candidates = payload.get("candidates")
        if isinstance(candidates, list):
            k = min(k, len(candidates))
        echoed = sum(_ids_bytes(payload.get(name)) for name in ("history", "candidates"))
        who = payload.get("user_id") or payload.get("video_id")
        answer = ANSWER_OVERHEAD + (len(who) if isinstance(who, str) else 0) + k * self._item_bytes + echoed
        return max(answer, ERROR_BYTES)  # a request that fails validation answers with an error instead


def _ids_bytes(ids: object) -> int:
    """Room for `ids` echoed back in unknownVideoIds."""
    if not isinstance(ids, list):
        return 0
    return sum(len(video) + 3 if isinstance(video, str) else 0 for video in ids)
