"""The OpenAPI document tells the truth: schemathesis drives the real server from it and checks every answer.

Checks: no server error, every status and content type documented, every body matching its schema. The budget
is small and seeded (hypothesis derandomized), so the run is the same each time. schemathesis' own pytest
fixture reads a private pytest attribute that pytest 9 removed, so its public strategies are driven here.
"""

from __future__ import annotations

import json

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from serving.codecs import JSONLINES
from serving.openapi import INVOCATION_ERRORS
from tests.server import start_server
from tests.test_multi_model import models_root

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schemathesis.serializer(JSONLINES)
def jsonlines_request(ctx, value):
    """The document describes a JSON Lines body as the array of its lines."""
    lines = value if isinstance(value, list) else [value]
    return "\n".join(json.dumps(line) for line in lines).encode()  # json, not orjson: any integer, as generated


@schemathesis.deserializer(JSONLINES)
def jsonlines_answer(ctx, response):
    return [orjson.loads(line) for line in response.content.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_dir):
    tmp = tmp_path_factory.mktemp("openapi")
    running = start_server(tmp / "server.log", {"VR_MODEL_DIR": str(model_dir), "VR_OPT_ML": str(tmp)})
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [
        ("GET", "/ping", GenerationMode.POSITIVE),
        ("GET", "/execution-parameters", GenerationMode.POSITIVE),
        ("GET", "/info", GenerationMode.POSITIVE),
        ("POST", "/invocations", GenerationMode.POSITIVE),
        ("POST", "/invocations", GenerationMode.NEGATIVE),  # only it has inputs that can be made invalid
    ],
)
def test_every_answer_keeps_the_documented_contract(server, method, path, mode):
    """Requests generated from the document, valid or not, sent to the real server; every answer checked."""
    check_operation(server.url, path, method, mode, examples=50)


def check_operation(url: str, path: str, method: str, mode: GenerationMode, examples: int) -> None:
    """`examples` requests generated (seeded) from the server's own document for one operation, each answer checked."""
    operation = schemathesis.openapi.from_url(f"{url}/openapi.json")[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    check()


@pytest.fixture(scope="module")
def multi_model_server(tmp_path_factory, model_dir):
    tmp = tmp_path_factory.mktemp("openapi-mme")
    root = models_root(tmp, model_dir, "a")
    running = start_server(tmp / "server.log", {"SAGEMAKER_MULTI_MODEL": "true", "VR_MULTI_MODEL_ROOT": str(root)})
    body = json.dumps({"model_name": "a", "url": str(root / "a" / "model")})
    assert httpx.post(f"{running.url}/models", content=body).status_code == 200
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [
        ("GET", "/ping", GenerationMode.POSITIVE),
        ("GET", "/info", GenerationMode.POSITIVE),
        ("GET", "/models", GenerationMode.POSITIVE),
        ("GET", "/models/{name}", GenerationMode.POSITIVE),
        ("POST", "/models", GenerationMode.POSITIVE),
        ("POST", "/models", GenerationMode.NEGATIVE),
        ("POST", "/models/{name}/invoke", GenerationMode.POSITIVE),
        ("DELETE", "/models/{name}", GenerationMode.POSITIVE),
        ("POST", "/invocations", GenerationMode.POSITIVE),
    ],
)
def test_every_multi_model_answer_keeps_the_documented_contract(multi_model_server, method, path, mode):
    check_operation(multi_model_server.url, path, method, mode, examples=30)


def test_every_status_of_invocations_is_documented_with_the_error_shape(server):
    document = httpx.get(f"{server.url}/openapi.json").json()
    responses = document["paths"]["/invocations"]["post"]["responses"]
    assert set(responses) == {"200", *map(str, INVOCATION_ERRORS)}
    assert set(INVOCATION_ERRORS) == {400, 404, 406, 413, 415, 422, 500, 503, 504}
    for status in INVOCATION_ERRORS:
        assert responses[str(status)]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorAnswer"
        }
    assert set(responses["200"]["content"]) == {"application/json", JSONLINES}
    assert set(document["paths"]["/ping"]["get"]["responses"]) == {"200", "503"}
    error = document["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"status", "message"}
