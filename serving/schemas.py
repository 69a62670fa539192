"""Request shapes and their validation; field names match what callers already send."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, model_validator

from serving.errors import InvalidRequest
from vrmodels.recommend import Query, SimilarQuery

MAX_K = 1000
DEFAULT_K = 5
MAX_ID_LIST = 10_000
MAX_BATCH = 10_000

VideoIds = Annotated[list[StrictStr], Field(max_length=MAX_ID_LIST)]
K = Annotated[StrictInt, Field(ge=1, le=MAX_K, description=f"how many videos to return (1..{MAX_K})")]


class RecommendRequest(BaseModel):
    """Top-k videos for a user: `{"user_id": "u001", "k": 3}`; `history` alone serves an unseen user."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user_id": "u001", "k": 3}, {"history": ["v005", "v010"], "k": 5}]}
    )

    user_id: StrictStr | None = Field(None, min_length=1, max_length=256)
    k: K = DEFAULT_K
    exclude_watched: StrictBool = True
    exclude: VideoIds = []
    candidates: VideoIds | None = None
    history: VideoIds | None = None

    @model_validator(mode="after")
    def _needs_someone(self) -> RecommendRequest:
        if self.user_id is None and not self.history:
            raise ValueError("give 'user_id', 'history', or both (or 'video_id' for similar videos)")
        return self

    def to_query(self) -> Query:
        return Query(self.user_id, self.k, self.exclude_watched, self.exclude, self.candidates, self.history)


class SimilarRequest(BaseModel):
    """Videos similar to one video: `{"video_id": "v005", "k": 5}`."""

    video_id: StrictStr = Field(min_length=1, max_length=256)
    k: K = DEFAULT_K

    def to_query(self) -> SimilarQuery:
        return SimilarQuery(self.video_id, self.k)


def parse_request(payload: object) -> RecommendRequest | SimilarRequest:
    """One decoded JSON value → a validated request, or InvalidRequest naming the field and the rule."""
    if not isinstance(payload, dict):
        raise InvalidRequest(f"a request must be a JSON object, got {type(payload).__name__}")
    model = SimilarRequest if "video_id" in payload else RecommendRequest
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "request"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    return "; ".join(problems)
