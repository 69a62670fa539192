"""The image, built and run by a real Docker engine the way SageMaker runs it.

The session fixture installs and starts the engine when needed (tests/engine/ensure_engine.sh), including a
local stand-in for python:3.11-slim when Docker Hub is out of reach. Set VR_SKIP_CONTAINER_TESTS=1 to skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from bench.common import children
from features.build_features import build_features
from features.events import validate_events
from features.sample_events import generate_events
from tests.conftest import SMALL_PARAMS
from tests.container import SETUP_LOCK, docker, needs_engine, run_server
from tests.server import SLOW_SCORING, InFlightRequest
from vrmodels.model.artifacts import load_model_dir, write_model_dir
from vrmodels.training.model_dir import to_artifacts
from vrmodels.training.trainer import train

pytestmark = [
    pytest.mark.container,
    needs_engine,
]
JSON = {"Content-Type": "application/json"}
TWO_STAGE_LINES = 1500  # the baked model ranks with two stages: about 2 s of fold-ins one at a time


@pytest.fixture(scope="module")
def mounted_model(tmp_path_factory) -> str:
    """A model whose ids differ from the baked one's, so answers show which model served them."""
    events = generate_events(users=300, videos=60, seed=21)
    events["user_id"] = "m-" + events["user_id"]
    events["video_id"] = "m-" + events["video_id"]
    features = build_features(validate_events(events, "mounted"))
    directory = tmp_path_factory.mktemp("mounted") / "model"
    write_model_dir(to_artifacts(train(features, SMALL_PARAMS).trained), directory)
    return str(directory)


def recommend(url: str, user_id: str) -> dict:
    response = httpx.post(f"{url}/invocations", json={"user_id": user_id, "k": 3}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_running_engine_leaves_the_set_up_lock_free_for_the_java_installer(image):
    """dockerd outlives ensure_engine.sh: had it inherited the lock, ensure_java.sh would wait on it forever."""
    holders = [
        pid.name
        for pid in Path("/proc").iterdir()
        if pid.name.isdigit() and _reads(pid / "comm") == "dockerd" and _holds(pid, Path(SETUP_LOCK))
    ]
    assert not holders, f"dockerd (pid {', '.join(holders)}) holds {SETUP_LOCK}"


def _reads(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _holds(pid: Path, lock: Path) -> bool:
    try:
        return any(Path(os.readlink(fd)) == lock for fd in (pid / "fd").iterdir())
    except OSError:
        return False


def test_image_is_amd64_with_sagemaker_metadata(image):
    config = json.loads(docker("image", "inspect", image).stdout)[0]
    assert config["Architecture"] == "amd64" and config["Os"] == "linux"
    assert config["Config"]["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    assert config["Config"]["Labels"]["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"
    assert "8080/tcp" in config["Config"]["ExposedPorts"]
    assert config["Config"]["Entrypoint"] == ["/opt/venv/bin/python", "/opt/program/serve.py"]
    assert "PYTHONUNBUFFERED=1" in config["Config"]["Env"]


def test_image_carries_no_compiler_and_no_deploy_test_or_plotting_tools(image):
    modules = ("boto3", "sagemaker", "moto", "pytest", "awscli", "matplotlib")
    probe = (
        "import importlib.util, shutil; "
        f"print([m for m in {modules} if importlib.util.find_spec(m)], "
        "[c for c in ('gcc', 'cc', 'g++', 'make') if shutil.which(c)])"
    )
    assert docker("run", "--rm", "--entrypoint", "python", image, "-c", probe).stdout.strip() == "[] []"


def test_every_module_serving_and_training_import_comes_compiled_in_the_image(image):
    """PYTHONDONTWRITEBYTECODE is set and the workers cannot write /opt: a module whose bytecode is not in the image
    is compiled again at every start (/ping took 5.4 s after `docker run` without it, 2.9 s with it)."""
    probe = (
        "import os, sys, serving.app, serving.worker, vrmodels.training.training_job; "
        "print(sorted(name for name, module in sys.modules.items() if getattr(module, '__cached__', None) "
        "and module.__file__.startswith('/opt/') and not os.path.exists(module.__cached__)))"
    )
    assert docker("run", "--rm", "--entrypoint", "python", image, "-c", probe).stdout.strip() == "[]"


def test_serve_answers_from_the_model_mounted_at_opt_ml_model(image, mounted_model):
    container = run_server(image, "vr-test-mounted", "serve", options=("-v", f"{mounted_model}:/opt/ml/model:ro"))
    try:
        assert container.wait_ready(timeout=20) < 10
        answer = recommend(container.url, "m-u001")
        assert "fallback" not in answer
        assert all(item["videoId"].startswith("m-v") for item in answer["recommendations"])
    finally:
        container.remove()


def test_multi_model_mode_loads_invokes_and_unloads_models_unpacked_under_opt_ml_models(image, mounted_model):
    models = Path(mounted_model).parent / "opt-ml-models"
    shutil.copytree(mounted_model, models / "tenant-a" / "model")
    for folder in (models, *models.parents[:2]):
        folder.chmod(0o755)  # as SageMaker's unpacked models are: readable by the unprivileged workers
    container = run_server(
        image, "vr-test-mme", "serve", options=("-e", "SAGEMAKER_MULTI_MODEL=true", "-v", f"{models}:/opt/ml/models:ro")
    )
    try:
        assert container.wait_ready(timeout=20) < 10  # /ping is 200 before any model is loaded
        body = {"model_name": "tenant-a", "url": "/opt/ml/models/tenant-a/model"}
        assert httpx.post(f"{container.url}/models", json=body, timeout=30).status_code == 200
        answer = httpx.post(f"{container.url}/models/tenant-a/invoke", json={"user_id": "m-u001", "k": 3}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert all(item["videoId"].startswith("m-v") for item in answer.json()["recommendations"])
        assert httpx.delete(f"{container.url}/models/tenant-a", timeout=30).status_code == 200
        gone = httpx.post(f"{container.url}/models/tenant-a/invoke", json={"user_id": "m-u001"}, timeout=10)
        assert gone.status_code == 404
    finally:
        container.remove()


def test_a_model_larger_than_the_memory_limit_is_named_at_start(image, mounted_model, tmp_path):
    """A model directory of 1 GiB (a sparse file beside the model: its size counts, as every file a model holds
    does) in a container limited to 300 MB: the server stays up, /ping answers 503 naming both sizes."""
    large = tmp_path / "model"
    shutil.copytree(mounted_model, large)
    with (large / "padding.bin").open("wb") as padding:
        padding.truncate(2**30)
    options = ("--memory", "300m", "-v", f"{large}:/opt/ml/model:ro")
    container = run_server(image, "vr-test-memory", "serve", options=options)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ping = httpx.get(f"{container.url}/ping", timeout=2)
                if ping.json()["status"] != "loading":
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, container.logs()
            time.sleep(0.2)
        assert ping.status_code == 503
        assert "1,0" in ping.json()["error"] and "300 MB this container may use" in ping.json()["error"], ping.text
        state = json.loads(docker("inspect", container.name, "--format", "{{json .State}}").stdout)
        assert state["Running"] and not state["OOMKilled"] and state["Restarting"] is False
        assert "give it more memory" in container.logs()
    finally:
        container.remove()


def test_plain_docker_run_serves_the_baked_model(image):
    container = run_server(image, "vr-test-baked")
    try:
        container.wait_ready()
        answer = recommend(container.url, "u001")
        assert "fallback" not in answer and len(answer["recommendations"]) == 3
    finally:
        container.remove()


def test_serving_workers_run_unprivileged_and_cannot_write_the_model(image):
    container = run_server(image, "vr-test-uid")
    try:
        container.wait_ready()
        assert "fallback" not in recommend(container.url, "u001")
        probe = """
import json, os
def uid(pid): return int(open(f"/proc/{pid}/status").read().split("Uid:")[1].split()[0])
def serving(pid): return b"serve.py" in open(f"/proc/{pid}/cmdline", "rb").read() and pid != str(os.getpid())
print(json.dumps([[int(pid), uid(pid)] for pid in os.listdir("/proc") if pid.isdigit() and serving(pid)]))
"""
        processes = json.loads(docker("exec", container.name, "python", "-c", probe).stdout)
        uids = dict(processes)
        assert uids.pop(1) == 0  # the master, pid 1, binds the port and manages workers as SageMaker started it
        assert uids and all(uid == 10001 for uid in uids.values())  # every worker: the image's vr user
        write = docker("exec", "-u", "vr", container.name, "touch", "/opt/program/model/manifest.json", check=False)
        assert write.returncode != 0 and "Permission denied" in write.stderr
    finally:
        container.remove()


def serving_workers(container) -> dict[int, int]:
    """The container's worker processes, seen from this machine (a local engine: its processes are ours to read):
    host pid → private memory in kB. Inside the container the workers' memory maps are not readable, even by
    root, without CAP_SYS_PTRACE."""
    master = int(docker("inspect", container.name, "--format", "{{.State.Pid}}").stdout)
    workers = {}
    for pid in children(master):
        try:
            rows = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
        except OSError:  # gone since
            continue
        fields = dict(line.split(":") for line in rows)
        if fields:  # a zombie has no mappings left
            workers[pid] = sum(int(fields[name].split()[0]) for name in ("Private_Clean", "Private_Dirty"))
    return workers


class Load:
    """`connections` clients asking for known users in a loop, and one asking /ping every 20 ms, until stopped."""

    def __init__(self, url: str, connections: int):
        self.url, self.stopped = url, threading.Event()
        self.statuses: list[int | str] = []
        self.pings: list[int | str] = []
        self.threads = [threading.Thread(target=self._ask) for _ in range(connections)]
        self.threads.append(threading.Thread(target=self._ping))
        for thread in self.threads:
            thread.start()

    def _ask(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stopped.is_set():
                try:
                    status = client.post("/invocations", json={"user_id": "u001", "k": 10}).status_code
                except httpx.TransportError as exc:
                    status = type(exc).__name__
                self.statuses.append(status)

    def _ping(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stopped.is_set():
                try:
                    self.pings.append(client.get("/ping").status_code)
                except httpx.TransportError as exc:
                    self.pings.append(type(exc).__name__)
                time.sleep(0.02)

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=30)


def test_a_worker_killed_under_load_loses_only_its_requests_and_is_replaced_at_the_same_memory(image):
    """What the OOM killer does to a worker, at c=8: only the requests it held fail, /ping is never answered
    otherwise than 200, and the master starts a new worker that holds no more private memory than the one that
    survived."""
    container = run_server(image, "vr-test-kill", "serve", options=("-e", "SAGEMAKER_MODEL_SERVER_WORKERS=2"))
    try:
        container.wait_ready()
        before = serving_workers(container)
        assert len(before) == 2, before
        load = Load(container.url, connections=8)
        try:
            time.sleep(1.0)
            victim = min(before)
            os.kill(victim, signal.SIGKILL)  # as the OOM killer does
            deadline = time.monotonic() + 60
            while set(after := serving_workers(container)) - set(before) == set() or len(after) != 2:
                assert time.monotonic() < deadline, container.logs()
                time.sleep(0.2)
            served_before_replacement = len(load.statuses)
            time.sleep(2.0)  # the new worker serves too
        finally:
            load.stop()
        failed = [status for status in load.statuses if status != 200]
        assert len(failed) <= 8, failed  # at most the requests in flight on the killed worker's connections
        assert len(load.statuses) > served_before_replacement + 50
        answered = [status for status in load.pings if isinstance(status, int)]
        assert answered and set(answered) == {200}, set(answered)  # never a 503: the other worker answers
        assert len(load.pings) - len(answered) <= 1, load.pings  # at most the one ping the killed worker held
        (new,) = set(after) - set(before)
        (survivor,) = set(after) & set(before)
        assert after[new] <= 1.5 * after[survivor] + 10_000, after  # kB: warm, and sharing the master's pages
    finally:
        container.remove()


def test_server_honours_sagemaker_bind_to_port(image):
    container = run_server(image, "vr-test-port", "serve", port=9090, options=("-e", "SAGEMAKER_BIND_TO_PORT=9090"))
    try:
        container.wait_ready()
    finally:
        container.remove()


def test_docker_stop_drains_the_in_flight_request_and_exits_0(image):
    slow = tuple(item for name, value in SLOW_SCORING.items() for item in ("-e", f"{name}={value}"))
    container = run_server(image, "vr-test-stop", "serve", options=slow)
    try:
        container.wait_ready()
        request = InFlightRequest(container.url, TWO_STAGE_LINES)
        started = time.monotonic()
        docker("stop", "-t", "30", container.name)
        stopped_after = time.monotonic() - started
        exit_code = docker("inspect", container.name, "--format", "{{.State.ExitCode}}").stdout.strip()
        assert exit_code == "0", container.logs()
        assert stopped_after < 30
        assert request.result() == {"status": 200, "lines": TWO_STAGE_LINES}
    finally:
        container.remove()


@pytest.fixture
def opt_ml(tmp_path, sample_events):
    root = tmp_path / "opt-ml"
    (root / "input" / "data" / "training").mkdir(parents=True)
    (root / "input" / "config").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "output").mkdir()
    sample_events.to_parquet(root / "input" / "data" / "training" / "events.parquet")
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps({"factors": "16", "iterations": "8"}))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _train(image: str, root) -> int:
    result = docker(
        "run", "--rm",
        "-v", f"{root / 'input'}:/opt/ml/input:ro",
        "-v", f"{root / 'model'}:/opt/ml/model",
        "-v", f"{root / 'output'}:/opt/ml/output",
        image, "train",
        check=False,
    )  # fmt: skip
    return result.returncode


def test_train_writes_a_valid_model_from_a_parquet_channel(image, opt_ml):
    assert _train(image, opt_ml) == 0
    manifest = load_model_dir(opt_ml / "model").manifest
    assert manifest.parameters["factors"] == 16
    assert not (opt_ml / "output" / "failure").exists()


def test_train_on_broken_input_writes_the_failure_and_exits_non_zero(image, opt_ml):
    (opt_ml / "input" / "data" / "training" / "events.parquet").unlink()
    (opt_ml / "input" / "data" / "training" / "events.csv").write_text("user_id,video_id\nu1,v1\n")
    assert _train(image, opt_ml) != 0
    assert "missing required column(s) 'timestamp'" in (opt_ml / "output" / "failure").read_text()


def test_unknown_argument_exits_non_zero_with_usage(image):
    result = docker("run", "--rm", image, "bogus", check=False)
    assert result.returncode != 0
    assert "usage: serve.py [serve|train]" in result.stderr
