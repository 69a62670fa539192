"""The SageMaker HTTP contract, checked in-process through the app's ASGI interface (the real app, its lifespan,
its scoring thread). What needs a real server process (workers, signals, sockets) is in test_server_lifecycle."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest
from starlette.testclient import TestClient

from serving.app import create_app
from serving.settings import Settings
from tests import emf
from tests.answers import RECOMMENDATION_ID, without_id
from tests.server import json_lines, start_server

JSON = {"Content-Type": "application/json"}
JSONLINES = {"Content-Type": "application/jsonlines"}


@pytest.fixture(scope="module")
def client(tmp_path_factory, model_dir):
    settings = Settings.from_env(
        {
            "VR_MODEL_DIR": str(model_dir),
            "VR_OPT_ML": str(tmp_path_factory.mktemp("no-opt-ml")),
            "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1",
            "VR_VARIANT": "blue",
            "VR_ACCESS_LOG_SAMPLE": "1",
        }
    )
    with TestClient(create_app(settings)) as http:
        yield http


@pytest.fixture
def logged(capsys, caplog):
    """The request log lines (JSON on stdout) written while the test runs."""
    caplog.set_level(logging.INFO, logger="serving.requests")
    capsys.readouterr()

    def lines() -> list[dict]:
        return json_lines(capsys.readouterr().out)

    return lines


def invoke(client, payload, headers=JSON, **kwargs):
    return client.post("/invocations", content=json.dumps(payload), headers=headers, **kwargs)


def test_ping_is_200_with_a_tiny_body(client):
    response = client.get("/ping")
    assert response.status_code == 200
    assert len(response.content) < 64


def test_seed_request_gets_the_seed_response_shape(client):
    response = invoke(client, {"user_id": "u001", "k": 3})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["userId", "recommendations", "recommendationId"]  # the known shape, one field added
    assert body["userId"] == "u001" and RECOMMENDATION_ID.fullmatch(body["recommendationId"])
    assert len(body["recommendations"]) == 3
    assert all(list(item) == ["videoId", "score"] for item in body["recommendations"])
    assert all(
        isinstance(item["videoId"], str) and isinstance(item["score"], float) for item in body["recommendations"]
    )
    scores = [item["score"] for item in body["recommendations"]]
    assert scores == sorted(scores, reverse=True)


def test_k_defaults_to_five(client):
    assert len(invoke(client, {"user_id": "u001"}).json()["recommendations"]) == 5


def test_watched_videos_are_excluded_unless_asked(client, sample_features):
    watched = {
        sample_features.video_ids[v]
        for u, v in zip(sample_features.interactions.user_index, sample_features.interactions.video_index)
        if sample_features.user_ids[u] == "u001"
    }
    default = {i["videoId"] for i in invoke(client, {"user_id": "u001", "k": 1000}).json()["recommendations"]}
    everything = invoke(client, {"user_id": "u001", "k": 1000, "exclude_watched": False}).json()["recommendations"]
    assert not default & watched
    assert watched <= {i["videoId"] for i in everything}


def test_exclude_and_candidates(client):
    top = [i["videoId"] for i in invoke(client, {"user_id": "u001", "k": 3}).json()["recommendations"]]
    excluded = invoke(client, {"user_id": "u001", "k": 3, "exclude": top[:1]}).json()["recommendations"]
    assert top[0] not in [i["videoId"] for i in excluded]
    ranked = invoke(client, {"user_id": "u001", "k": 5, "candidates": [top[2], top[1], "ghost"]}).json()
    assert [i["videoId"] for i in ranked["recommendations"]] == [top[1], top[2]]
    assert ranked["unknownVideoIds"] == ["ghost"]


def test_history_folds_in_an_unseen_user(client):
    body = invoke(client, {"user_id": "someone-new", "history": ["v005", "v006"], "k": 4}).json()
    assert body["userId"] == "someone-new"
    assert "fallback" not in body
    videos = [i["videoId"] for i in body["recommendations"]]
    assert len(videos) == 4 and not {"v005", "v006"} & set(videos)


def test_unknown_user_without_history_gets_popular_fallback(client):
    response = invoke(client, {"user_id": "never-seen", "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["fallback"] is True
    assert len(body["recommendations"]) == 3


def test_similar_videos(client):
    body = invoke(client, {"video_id": "v005", "k": 4}).json()
    assert list(body) == ["videoId", "similar", "recommendationId"]
    assert len(body["similar"]) == 4 and "v005" not in [i["videoId"] for i in body["similar"]]


def test_unknown_video_is_404_with_a_clear_message(client):
    response = invoke(client, {"video_id": "no-such-video"})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "video_id: video 'no-such-video' is not in the model"


def test_batch_answers_in_order_with_errors_in_their_slots(client):
    instances = [{"user_id": "u001", "k": 2}, {"user_id": "u002", "k": 2}, {"k": 2}, {"video_id": "v005", "k": 1}]
    response = invoke(client, {"instances": instances})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 4
    assert without_id(predictions[0]) == without_id(invoke(client, instances[0]).json())
    assert without_id(predictions[1]) == without_id(invoke(client, instances[1]).json())
    assert predictions[2]["error"]["status"] == 422 and "user_id" in predictions[2]["error"]["message"]
    assert predictions[3]["videoId"] == "v005"


def test_jsonlines_answers_one_line_per_line_in_order(client):
    users = [f"u{n:03d}" for n in range(1, 41)]
    lines = [json.dumps({"user_id": user, "k": 2}) for user in users]
    lines.insert(5, "{not json")
    response = client.post("/invocations", content="\n".join(lines) + "\n", headers=JSONLINES)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jsonlines"
    assert response.text.count("\n") == len(lines) - 1  # none after the last: AssembleWith=Line adds it
    answers = [json.loads(line) for line in response.text.splitlines()]
    assert len(answers) == len(lines)
    assert answers[5]["error"]["status"] == 400
    assert [a["userId"] for i, a in enumerate(answers) if i != 5] == users


def test_every_list_of_a_batch_carries_its_own_recommendation_id_and_an_error_none(client):
    lines = [json.dumps({"user_id": f"u{n % 40 + 1:03d}", "k": 2}) for n in range(200)]
    lines += ['{"video_id": "v005", "k": 2}', '{"k": 2}']
    response = client.post("/invocations", content="\n".join(lines), headers=JSONLINES)
    answers = [json.loads(line) for line in response.text.splitlines()]
    ids = [answer["recommendationId"] for answer in answers[:-1]]
    assert all(RECOMMENDATION_ID.fullmatch(value) for value in ids) and len(set(ids)) == len(ids)
    assert "recommendationId" not in answers[-1] and answers[-1]["error"]["status"] == 422


def test_workers_never_hand_out_the_same_recommendation_id(model_dir, tmp_path):
    """Each worker draws from its own generator, reseeded when gunicorn forks it: a shared one would repeat."""
    env = {"VR_MODEL_DIR": str(model_dir), "VR_OPT_ML": str(tmp_path), "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    running = start_server(tmp_path / "server.log", env)
    try:
        ids = [
            httpx.post(
                f"{running.url}/invocations", json={"user_id": "u001", "k": 1}, headers={"Connection": "close"}
            ).json()["recommendationId"]
            for _ in range(300)
        ]
    finally:
        running.stop()
    answering_workers = [line for line in emf.published(running.entries()) if line["StatusCode"] == "200"]
    assert len(answering_workers) == 2  # each published its window at shutdown
    assert len(set(ids)) == len(ids)


def test_execution_parameters_for_batch_transform(client):
    body = client.get("/execution-parameters").json()
    assert body == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 1}


def test_malformed_json_is_400(client):
    response = client.post("/invocations", content=b'{"user_id": ', headers=JSON)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"user_id": "u001", "k": 0}, "k"),
        ({"user_id": "u001", "k": 1001}, "k"),
        ({"user_id": "u001", "k": "3"}, "k"),
        ({"user_id": 17}, "user_id"),
        ({"user_id": "u001", "exclude": "v001"}, "exclude"),
        ({"user_id": "u001", "exclude_watched": "no"}, "exclude_watched"),
        ({"k": 3}, "user_id"),
        ([1, 2], "JSON object"),
    ],
)
def test_schema_violations_are_422_naming_the_field(client, payload, field):
    response = invoke(client, payload)
    assert response.status_code == 422
    assert field in response.json()["error"]["message"]


def test_unsupported_content_type_is_415(client):
    response = client.post("/invocations", content=b"u001,3", headers={"Content-Type": "text/csv"})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]["message"]


def test_unproducible_accept_is_406(client):
    response = invoke(client, {"user_id": "u001"}, headers={**JSON, "Accept": "text/csv"})
    assert response.status_code == 406


def test_accept_can_ask_for_jsonlines(client):
    response = invoke(client, {"user_id": "u001", "k": 1}, headers={**JSON, "Accept": "application/jsonlines"})
    assert response.headers["content-type"] == "application/jsonlines"
    assert json.loads(response.text)["userId"] == "u001"


def test_body_over_the_limit_is_413_before_parsing(client):
    oversized = b"x" * (1024 * 1024 + 1)  # not JSON at all: a 400 would mean it was parsed
    assert client.post("/invocations", content=oversized, headers=JSON).status_code == 413


def test_chunked_body_over_the_limit_is_413(client):
    def chunks():
        for _ in range(20):
            yield b" " * 65536

    assert client.post("/invocations", content=chunks(), headers=JSON).status_code == 413


def test_sagemaker_headers_are_accepted(client):
    headers = {
        **JSON,
        "X-Amzn-SageMaker-Custom-Attributes": "trace=abc;variant=1",
        "X-Amzn-SageMaker-Inference-Id": "inference-42",
        "X-Something-Unknown": "ignored",
    }
    response = invoke(client, {"user_id": "u001", "k": 1}, headers=headers)
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "inference-42"


def test_a_request_without_an_inference_id_gets_a_fresh_random_request_id(client):
    ids = [invoke(client, {"user_id": "u001", "k": 1}).headers["x-request-id"] for _ in range(3)]
    assert len(set(ids)) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)


def test_errors_carry_no_traceback(client):
    for response in (
        client.post("/invocations", content=b"[", headers=JSON),
        invoke(client, {"user_id": "u001", "k": -1}),
        invoke(client, {"video_id": "nope"}),
    ):
        assert "Traceback" not in response.text and 'File "' not in response.text


def test_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    assert "/invocations" in client.get("/openapi.json").json()["paths"]


def test_logs_are_json_lines_with_request_fields_and_no_ping(client, logged):
    client.get("/ping")
    client.get("/execution-parameters", headers={"X-Amzn-SageMaker-Inference-Id": "plain-line"})
    entries = logged()
    (plain,) = [e for e in entries if e.get("request_id") == "plain-line"]
    assert plain["route"] == "/execution-parameters" and plain["status"] == 200 and plain["latency_ms"] >= 0
    assert "_aws" not in plain  # metrics are published apart (tests/test_request_metrics.py)
    assert not any(e.get("route") == "/ping" for e in entries)


@pytest.mark.parametrize(
    ("method", "path", "status", "says"),
    [
        ("GET", "/no-such-path", 404, "no route /no-such-path"),
        ("POST", "/ping", 405, "POST is not allowed on /ping"),
        ("GET", "/invocations", 405, "GET is not allowed on /invocations"),
        ("DELETE", "/info", 405, "DELETE is not allowed on /info"),
    ],
)
def test_a_path_or_method_no_route_serves_answers_the_documented_error_shape(client, method, path, status, says):
    response = client.request(method, path)
    assert response.status_code == status
    assert response.json() == {"error": {"status": status, "message": response.json()["error"]["message"]}}
    assert says in response.json()["error"]["message"]
