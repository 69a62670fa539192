"""Request shapes and their validation: each decoded value parsed once into a query, or an error naming the field.

Field names are what callers already send. The pydantic models double as the OpenAPI schemas (serving.openapi).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from serving.errors import InvalidRequest, ServingError
from serving.outcomes import Parsed
from vrmodels.model.queries import DEFAULT_K, Query, SimilarQuery

MAX_K = 1000
MAX_ID_LIST = 10_000
MAX_CATEGORIES = 1000

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
    categories: Annotated[list[StrictStr], Field(min_length=1, max_length=MAX_CATEGORIES)] | None = Field(
        None, description="only videos of these categories (the model needs a catalogue)"
    )
    max_per_channel: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="at most this many videos of one channel (the model needs a catalogue)"
    )
    published_after: StrictInt | StrictFloat | StrictStr | None = Field(
        None,
        description="only videos published after this time: epoch seconds or ISO-8601 (the model needs a catalogue)",
    )

    @field_validator("published_after")
    @classmethod
    def _a_time(cls, value: int | float | str | None) -> float | None:
        if value is None or isinstance(value, int | float):
            return None if value is None else float(value)
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("give epoch seconds or an ISO-8601 time such as 2026-11-20T00:00:00Z") from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

    @model_validator(mode="after")
    def _needs_someone(self) -> RecommendRequest:
        if self.user_id is None and not self.history:
            raise ValueError("give 'user_id', 'history', or both (or 'video_id' for similar videos)")
        return self

    def to_query(self) -> Query:
        return Query(
            self.user_id, self.k, self.exclude_watched, self.exclude, self.candidates, self.history,
            self.categories, self.max_per_channel, self.published_after,  # type: ignore[arg-type]
        )  # fmt: skip


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
