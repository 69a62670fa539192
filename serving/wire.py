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
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from serving.errors import InvalidRequest, ServingError
from serving.outcomes import Parsed
from vrmodels.model.queries import DEFAULT_K, Query, SimilarQuery, Watch

MAX_K = 1000
MAX_ID_LIST = 10_000
MAX_CATEGORIES = 1000
MAX_LINES = 10_000  # instances or lines in one real-time request

VideoIds = Annotated[list[StrictStr], Field(max_length=MAX_ID_LIST)]
K = Annotated[StrictInt, Field(ge=1, le=MAX_K, description=f"how many videos to return (1..{MAX_K})")]
Time = StrictInt | StrictFloat | StrictStr


def epoch_seconds(value: int | float | str | None) -> float | None:
    """Epoch seconds, or an ISO-8601 time (UTC when it names no zone), as epoch seconds."""
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("give epoch seconds or an ISO-8601 time such as 2026-11-20T00:00:00Z") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


# ---- requests ----


class WatchItem(BaseModel):
    """One watch of a history: `{"videoId": "v005", "timestamp": 1767225600, "watchedSeconds": 312}`."""

    model_config = ConfigDict(extra="forbid")

    videoId: StrictStr = Field(min_length=1, max_length=256)
    timestamp: Time | None = Field(None, description="when it was watched: epoch seconds or ISO-8601")
    watchedSeconds: StrictInt | StrictFloat | None = Field(
        None, ge=0, description="how long it was watched: with the catalogue's duration, an early skip counts little"
    )

    _time = field_validator("timestamp")(classmethod(lambda cls, value: epoch_seconds(value)))

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, value: object) -> object:
        if not isinstance(value, dict | WatchItem):
            raise ValueError('a history item is a video id or {"videoId", "timestamp"?, "watchedSeconds"?}')
        return value

    def to_watch(self) -> Watch:
        return Watch(self.videoId, self.timestamp, self.watchedSeconds)  # type: ignore[arg-type]


HISTORY_TAGS = ("id", "watch")  # how pydantic names the two forms of a history item in an error's location
HistoryItem = Annotated[
    Annotated[StrictStr, Tag(HISTORY_TAGS[0])] | Annotated[WatchItem, Tag(HISTORY_TAGS[1])],
    Discriminator(lambda item: HISTORY_TAGS[0] if isinstance(item, str) else HISTORY_TAGS[1]),
]
History = Annotated[
    list[HistoryItem],
    Field(
        max_length=MAX_ID_LIST,
        description="the watches of the sitting in progress, oldest first: video ids, or {videoId, timestamp?, "
        "watchedSeconds?}",
    ),
]


def history_of(items: list[str | WatchItem] | None) -> tuple[Watch, ...] | None:
    return None if items is None else tuple(Watch(item) if isinstance(item, str) else item.to_watch() for item in items)


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
    history: History | None = None
    categories: Annotated[list[StrictStr], Field(min_length=1, max_length=MAX_CATEGORIES)] | None = Field(
        None, description="only videos of these categories (the model needs a catalogue)"
    )
    max_per_channel: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="at most this many videos of one channel (the model needs a catalogue)"
    )
    published_after: Time | None = Field(
        None,
        description="only videos published after this time: epoch seconds or ISO-8601 (the model needs a catalogue)",
    )

    _time = field_validator("published_after")(classmethod(lambda cls, value: epoch_seconds(value)))

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
            history=history_of(self.history),  # type: ignore[arg-type]
            categories=self.categories,
            max_per_channel=self.max_per_channel,
            published_after=self.published_after,  # type: ignore[arg-type]  (a float once validated)
        )


class SimilarRequest(BaseModel):
    """Up next after one video: `{"video_id": "v005", "k": 5}`; with `user_id` or `history`, for that viewer, who
    has just finished `video_id`."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"video_id": "v005", "k": 5}, {"video_id": "v005", "user_id": "u001"}]}
    )

    video_id: StrictStr = Field(min_length=1, max_length=256)
    k: K = DEFAULT_K
    user_id: StrictStr | None = Field(None, min_length=1, max_length=256)
    history: History | None = None

    def to_query(self) -> SimilarQuery:
        return SimilarQuery(self.video_id, self.k, user_id=self.user_id, history=history_of(self.history))


class Instances(BaseModel):
    """Many requests in one; answered in order, each slot with its own answer or error."""

    instances: list[RecommendRequest | SimilarRequest] = Field(min_length=1, max_length=MAX_LINES)


# ---- answers ----


class VideoScore(BaseModel):
    videoId: str
    score: float


RecommendationId = Annotated[
    str | None,
    Field(
        description="this list's own id (24 hex digits, unique): send it back with the watch events it led to "
        "(column recommendation_id) so monitoring attributes them to the variant that served it; absent only in "
        "answers of servers older than 2026-12",
    ),
]


class RecommendationsAnswer(BaseModel):
    """Top-k videos for a user, best first; the optional members appear only when they say something."""

    userId: str | None = Field(description="as requested; null when only a history was given")
    recommendations: list[VideoScore]
    recommendationId: RecommendationId = None
    fallback: bool = Field(False, description="present and true when these are the popular fallback")
    unknownVideoIds: list[str] = Field([], description="ids of history or candidates the model does not know")
    unknownCategories: list[str] = Field([], description="names in categories the model does not know")


class SimilarAnswer(BaseModel):
    """Videos closest to `videoId`, best first."""

    videoId: str
    similar: list[VideoScore]
    recommendationId: RecommendationId = None


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
    precomputedUpNext: int = Field(
        0, description="N of each video's precomputed up next for anyone (0: none, up next is ranked per request)"
    )
    approximateTopK: bool = Field(description="whether top-k goes through its ANN indexes")
    twoStage: bool = Field(description="whether a learned second stage orders its candidates")
    catalogue: bool = Field(description="whether it knows the catalogue (categories, channels, publication)")


class Judged(BaseModel):
    """One judgement: the shipped model's NDCG@k against its best baseline's."""

    ndcg: float | None
    bestBaseline: str | None
    bestBaselineNdcg: float | None


class EvaluationHeadline(BaseModel):
    """How the model fared in its own evaluation: at home (against the best popularity baseline), and, for a
    model judged on sittings, in session and up next (against watched-next, the channel's next, ...)."""

    split: str
    k: int
    shipped: str = Field(description="the kind that ships")
    ndcg: float | None = Field(description="at home")
    bestBaseline: str | None
    bestBaselineNdcg: float | None
    inSession: Judged | None = None
    upNext: Judged | None = None


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
USER_ID, RECOMMENDATIONS, RECOMMENDATION_ID, FALLBACK, UNKNOWN_VIDEO_IDS, UNKNOWN_CATEGORIES = (
    RecommendationsAnswer.model_fields
)
SIMILAR_TO, SIMILAR, _ = SimilarAnswer.model_fields
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
        field = ".".join(str(part) for part in error["loc"] if part not in HISTORY_TAGS) or "request"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    return "; ".join(problems)
