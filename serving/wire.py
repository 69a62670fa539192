"""Every shape that crosses the wire, declared once as a pydantic model: requests, answers, errors, batches,
and the operator routes' bodies.

The codecs take their field names from these models (serving.codecs), the response budget measures answers
encoded from them (serving.budget), the OpenAPI document is generated from them (serving.openapi), and the
drift monitor reads captured traffic through them (monitoring.drift). Field names are what callers already send
and read. `parse` turns one decoded request into its query, or the error naming the field and the rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
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
MAX_LINES = 10_000  # instances or lines in one real-time request

VideoIds = Annotated[list[StrictStr], Field(max_length=MAX_ID_LIST)]
K = Annotated[StrictInt, Field(ge=1, le=MAX_K, description=f"how many videos to return (1..{MAX_K})")]


# ---- requests ----


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
            user_id=self.user_id,
            k=self.k,
            exclude_watched=self.exclude_watched,
            exclude=self.exclude,
            candidates=self.candidates,
            history=self.history,
            categories=self.categories,
            max_per_channel=self.max_per_channel,
            published_after=self.published_after,  # type: ignore[arg-type]  (a float once validated)
        )


class SimilarRequest(BaseModel):
    """Videos similar to one video: `{"video_id": "v005", "k": 5}`."""

    video_id: StrictStr = Field(min_length=1, max_length=256)
    k: K = DEFAULT_K

    def to_query(self) -> SimilarQuery:
        return SimilarQuery(self.video_id, self.k)


class Instances(BaseModel):
    """Many requests in one; answered in order, each slot with its own answer or error."""

    instances: list[RecommendRequest | SimilarRequest] = Field(min_length=1, max_length=MAX_LINES)


# ---- answers ----


class VideoScore(BaseModel):
    videoId: str
    score: float


class RecommendationsAnswer(BaseModel):
    """Top-k videos for a user, best first; the optional members appear only when they say something."""

    userId: str | None = Field(description="as requested; null when only a history was given")
    recommendations: list[VideoScore]
    fallback: bool = Field(False, description="present and true when these are the popular fallback")
    unknownVideoIds: list[str] = Field([], description="ids of history or candidates the model does not know")
    unknownCategories: list[str] = Field([], description="names in categories the model does not know")


class SimilarAnswer(BaseModel):
    """Videos closest to `videoId`, best first."""

    videoId: str
    similar: list[VideoScore]


class ErrorDetail(BaseModel):
    status: int
    message: str = Field(description="what is wrong and how to fix it; never a traceback")


class ErrorAnswer(BaseModel):
    error: ErrorDetail


class BatchAnswer(BaseModel):
    """The answers to `instances`, in order (a JSON Lines body answers one of these per line instead)."""

    predictions: list[RecommendationsAnswer | SimilarAnswer | ErrorAnswer]


AnyAnswer = RecommendationsAnswer | SimilarAnswer | ErrorAnswer


# ---- operator routes ----


class PingAnswer(BaseModel):
    status: Literal["ready", "loading", "failed"]
    error: str | None = Field(None, description="why loading failed, when it did")
    models: int | None = Field(None, description="multi-model mode: how many models are loaded")


class ServingAids(BaseModel):
    """What a loaded model has to answer fast with."""

    precomputedTopN: int = Field(description="N of the precomputed lists (0: none, every request is ranked)")
    approximateTopK: bool = Field(description="whether top-k goes through its ANN indexes")
    twoStage: bool = Field(description="whether a learned second stage orders its candidates")
    catalogue: bool = Field(description="whether it knows the catalogue (categories, channels, publication)")


class EvaluationHeadline(BaseModel):
    """How the model fared in its own evaluation, against the best popularity baseline."""

    split: str
    k: int
    shipped: str = Field(description="the kind that ships")
    ndcg: float | None
    bestBaseline: str | None
    bestBaselineNdcg: float | None


class ModelInfo(BaseModel):
    """A loaded model, as GET /info describes it."""

    modelName: str | None = Field(None, description="multi-model mode: the name it was loaded under")
    modelUrl: str | None = Field(None, description="multi-model mode: the directory it was loaded from")
    modelVersion: str
    formatVersion: int | None
    createdAt: str | None
    algorithm: str | None
    kind: str = Field(description="how it ranks: als, two_stage")
    users: int
    videos: int
    serving: ServingAids
    evaluation: EvaluationHeadline


class InfoAnswer(BaseModel):
    mode: Literal["single-model", "multi-model"]
    status: str | None = Field(None, description="single-model mode: the model's status, as /ping gives it")
    model: ModelInfo | None = Field(None, description="single-model mode")
    models: list[ModelInfo] | None = Field(None, description="multi-model mode: every loaded model, by name")


class LoadRequest(BaseModel):
    """What SageMaker sends once it has unpacked a model under the models root."""

    model_name: str = Field(min_length=1)
    url: str = Field(min_length=1, description="the model directory; it must lie under VR_MULTI_MODEL_ROOT")


class ModelListed(BaseModel):
    modelName: str
    modelUrl: str


class ModelList(BaseModel):
    models: list[ModelListed]
    nextPageToken: str | None = Field(None, description="pass as next_page_token for the next page")


class StatusAnswer(BaseModel):
    status: str
    modelName: str | None = None
    modelUrl: str | None = None


class ExecutionParameters(BaseModel):
    MaxConcurrentTransforms: int
    BatchStrategy: str
    MaxPayloadInMB: int


MODELS = (
    RecommendRequest,
    SimilarRequest,
    Instances,
    RecommendationsAnswer,
    SimilarAnswer,
    BatchAnswer,
    ErrorAnswer,
    PingAnswer,
    ExecutionParameters,
    InfoAnswer,
    LoadRequest,
    ModelList,
    StatusAnswer,
)
"""Every model the OpenAPI document declares."""

# The members the codecs write and read, by the names declared above (in their order of declaration).
VIDEO_ID, SCORE = VideoScore.model_fields
USER_ID, RECOMMENDATIONS, FALLBACK, UNKNOWN_VIDEO_IDS, UNKNOWN_CATEGORIES = RecommendationsAnswer.model_fields
SIMILAR_TO, SIMILAR = SimilarAnswer.model_fields
(ERROR,) = ErrorAnswer.model_fields
STATUS, MESSAGE = ErrorDetail.model_fields
(INSTANCES,) = Instances.model_fields
(PREDICTIONS,) = BatchAnswer.model_fields
SIMILAR_KEY = next(iter(SimilarRequest.model_fields))  # a request naming it asks for similar videos

_ANSWER = TypeAdapter(AnyAnswer)


def parse(value: object) -> Parsed:
    """One decoded JSON value → its query, or the InvalidRequest naming the field and the rule (a value that is
    already an error, a line that did not decode, stays one)."""
    if isinstance(value, ServingError):
        return value
    if not isinstance(value, dict):
        return InvalidRequest(f"a request must be a JSON object, got {type(value).__name__}")
    model = SimilarRequest if SIMILAR_KEY in value else RecommendRequest
    try:
        return model.model_validate(value).to_query()
    except ValidationError as exc:
        return InvalidRequest(describe(exc))


def read_answer(value: object) -> AnyAnswer:
    """One decoded answer as its type (the drift monitor reads captured answers so); ValueError when it is none."""
    try:
        return _ANSWER.validate_python(value)
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """pydantic's errors as `field: what is wrong` sentences, the field dotted (history.3: ...)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "request"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    return "; ".join(problems)
