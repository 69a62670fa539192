"""Each worker's request metrics, published as EMF every interval and at shutdown; access lines sampled, every
5xx logged, 4xx lines at most one a second with a count of those left out."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.metrics import LATENCY_BUCKETS, LATENCY_RANGE_MS, InvocationStats, MetricsWindow
from serving.settings import Settings
from tests import emf
from tests.server import json_lines


@pytest.fixture
def serving(model_dir, tmp_path, capsys, caplog):
    """Serve with these settings while the block runs; `lines` holds the JSON lines written, once it has stopped."""
    caplog.set_level(logging.INFO, logger="serving.requests")

    @contextmanager
    def serve(model=model_dir, **env: str) -> Iterator[tuple[TestClient, list[dict]]]:
        settings = Settings.from_env(
            {"VR_MODEL_DIR": str(model), "VR_OPT_ML": str(tmp_path), "VR_VARIANT": "blue", **env}
        )
        capsys.readouterr()
        lines: list[dict] = []
        with TestClient(create_app(settings)) as client:
            yield client, lines
        lines += json_lines(capsys.readouterr().out)

    return serve


def requests_logged(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line.get("message") == "request"]


def test_each_invocation_is_counted_in_the_metrics_published_at_shutdown(serving, model_dir):
    instances = [
        {"user_id": "u001", "k": 2},
        {"user_id": "never-seen", "k": 2},  # fallback
        {"history": ["v005"], "k": 2},  # fold-in
        {"user_id": "u002", "k": 2, "candidates": ["ghost"]},  # empty answer
        {"video_id": "no-such-video"},  # an error in its slot
    ]
    with serving() as (client, lines):
        response = client.post("/invocations", json={"instances": instances})
        assert response.status_code == 200
        assert client.post("/invocations", json={"user_id": "u001", "k": 0}).status_code == 422
        assert not emf.published(lines)
    answered, refused = sorted(emf.published(lines), key=lambda line: line["StatusCode"])
    model_version = json.loads((model_dir / "manifest.json").read_text())["model_version"]
    assert (answered["ModelVersion"], answered["Variant"], answered["StatusCode"]) == (model_version, "blue", "200")
    expected = {"Queries": 5, "Fallbacks": 1, "FoldIns": 1, "EmptyAnswers": 1, "Errors": 0, "Requests": 1}
    assert {name: answered[name] for name in expected} == expected
    assert answered["Latency"]["Count"] == 1 and answered["Latency"]["Min"] == answered["Latency"]["Max"] > 0
    assert (refused["StatusCode"], refused["Errors"], refused["Requests"]) == ("422", 1, 1)
    namespaces = {directive["Namespace"] for directive in answered["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {"VideoRecommender"}


def test_many_requests_make_one_line_with_their_latency_distribution(serving):
    with serving(VR_ACCESS_LOG_SAMPLE="0") as (client, lines):
        for index in range(300):
            client.post("/invocations", json={"user_id": f"u{index % 50 + 1:03d}", "k": 3})
    (line,) = emf.published(lines)
    latency = line["Latency"]
    assert line["Requests"] == line["Queries"] == latency["Count"] == sum(latency["Counts"]) == 300
    assert latency["Min"] <= latency["Sum"] / 300 <= latency["Max"]
    assert min(latency["Values"]) >= latency["Min"] / 1.11 and max(latency["Values"]) <= latency["Max"] * 1.11
    assert not requests_logged(lines)


def test_metrics_are_published_every_interval_while_serving(serving, capsys):
    with serving(VR_METRICS_INTERVAL_SECONDS="0.1") as (client, lines):
        client.post("/invocations", json={"user_id": "u001", "k": 3})
        deadline = time.monotonic() + 10
        while not emf.published(lines):
            assert time.monotonic() < deadline, "nothing published in 10 s at an interval of 0.1 s"
            time.sleep(0.05)
            lines += json_lines(capsys.readouterr().out)
        client.post("/invocations", json={"user_id": "u002", "k": 3})
    assert sum(line["Requests"] for line in emf.published(lines)) == 2  # the second one at shutdown


@pytest.mark.parametrize(("sample", "low", "high"), [("0", 0, 0), ("0.5", 120, 280), ("1", 400, 400)])
def test_access_lines_are_a_sample_of_the_requests(serving, sample, low, high):
    with serving(VR_ACCESS_LOG_SAMPLE=sample) as (client, lines):
        for _ in range(400):
            client.post("/invocations", json={"user_id": "u001", "k": 3})
    assert low <= len(requests_logged(lines)) <= high  # 0.5: 200 ± 10 (one deviation), so never outside by chance
    assert sum(line["Requests"] for line in emf.published(lines)) == 400


def test_every_5xx_gets_its_line_whatever_the_sample(serving, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    with serving(model=broken, VR_ACCESS_LOG_SAMPLE="0") as (client, lines):
        statuses = [client.post("/invocations", json={"user_id": "u001"}).status_code for _ in range(12)]
    assert statuses == [503] * 12
    logged = requests_logged(lines)
    assert len(logged) == 12 and {(line["level"], line["status"]) for line in logged} == {("ERROR", 503)}
    assert sum(line["Requests"] for line in emf.published(lines) if line["StatusCode"] == "503") == 12


def test_4xx_lines_come_at_most_once_a_second_and_say_how_many_were_left_out(serving):
    with serving(VR_ACCESS_LOG_SAMPLE="1") as (client, lines):
        for _ in range(30):
            client.post("/invocations", json={"user_id": "u001", "k": 0})
        client.post("/invocations", json={"user_id": "u001", "k": 3})  # logged (sample 1), and no 4xx line
        time.sleep(1.05)
        client.post("/invocations", json={"user_id": "u001", "k": -1})
    first, answered, second = requests_logged(lines)
    assert (first["status"], answered["status"], second["status"]) == (422, 200, 422)
    assert "unlogged_4xx" not in first and "unlogged_4xx" not in answered and second["unlogged_4xx"] == 29
    refused = [line for line in emf.published(lines) if line["StatusCode"] == "422"]
    assert [(line["Requests"], line["Errors"]) for line in refused] == [(31, 31)]


def test_a_latency_counts_in_a_bucket_whose_middle_is_within_10_percent():
    window = MetricsWindow("blue")
    measured = [0.05, 0.9, 3.3, 47.0, 1234.5, LATENCY_RANGE_MS[1] * 10]
    for latency in measured:
        window.add(200, latency, InvocationStats())
    (document,) = window.documents(time.time())
    middles = document["Latency"]["Values"]
    assert len(middles) == len(measured) and LATENCY_BUCKETS <= 100
    for value, middle in zip(measured[:-1], middles, strict=False):
        assert abs(middle - value) / value <= 0.11
    assert math.isclose(document["Latency"]["Max"], LATENCY_RANGE_MS[1] * 10)  # the exact extreme is kept
    assert middles[-1] <= LATENCY_RANGE_MS[1] * 1.11  # beyond the range: the last bucket
    assert window.documents(time.time()) == []  # published windows start empty
