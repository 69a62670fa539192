"""Request shapes and their validation: each decoded value parsed once into a query, or an error naming the field.

Field names are what callers already send. The pydantic models double as the OpenAPI schemas (serving.openapi).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, model_validator

from serving.errors import InvalidRequest, ServingError
from serving.outcomes import Parsed
from vrmodels.model.queries import DEFAULT_K, Query, SimilarQuery

MAX_K = 1000
MAX_ID_LIST = 10_000

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
    exclude: VideoIds = Field(default_factory=list)
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


def parse(value: object) -> Parsed:
    """One decoded JSON value → its query, or the InvalidRequest naming the field and the rule (a value that is
    already an error, a line that did not decode, stays one)."""
    if isinstance(value, ServingError):
        return value
    if not isinstance(value, dict):
        return InvalidRequest(f"a request must be a JSON object, got {type(value).__name__}")
    model = SimilarRequest if "video_id" in value else RecommendRequest
    try:
        return model.model_validate(value).to_query()
    except ValidationError as exc:
        return InvalidRequest(_describe(exc))


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "request"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    return "; ".join(problems)
