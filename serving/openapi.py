"""The OpenAPI document is the contract: every status each route returns, with its body and media type.

/invocations reads its body itself (JSON or JSON Lines; one request, `{"instances": [...]}`, or one request per
line), so FastAPI cannot infer its shapes. They are declared here as pydantic models and merged into the
document FastAPI generates for the other routes. Client generators built from /openapi.json then know every
answer, including the error shape `{"error": {"status", "message"}}`; the test suite holds the server to it
with schemathesis.
"""

from __future__ import annotations

from typing import Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from serving.codecs import JSON, JSONLINES, MAX_LINES
from serving.schemas import RecommendRequest, SimilarRequest


class VideoScore(BaseModel):
    videoId: str
    score: float


class RecommendationsAnswer(BaseModel):
    """Top-k videos for a user, best first."""

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


class Instances(BaseModel):
    """Many requests in one; answered in order, each slot with its own answer or error."""

    instances: list[RecommendRequest | SimilarRequest] = Field(min_length=1, max_length=MAX_LINES)


class BatchAnswer(BaseModel):
    predictions: list[RecommendationsAnswer | SimilarAnswer | ErrorAnswer]


class PingAnswer(BaseModel):
    status: Literal["ready", "loading", "failed"]
    error: str | None = Field(None, description="why loading failed, when it did")


class ExecutionParameters(BaseModel):
    MaxConcurrentTransforms: int
    BatchStrategy: str
    MaxPayloadInMB: int


INVOCATION_ERRORS = {
    400: "Malformed JSON (or an empty body)",
    404: "Unknown `video_id` for similar videos",
    406: "The `Accept` header asks for a media type the server cannot produce",
    413: "The body exceeds SAGEMAKER_MAX_PAYLOAD_IN_MB, or its answer could exceed VR_MAX_RESPONSE_MB",
    415: "A Content-Type other than application/json or application/jsonlines",
    422: "A request that breaks the schema, or narrows in a way the model cannot (categories without a catalogue); "
    "the message names the field and the rule",
    500: "A real fault; the message names the request id to find in the logs",
    503: "The model is not loaded (yet, or it failed to load)",
    504: "Scoring took longer than SAGEMAKER_MODEL_SERVER_TIMEOUT",
}
_MODELS = (
    RecommendRequest,
    SimilarRequest,
    Instances,
    RecommendationsAnswer,
    SimilarAnswer,
    BatchAnswer,
    ErrorAnswer,
    PingAnswer,
    ExecutionParameters,
)


def document(app: FastAPI) -> dict:
    """FastAPI's document with /invocations, /ping and /execution-parameters declared in full (computed once)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    _, definitions = models_json_schema(
        [(model, "validation") for model in _MODELS], ref_template="#/components/schemas/{model}"
    )
    schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions["$defs"])
    paths = schema["paths"]
    paths["/invocations"]["post"]["requestBody"] = _invocation_body()
    paths["/invocations"]["post"]["responses"] = _invocation_responses()
    paths["/ping"]["get"]["responses"] = {
        "200": _json("The model is loaded and warm", "PingAnswer"),
        "503": _json("The model is loading, or failed to load (the reason is in `error`)", "PingAnswer"),
    }
    paths["/execution-parameters"]["get"]["responses"] = {
        "200": _json("Batch Transform defaults for this container", "ExecutionParameters")
    }
    app.openapi_schema = schema
    return schema


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, model: str, headers: dict | None = None) -> dict:
    return {
        "description": description,
        "content": {JSON: {"schema": _ref(model)}},
        **({"headers": headers} if headers else {}),
    }


_ONE_REQUEST = {"anyOf": [_ref("RecommendRequest"), _ref("SimilarRequest")]}
_REQUEST_ID = {
    "X-Request-Id": {
        "description": "X-Amzn-SageMaker-Inference-Id when given, else a generated id; logged with the request",
        "schema": {"type": "string"},
    }
}


def _invocation_body() -> dict:
    return {
        "required": True,
        "description": (
            "One request (`video_id` present: similar videos; else recommendations), or `instances`: a list of "
            "them. As JSON Lines (Batch Transform, SplitType=Line), one request object per line."
        ),
        "content": {
            JSON: {
                "schema": {"anyOf": [_ref("RecommendRequest"), _ref("SimilarRequest"), _ref("Instances")]},
                "example": {"user_id": "u001", "k": 3},
            },
            JSONLINES: {
                "schema": {"type": "array", "items": _ONE_REQUEST, "minItems": 1, "maxItems": MAX_LINES},
                "example": '{"user_id": "u001", "k": 3}\n{"video_id": "v005", "k": 3}\n',
            },
        },
    }


def _invocation_responses() -> dict:
    answers = {"anyOf": [_ref("RecommendationsAnswer"), _ref("SimilarAnswer"), _ref("ErrorAnswer")]}
    ok = {
        "description": (
            "The answer: recommendations, similar videos, or `predictions` in the order of `instances` (a failing "
            "instance gets its error in its slot). For JSON Lines, one answer per line, in order."
        ),
        "headers": _REQUEST_ID,
        "content": {
            JSON: {"schema": {"anyOf": [_ref("RecommendationsAnswer"), _ref("SimilarAnswer"), _ref("BatchAnswer")]}},
            JSONLINES: {"schema": {"type": "array", "items": answers}},
        },
    }
    errors = {
        str(status): _json(description, "ErrorAnswer", _REQUEST_ID) for status, description in INVOCATION_ERRORS.items()
    }
    return {"200": ok, **errors}
