"""The OpenAPI document is the contract: every status each route returns, with its body and media type.

In multi-model mode the document is the multi-model app's: /models and /models/{name}/invoke (answered exactly as
/invocations is in single-model mode).

/invocations reads its body itself (JSON or JSON Lines; one request, `{"instances": [...]}`, or one request per
line), so FastAPI cannot infer its shapes. They are declared as pydantic models in serving.wire and merged here
into the document FastAPI generates for the other routes. Client generators built from /openapi.json then know every
answer, including the error shape `{"error": {"status", "message"}}`; the test suite holds the server to it
with schemathesis.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from serving.codecs import JSON, JSONLINES
from serving.wire import MAX_LINES, MODELS

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
LOAD_ERRORS = {
    400: "Malformed JSON, or a missing model_name or url",
    403: "The url lies outside the models root (VR_MULTI_MODEL_ROOT); nothing was read",
    409: "A model of that name is loaded, or being loaded",
    422: "The url is not a model directory, or a file of it is corrupt (the message names it)",
    507: "Loading it would exceed the memory budget (VR_MULTI_MODEL_MEMORY_MB); unload a model first",
}


def document(app: FastAPI) -> dict:
    """FastAPI's document with /invocations, /ping and /execution-parameters declared in full (computed once)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    _, definitions = models_json_schema(
        [(model, "validation") for model in MODELS], ref_template="#/components/schemas/{model}"
    )
    schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions["$defs"])
    paths = schema["paths"]
    paths["/execution-parameters"]["get"]["responses"] = {
        "200": _json("Batch Transform defaults for this container", "ExecutionParameters")
    }
    paths["/info"]["get"]["responses"] = {"200": _json("What this server serves", "InfoAnswer")}
    if "/models" in paths:
        _multi_model_paths(paths)
    else:
        paths["/invocations"]["post"]["requestBody"] = _invocation_body()
        paths["/invocations"]["post"]["responses"] = _invocation_responses()
        paths["/ping"]["get"]["responses"] = {
            "200": _json("The model is loaded and warm", "PingAnswer"),
            "503": _json("The model is loading, or failed to load (the reason is in `error`)", "PingAnswer"),
        }
        paths["/info"]["get"]["responses"]["503"] = _json("The model is not loaded (yet, or it failed)", "ErrorAnswer")
    app.openapi_schema = schema
    return schema


def _multi_model_paths(paths: dict) -> None:
    """SageMaker's multi-model contract: /models to load, list, describe and unload; invoke as /invocations."""
    paths["/ping"]["get"]["responses"] = {"200": _json("The server runs (models load on demand)", "PingAnswer")}
    paths["/invocations"]["post"]["responses"] = {
        "404": _json("Multi-model mode: invoke /models/{name}/invoke", "ErrorAnswer")
    }
    load = paths["/models"]["post"]
    load["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref("LoadRequest")}}}
    load["responses"] = {"200": _json("Loaded, warm, and invokable through every worker", "StatusAnswer")} | {
        str(status): _json(description, "ErrorAnswer") for status, description in LOAD_ERRORS.items()
    }
    listing = paths["/models"]["get"]
    listing["responses"] = {
        "200": _json("A page of the loaded models, by name", "ModelList"),
        "400": _json("A limit outside 1..1000, or a next_page_token this server did not give", "ErrorAnswer"),
    }
    not_loaded = _json("No model of that name is loaded", "ErrorAnswer")
    paths["/models/{name}"]["get"]["responses"] = {"200": _json("The model", "ModelListed"), "404": not_loaded}
    paths["/models/{name}"]["delete"]["responses"] = {
        "200": _json("Unloaded: no worker maps it any more", "StatusAnswer"),
        "404": not_loaded,
        "500": _json("A worker still maps it after the request timeout", "ErrorAnswer"),
    }
    invoke = paths["/models/{name}/invoke"]["post"]
    invoke["requestBody"] = _invocation_body()
    invoke["responses"] = _invocation_responses() | {
        "404": _json("Not loaded, or an unknown `video_id`", "ErrorAnswer")
    }


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
