"""One request cannot ask for an answer larger than the response limit: refused before any work."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest

from serving.budget import ResponseBudget
from serving.errors import PayloadTooLarge
from serving.wire import parse
from tests.server import start_server
from vrmodels.model.recommend import Recommender

LIMIT_MB = 6.0
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, big_model_dir):
    tmp = tmp_path_factory.mktemp("budget")
    running = start_server(
        tmp / "server.log", {"VR_MODEL_DIR": str(big_model_dir), "VR_OPT_ML": str(tmp), "VR_MAX_RESPONSE_MB": "6"}
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def budget(big_model_dir) -> ResponseBudget:
    recommender = Recommender.load(big_model_dir)
    return ResponseBudget(int(LIMIT_MB * 1024 * 1024), recommender.video_count, recommender.longest_video_id)


def worker_rss_kb(server) -> int:
    worker = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()[0]
    status = Path(f"/proc/{worker}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def instances(count: int, k: int) -> list[dict]:
    return [{"user_id": f"u{n % 2000:04d}", "k": k, "exclude_watched": False} for n in range(count)]


def test_ten_thousand_users_with_k_1000_is_refused_with_413_before_any_work(server):
    body = orjson.dumps({"instances": instances(10_000, 1000)})  # the ~350 KB request that once took 28 s, 3.6 GB
    before = worker_rss_kb(server)
    started = time.monotonic()
    response = httpx.post(f"{server.url}/invocations", content=body, headers=JSON, timeout=60)
    elapsed = time.monotonic() - started
    assert response.status_code == 413
    message = response.json()["error"]["message"]
    assert "over the 6.3 MB response limit (VR_MAX_RESPONSE_MB" in message and "raise VR_MAX_RESPONSE_MB" in message
    assert elapsed < 1.0  # it once took 28 s of scoring
    assert worker_rss_kb(server) - before < 20_000  # kilobytes: it once peaked at 3.6 GB


def test_a_request_just_under_the_budget_is_answered_and_fits_the_limit(server, budget):
    count = 1
    while budget_allows(budget, instances(count + 1, 1000)):
        count += 1
    response = httpx.post(
        f"{server.url}/invocations",
        content=orjson.dumps({"instances": instances(count, 1000)}),
        headers=JSON,
        timeout=60,
    )
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == count
    assert len(response.content) <= budget.limit_bytes
    over = httpx.post(
        f"{server.url}/invocations",
        content=orjson.dumps({"instances": instances(count + 1, 1000)}),
        headers=JSON,
        timeout=60,
    )
    assert over.status_code == 413


def test_candidates_cap_what_a_request_can_get(budget):
    capped = {"user_id": "u0001", "k": 1000, "candidates": ["v00001", "v00002"]}
    assert budget_allows(budget, [capped] * 10_000)
    assert not budget_allows(budget, [{"user_id": "u0001", "k": 1000}] * 10_000)


def test_jsonlines_lines_count_like_instances(server):
    lines = b"\n".join(orjson.dumps(item) for item in instances(10_000, 1000))
    response = httpx.post(
        f"{server.url}/invocations", content=lines, headers={"Content-Type": "application/jsonlines"}, timeout=60
    )
    assert response.status_code == 413


def budget_allows(budget: ResponseBudget, payloads: list[dict]) -> bool:
    try:
        budget.check([parse(payload) for payload in payloads])
    except PayloadTooLarge:
        return False
    return True
