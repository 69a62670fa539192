"""Faults nobody foresaw, and callers that go away: each answered where it arises, and counted for what it is.

In-process through the real app (its lifespan, its scoring thread); a bug is injected into the recommender's
exact scoring path, since a 500 is a bug by definition.
"""

from __future__ import annotations

import logging
import time

import pytest
from starlette.testclient import TestClient

from serving.app import create_app
from serving.settings import Settings
from tests import emf
from tests.answers import without_id
from tests.server import json_lines

BOOM = "v007"  # a query about this video meets the injected bug


@pytest.fixture
def app(model_dir, tmp_path, monkeypatch):
    application = create_app(Settings(opt_ml=tmp_path, fallback_model_dir=model_dir, metrics_interval_seconds=0.05))
    with TestClient(application) as client:
        recommender = application.state.model_state.model.recommender
        real_answer = recommender.rank

        def answer_with_a_bug(queries):
            if any(getattr(query, "video_id", None) == BOOM for query in queries):
                raise ZeroDivisionError("a bug in scoring")
            return real_answer(queries)

        monkeypatch.setattr(recommender, "rank", answer_with_a_bug)
        yield application, client


def test_an_unexpected_fault_is_500_naming_the_request_id_without_a_traceback(app, caplog):
    _, client = app
    headers = {"X-Amzn-SageMaker-Inference-Id": "req-500"}
    response = client.post("/invocations", json={"video_id": BOOM, "k": 2}, headers=headers)
    assert response.status_code == 500
    assert response.json() == {"error": {"status": 500, "message": "internal error; request id req-500"}}
    assert "Traceback" not in response.text and "ZeroDivisionError" not in response.text
    (logged,) = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert logged.request_id == "req-500" and logged.exc_info[0] is ZeroDivisionError


def test_a_fault_in_one_slot_of_a_batch_answers_that_slot_500_and_the_others_as_usual(app):
    _, client = app
    instances = [
        {"video_id": "v005", "k": 2},
        {"video_id": BOOM, "k": 2},
        {"history": ["v010", "v011"], "k": 3},
        {"user_id": "u002", "k": 2, "exclude_watched": False},
    ]
    headers = {"X-Amzn-SageMaker-Inference-Id": "req-slot"}
    response = client.post("/invocations", json={"instances": instances}, headers=headers)
    assert response.status_code == 200
    first, broken, folded, kept = response.json()["predictions"]
    assert broken == {"error": {"status": 500, "message": "internal error; request id req-slot"}}
    assert without_id(first) == without_id(client.post("/invocations", json=instances[0]).json())
    assert len(first["similar"]) == 2
    assert without_id(folded) == without_id(client.post("/invocations", json=instances[2]).json())
    assert len(folded["recommendations"]) == 3
    assert without_id(kept) == without_id(client.post("/invocations", json=instances[3]).json())


def test_a_client_that_goes_away_before_its_body_arrives_is_counted_499_with_a_warning(app, capsys, caplog):
    application, client = app
    caplog.set_level(logging.INFO)
    messages = [
        {"type": "http.request", "body": b'{"user_id": "u0', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/invocations", "raw_path": b"/invocations", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"x-amzn-sagemaker-inference-id", b"gone")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
    }  # fmt: skip
    capsys.readouterr()
    client.portal.call(application, scope, receive, send)
    lines: list[dict] = []
    while not (published := [line for line in emf.published(lines) if line["StatusCode"] == "499"]):
        time.sleep(0.05)  # the next publication, 0.05 s apart here
        lines += json_lines(capsys.readouterr().out)
    ((line,), (metrics,)) = [entry for entry in lines if entry.get("request_id") == "gone"], published
    assert line["status"] == 499
    assert (metrics["Errors"], metrics["Requests"]) == (0, 1)
    (warning,) = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert warning.levelno == logging.WARNING and warning.exc_info is None and warning.request_id == "gone"
    assert "went away" in warning.getMessage()
