"""Multi-model mode in a real server with two workers: loads, unloads and the list hold for every worker at once."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.server import start_server
from tests.test_multi_model import model_size_mb, models_root

JSON = {"Content-Type": "application/json"}
NAMES = ("a", "b", "c", "d")


def workers(server) -> list[int]:
    pid = server.process.pid
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def mapping(pid: int, directory: Path) -> bool:
    """Whether process `pid` maps any file under `directory`."""
    return str(directory) in Path(f"/proc/{pid}/maps").read_text()


def fresh(method: str, url: str, **kwargs) -> httpx.Response:
    """One request on a new connection: each may be accepted by either worker."""
    return httpx.request(method, url, headers=JSON | {"Connection": "close"}, timeout=30, **kwargs)


def load(server, name: str) -> httpx.Response:
    body = json.dumps({"model_name": name, "url": str(server.root / name / "model")})
    return fresh("POST", f"{server.url}/models", content=body)


def invoke(server, name: str) -> httpx.Response:
    return fresh("POST", f"{server.url}/models/{name}/invoke", content=json.dumps({"user_id": "u001", "k": 3}))


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_dir):
    tmp = tmp_path_factory.mktemp("mme")
    root = models_root(tmp, model_dir, *NAMES)
    size_mb = model_size_mb(model_dir)
    env = {
        "SAGEMAKER_MULTI_MODEL": "true",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
        "VR_MULTI_MODEL_ROOT": str(root),
        "VR_MULTI_MODEL_MEMORY_MB": f"{size_mb * 3.5:.3f}",  # three of the four fit
    }
    running = start_server(tmp / "server.log", env)
    running.root = root
    deadline = time.monotonic() + 30
    while len(workers(running)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    yield running
    running.stop()


def test_a_model_loaded_through_one_worker_is_answered_by_both(server):
    assert load(server, "a").status_code == 200
    pids = workers(server)
    for _ in range(200):  # new connections until both workers have answered it
        assert invoke(server, "a").status_code == 200
        if all(mapping(pid, server.root / "a") for pid in pids):
            break
    assert all(mapping(pid, server.root / "a") for pid in pids), "one worker never answered in 200 connections"
    listed = [fresh("GET", f"{server.url}/models").json()["models"] for _ in range(10)]
    assert all(models == [{"modelName": "a", "modelUrl": str(server.root / "a" / "model")}] for models in listed)


def test_concurrent_loads_of_one_name_give_one_200_and_409s(server):
    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(response.status_code for response in pool.map(lambda _: load(server, "b"), range(4)))
    assert statuses == [200, 409, 409, 409]


def test_the_memory_budget_holds_across_workers(server):
    load(server, "a"), load(server, "b")
    assert load(server, "c").status_code == 200
    assert load(server, "d").status_code == 507
    assert fresh("DELETE", f"{server.url}/models/c").status_code == 200


def test_unload_under_load_answers_200_then_404_everywhere_and_no_worker_maps_it(server):
    assert load(server, "c").status_code == 200
    results: list[tuple[float, int]] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            results.append((sent, invoke(server, "c").status_code))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    deleted = fresh("DELETE", f"{server.url}/models/c")
    unloaded_at = time.monotonic()
    still_mapped = [pid for pid in workers(server) if mapping(pid, server.root / "c")]
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert deleted.status_code == 200
    assert still_mapped == []
    assert {status for _, status in results} <= {200, 404}
    assert any(status == 200 for _, status in results)
    late = [status for sent, status in results if sent > unloaded_at]
    assert late and set(late) == {404}
    assert fresh("GET", f"{server.url}/models/c").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/models", "{", 400),
        ("POST", "/models", {"model_name": "x"}, 400),
        ("POST", "/models", {"model_name": "x", "url": "/etc"}, 403),
        ("POST", "/models", {"model_name": "x", "url": "ROOT/empty"}, 422),
        ("GET", "/models/nobody", None, 404),
        ("DELETE", "/models/nobody", None, 404),
        ("POST", "/models/nobody/invoke", {"user_id": "u001"}, 404),
        ("GET", "/models?limit=0", None, 400),
    ],
)
def test_every_refusal_has_its_status_on_either_worker(server, method, path, body, status):
    (server.root / "empty").mkdir(exist_ok=True)  # a directory that is no model
    content = None if body is None else body if isinstance(body, str) else json.dumps(body)
    content = content and content.replace("ROOT", str(server.root))
    for _ in range(4):  # new connections: both workers answer alike
        response = fresh(method, f"{server.url}{path}", content=content)
        assert response.status_code == status
        assert response.json()["error"]["status"] == status
