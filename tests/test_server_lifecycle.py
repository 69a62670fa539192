"""Readiness, model location, configuration and shutdown of the real server."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from bench.common import children
from serving.app import create_app
from serving.models import ModelTooLarge, check_fits, files_bytes
from serving.settings import Settings
from serving.worker import Supervisor
from tests import emf
from tests.server import (
    PROJECT_ROOT,
    SLOW_REQUEST_LINES,
    SLOW_SCORING,
    InFlightRequest,
    RunningServer,
    start_server,
)


def test_ping_is_503_until_the_model_is_loaded_and_warm(model_dir, tmp_path):
    """In-process: the app before its loader has run, then after."""
    app = create_app(Settings(opt_ml=tmp_path, fallback_model_dir=model_dir))
    transport = httpx.ASGITransport(app=app)

    async def exercise():
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            before = await client.get("/ping")
            refused = await client.post("/invocations", json={"user_id": "u001"})
            app.state.model_state.load()  # what gunicorn's master does before forking: mapped, not yet warm
            loaded = await client.get("/ping")
            app.state.model_state.warm()  # what each worker does before it accepts a connection
            after = await client.get("/ping")
            return before, refused, loaded, after

    before, refused, loaded, after = asyncio.run(exercise())
    assert before.status_code == 503 and before.json() == {"status": "loading"}
    assert refused.status_code == 503 and "GET /ping" in refused.json()["error"]["message"]
    assert loaded.status_code == 503
    assert after.status_code == 200


def test_a_worker_finishes_starting_only_once_its_model_is_warm(model_dir, tmp_path):
    """uvicorn accepts connections after the app's startup: loading must be part of it, not run beside it."""
    app = create_app(Settings(opt_ml=tmp_path, fallback_model_dir=model_dir))

    async def start_up() -> str:
        async with app.lifespan():
            return app.state.model_state.status

    assert asyncio.run(start_up()) == "ready"


def test_no_worker_answers_503_once_ping_said_200(model_dir, tmp_path):
    """With several workers, /ping 200 from one must not hide another that is still loading."""
    env = {"VR_MODEL_DIR": str(model_dir), "VR_OPT_ML": str(tmp_path), "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    server = start_server(tmp_path / "log", env)
    try:
        statuses = {
            httpx.post(
                f"{server.url}/invocations", json={"user_id": "u001"}, headers={"Connection": "close"}
            ).status_code
            for _ in range(40)
        }
        assert statuses == {200}
    finally:
        server.stop()


def test_broken_model_keeps_ping_at_503_with_the_reason(model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "item_factors.npy").write_bytes(b"garbage")
    server = start_server(tmp_path / "log", {"VR_MODEL_DIR": str(broken), "VR_OPT_ML": str(tmp_path)}, wait_ready=False)
    try:
        deadline = time.monotonic() + 20
        while (ping := httpx.get(f"{server.url}/ping")).json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ping.status_code == 503
        assert "item_factors.npy" in ping.json()["error"]
        response = httpx.post(f"{server.url}/invocations", json={"user_id": "u001"})
        assert response.status_code == 503 and "Traceback" not in response.text
    finally:
        server.stop()


def test_a_model_larger_than_the_memory_it_may_use_is_refused_naming_both_sizes(model_dir):
    size_mb = files_bytes(model_dir) / 2**20
    check_fits(model_dir, limit_mb=size_mb * 1.01)
    with pytest.raises(ModelTooLarge, match=rf"{model_dir}: the model's files take \d+ MB, more than the 0 MB"):
        check_fits(model_dir, limit_mb=size_mb / 10)


def test_model_under_opt_ml_takes_precedence(model_dir, tmp_path):
    (tmp_path / "opt").mkdir()
    shutil.copytree(model_dir, tmp_path / "opt" / "model")
    assert Settings(opt_ml=tmp_path / "opt", fallback_model_dir=tmp_path / "x").model_dir == tmp_path / "opt" / "model"
    assert Settings(opt_ml=tmp_path / "empty", fallback_model_dir=model_dir).model_dir == model_dir


def test_settings_read_sagemaker_variables():
    settings = Settings.from_env(
        {
            "SAGEMAKER_BIND_TO_PORT": "9123",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "5",
        }
    )
    assert (settings.port, settings.workers, settings.max_payload_bytes, settings.timeout_seconds) == (
        9123,
        3,
        20 * 1024 * 1024,
        5.0,
    )
    assert settings.max_concurrent_transforms == 3


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "many", "is not a whole number"),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "0.5", "is not a whole number"),  # once parsed through float: 0 workers
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "0", "must be positive"),
        ("VR_MAX_BATCH", "-3", "must be positive"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "0", "must be positive"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "nan", "must be positive"),
        ("VR_BATCH_WAIT_MS", "-1", "must be ≥ 0"),
        ("VR_BATCH_WAIT_MS", "soon", "is not a number"),
        ("VR_ANN", "maybe", "must be on or off"),
        ("VR_METRICS_INTERVAL_SECONDS", "120", "must be at most 60"),
        ("VR_ACCESS_LOG_SAMPLE", "1.5", "must be at most 1"),
        ("VR_ANN_CANDIDATES", "0", "must be positive"),
    ],
)
def test_bad_setting_is_named(name, value, problem):
    with pytest.raises(ValueError, match=f"environment variable {name}={value!r} {problem}"):
        Settings.from_env({name: value})


def test_batching_settings_have_defaults_and_can_be_zero_wait():
    assert (Settings.from_env({}).batch_wait_ms, Settings.from_env({}).max_batch) == (2.0, 64)
    assert Settings.from_env({"VR_BATCH_WAIT_MS": "0", "VR_MAX_BATCH": "8"}).batch_wait_ms == 0.0


def test_unknown_argument_exits_non_zero_with_usage():
    result = subprocess.run([sys.executable, "serve.py", "bogus"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage: serve.py" in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_drains_the_in_flight_request_and_exits_cleanly(model_dir, tmp_path, workers):
    env = {
        "VR_MODEL_DIR": str(model_dir),
        "VR_OPT_ML": str(tmp_path),
        "SAGEMAKER_MODEL_SERVER_WORKERS": workers,
        **SLOW_SCORING,
    }
    server = start_server(tmp_path / "log", env)
    request = InFlightRequest(server.url)
    started = time.monotonic()
    server.process.terminate()
    exit_code = server.process.wait(timeout=30)
    assert exit_code == 0
    assert time.monotonic() - started < 25
    assert request.result() == {"status": 200, "lines": SLOW_REQUEST_LINES}
    shutdown = server.entries()
    assert any(entry["message"] == "Handling signal: term" for entry in shutdown)
    assert not [entry for entry in shutdown if "Error while closing socket" in entry["message"]]


def test_a_request_over_the_timeout_is_504_and_its_remaining_work_is_dropped(big_model_dir, tmp_path):
    env = {
        "VR_MODEL_DIR": str(big_model_dir),
        "VR_OPT_ML": str(tmp_path),
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "0.5",
        "VR_MAX_BATCH": "8",
        "VR_MAX_RESPONSE_MB": "1000",  # as a Batch Transform job might: the budget is not what stops this one
    }
    server = start_server(tmp_path / "log", env)
    try:
        heavy = "\n".join(
            json.dumps({"history": [f"v{n % 20_000:05d}", f"v{(n * 7) % 20_000:05d}"], "k": 1000})
            for n in range(10_000)  # the most lines one request may have
        )  # several seconds of scoring
        response = httpx.post(
            f"{server.url}/invocations", content=heavy, headers={"Content-Type": "application/jsonlines"}, timeout=60
        )
        assert response.status_code == 504, response.text[:300]
        assert response.json() == {"error": {"status": 504, "message": "prediction took longer than 0.5s"}}
        started = time.monotonic()
        follow_up = httpx.post(f"{server.url}/invocations", json={"video_id": "v00001", "k": 3}, timeout=60)
        assert follow_up.status_code == 200
        assert time.monotonic() - started < 5  # the heavy request's remaining batches are not scored first
    finally:
        server.stop()


def test_a_caller_that_hangs_up_mid_body_is_logged_499_with_a_warning_not_a_500(model_dir, tmp_path):
    """A slow-body probe on a real socket: headers, part of the body, then the connection closes."""
    env = {"VR_MODEL_DIR": str(model_dir), "VR_OPT_ML": str(tmp_path), "VR_METRICS_INTERVAL_SECONDS": "0.1"}
    server = start_server(tmp_path / "log", env)
    try:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as probe:
            probe.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\nX-Amzn-SageMaker-Inference-Id: probe\r\n\r\n{"user_id": '
            )
            time.sleep(0.3)
        deadline = time.monotonic() + 10
        while not [line for line in emf.published(server.entries()) if line["StatusCode"] == "499"]:
            assert time.monotonic() < deadline, server.logs()
            time.sleep(0.1)
        (metrics,) = [line for line in emf.published(server.entries()) if line["StatusCode"] == "499"]
        assert (metrics["Errors"], metrics["Requests"]) == (0, 1)
        entries = [entry for entry in server.entries() if entry.get("request_id") == "probe"]
        warning = next(entry for entry in entries if entry["level"] == "WARNING")
        request = next(entry for entry in entries if entry["message"] == "request")
        assert "went away" in warning["message"] and "exception" not in warning
        assert request["status"] == 499
        assert not [entry for entry in entries if entry["level"] == "ERROR"]
    finally:
        server.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def worker_pids(server: RunningServer) -> set[int]:
    return set(children(server.process.pid))


def test_published_counts_are_the_requests_sent_through_a_worker_restart_and_sigterm(model_dir, tmp_path):
    """Nothing of the metrics is lost when a worker stops (gunicorn then starts another) or the server does."""
    env = {
        "VR_MODEL_DIR": str(model_dir),
        "VR_OPT_ML": str(tmp_path),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
        "VR_ACCESS_LOG_SAMPLE": "0",
    }
    server = start_server(tmp_path / "log", env)
    try:
        with httpx.Client(base_url=server.url) as http:
            sent = [http.post("/invocations", json={"user_id": "u001", "k": 3}).status_code for _ in range(60)]
            sent += [http.post("/invocations", json={"user_id": "u001", "k": 0}).status_code for _ in range(7)]
            first = worker_pids(server)
            os.kill(min(first), signal.SIGTERM)  # gunicorn replaces it; its window is published as it stops
            deadline = time.monotonic() + 30
            while len(worker_pids(server) - first) < 1 or http.get("/ping").status_code != 200:
                assert time.monotonic() < deadline, server.logs()
                time.sleep(0.1)
            sent += [http.post("/invocations", json={"history": ["v005"], "k": 3}).status_code for _ in range(40)]
    finally:
        assert server.stop() == 0
    published = emf.published(server.entries())
    by_status = {}
    for line in published:
        by_status[line["StatusCode"]] = by_status.get(line["StatusCode"], 0) + line["Requests"]
        assert sum(line["Latency"]["Counts"]) == line["Requests"]
    assert by_status == {"200": sent.count(200), "422": sent.count(422)} and sent.count(422) == 7
    assert sum(line["FoldIns"] for line in published) == 40
    assert not [line for line in server.entries() if line.get("message") == "request" and line["status"] == 200]


def test_started_as_root_the_workers_switch_to_the_configured_user():
    supervisor = Supervisor(Settings(worker_user="nobody"))
    nobody = pwd.getpwnam("nobody")
    assert (supervisor.cfg.uid, supervisor.cfg.gid) == (nobody.pw_uid, nobody.pw_gid)
    assert Supervisor(Settings()).cfg.uid == 0  # no user configured: nothing switches


@pytest.mark.skipif(os.geteuid() != 0, reason="the user is looked up only when started as root")
def test_an_unknown_worker_user_stops_the_server_naming_it(capsys):
    with pytest.raises(SystemExit) as stopped:
        Supervisor(Settings(worker_user="no-such-account"))
    assert stopped.value.code == 1
    assert "VR_WORKER_USER='no-such-account': no such user" in capsys.readouterr().err
