"""Batch Transform mode (SAGEMAKER_BATCH=true): a mini-batch of any number of lines within the payload limit is
answered line by line, in order; the real-time limits stay as they are without it. In-process, the real app."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from serving.app import create_app
from serving.settings import Settings
from serving.wire import MAX_LINES

JSONLINES = {"Content-Type": "application/jsonlines"}
LINES = 25_000  # 2.5× the real-time line limit, in a 0.9 MB body


def app_settings(model_dir, tmp_path, **env: str) -> Settings:
    return Settings.from_env({"VR_MODEL_DIR": str(model_dir), "VR_OPT_ML": str(tmp_path), **env})


@pytest.fixture(scope="module")
def batch_client(model_dir, tmp_path_factory):
    settings = app_settings(model_dir, tmp_path_factory.mktemp("batch"), SAGEMAKER_BATCH="true", VR_MAX_RESPONSE_MB="1")
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def realtime_client(model_dir, tmp_path_factory):
    settings = app_settings(model_dir, tmp_path_factory.mktemp("realtime"), VR_MAX_RESPONSE_MB="1")
    with TestClient(create_app(settings)) as client:
        yield client


def mini_batch(lines: int, bad_line: int | None = None) -> bytes:
    rows = [json.dumps({"user_id": f"u{index % 400:03d}", "k": 10}) for index in range(lines)]
    if bad_line is not None:
        rows[bad_line - 1] = '{"user_id": "u001", "k": '
    return ("\n".join(rows) + "\n").encode()


def test_a_mini_batch_beyond_the_line_limit_is_answered_line_by_line_in_order(batch_client):
    response = batch_client.post("/invocations", content=mini_batch(LINES, bad_line=12_345), headers=JSONLINES)
    assert response.status_code == 200
    assert response.text.count("\n") == LINES - 1 and not response.text.endswith("\n")  # AssembleWith=Line adds it
    answers = [json.loads(line) for line in response.text.splitlines()]
    assert len(answers) == LINES
    assert answers[12_344]["error"]["status"] == 400 and "line 12345" in answers[12_344]["error"]["message"]
    for index in (0, 999, 1000, 12_343, 12_345, LINES - 1):
        assert answers[index]["userId"] == f"u{index % 400:03d}" and len(answers[index]["recommendations"]) == 10


def test_a_json_batch_beyond_the_limits_streams_its_predictions_in_order(batch_client):
    instances = [{"user_id": f"u{index % 400:03d}", "k": 10} for index in range(MAX_LINES + 2_500)]
    response = batch_client.post("/invocations", json={"instances": instances})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [answer["userId"] for answer in predictions] == [instance["user_id"] for instance in instances]


def test_a_single_request_in_batch_mode_is_answered_as_usual(batch_client):
    response = batch_client.post("/invocations", json={"user_id": "u001", "k": 3})
    assert response.status_code == 200 and len(response.json()["recommendations"]) == 3
    assert batch_client.post("/invocations", json={"user_id": "u001", "k": 0}).status_code == 422


def test_real_time_mode_keeps_its_line_and_response_limits(realtime_client):
    too_many = realtime_client.post("/invocations", content=mini_batch(MAX_LINES + 1), headers=JSONLINES)
    assert too_many.status_code == 422
    too_large = realtime_client.post("/invocations", content=mini_batch(5_000), headers=JSONLINES)
    assert too_large.status_code == 413 and "VR_MAX_RESPONSE_MB" in too_large.json()["error"]["message"]


def test_batch_mode_still_refuses_a_body_over_the_payload_limit(model_dir, tmp_path):
    settings = app_settings(model_dir, tmp_path, SAGEMAKER_BATCH="true", SAGEMAKER_MAX_PAYLOAD_IN_MB="0.5")
    with TestClient(create_app(settings)) as client:
        response = client.post("/invocations", content=mini_batch(LINES), headers=JSONLINES)
    assert response.status_code == 413


def test_batch_mode_waits_as_long_as_a_transform_invocation_may_take():
    assert Settings.from_env({"SAGEMAKER_BATCH": "true"}).timeout_seconds == 600
    assert Settings.from_env({}).timeout_seconds == 60
    assert (
        Settings.from_env({"SAGEMAKER_BATCH": "true", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "900"}).timeout_seconds == 900
    )
