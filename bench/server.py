"""Server benchmarks with wrk on 127.0.0.1, against a generated 100k-user × 20k-video × 64-factor model.

    python -m bench.server [--duration 10] [--connections 32]

1. /invocations k=10 throughput and p50/p99, next to a bare FastAPI endpoint returning a fixed body
   (same uvicorn settings: serve.py's); target ratio ≥ 0.8.
2. One request with 1000 users: latency, and users/s against implicit's raw batch recommend; target ≥ 0.5.
3. /ping p99 while /invocations is saturated; target < 50 ms.
4. Memory (PSS, which splits shared pages fairly) with 1 and 2 workers; target: the second adds < 50 MB.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
from scipy.sparse import csr_matrix

from bench.common import best_of, cache_dir, report
from tests.server import PROJECT_ROOT, free_port
from vrmodels.artifacts import ModelArtifacts, write_model_dir
from vrmodels.recommend import Recommender

USERS, VIDEOS, FACTORS, WATCHED_PER_USER = 100_000, 20_000, 64, 30


def generated_model() -> Path:
    directory = cache_dir() / f"model-{USERS}x{VIDEOS}x{FACTORS}"
    if directory.exists():
        return directory
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(USERS), WATCHED_PER_USER)
    columns = rng.integers(0, VIDEOS, size=len(rows))
    user_items = csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=(USERS, VIDEOS))
    user_items.sum_duplicates()
    write_model_dir(
        ModelArtifacts(
            user_factors=rng.normal(0, 0.1, (USERS, FACTORS)).astype(np.float32),
            item_factors=rng.normal(0, 0.1, (VIDEOS, FACTORS)).astype(np.float32),
            user_items=user_items,
            popularity=np.bincount(user_items.indices, minlength=VIDEOS).astype(np.float32),
            user_ids=[f"u{i:06d}" for i in range(USERS)],
            video_ids=[f"v{i:05d}" for i in range(VIDEOS)],
            manifest={"model_version": "bench", "parameters": {"regularization": 5.0, "alpha": 1.0}},
        ),
        directory,
    )
    return directory


class Server:
    """`serve.py`, or the bare app under the very same process model and settings."""

    def __init__(self, model_dir: Path, workers: int, bare: bool = False):
        self.port = free_port()
        env = {
            **os.environ,
            "VR_MODEL_DIR": str(model_dir),
            "VR_OPT_ML": tempfile.mkdtemp(),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
            "VR_LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-m", "bench.bare_app"] if bare else [sys.executable, "serve.py"]
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("server did not become ready")
        time.sleep(1.0)  # let every worker finish its warm-up

    def pss_mb(self) -> float:
        pids = [self.process.pid] + [int(p) for p in _children(self.process.pid)]
        total_kb = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
        return total_kb / 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def wrk(url: str, body: bytes | None, duration: int, connections: int, threads: int = 1) -> dict[str, float]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url]
    script = _post_script(body) if body is not None else None
    if script:
        command[1:1] = ["-s", script]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if script:
        os.unlink(script)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        raise RuntimeError(f"{non_2xx.group(1)} failed responses:\n{output}")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _latency(output, "50%"),
        "p99_ms": _latency(output, "99%"),
    }


def _latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    model_dir = generated_model()
    print(
        f"model: {USERS} users × {VIDEOS} videos × {FACTORS} factors; workers {args.workers}; wrk -c{args.connections}"
    )
    request = orjson.dumps({"user_id": "u000042", "k": 10})

    bare = Server(model_dir, args.workers, bare=True)
    try:
        baseline = wrk(f"{bare.url}/invocations", request, args.duration, args.connections)
    finally:
        bare.stop()

    server = Server(model_dir, args.workers)
    try:
        ours = wrk(f"{server.url}/invocations", request, args.duration, args.connections)
        report("1. bare FastAPI fixed body: requests/s", baseline["rps"], "req/s")
        report("1. bare FastAPI fixed body: p50 / p99", baseline["p50_ms"], "ms", f"p99 {baseline['p99_ms']:.2f} ms")
        report("1. /invocations k=10: requests/s", ours["rps"], "req/s")
        report("1. /invocations k=10: p50 / p99", ours["p50_ms"], "ms", f"p99 {ours['p99_ms']:.2f} ms")
        report("1. ratio ours / bare", ours["rps"] / baseline["rps"], "×", "target ≥ 0.8")

        users = [f"u{i:06d}" for i in range(0, USERS, USERS // 1000)][:1000]
        batch = orjson.dumps({"instances": [{"user_id": u, "k": 10} for u in users]})
        with httpx.Client(timeout=60) as client:
            client.post(f"{server.url}/invocations", content=batch, headers={"Content-Type": "application/json"})
            seconds = best_of(5, lambda: client.post(
                f"{server.url}/invocations", content=batch, headers={"Content-Type": "application/json"}
            ).raise_for_status())  # fmt: skip
        recommender = Recommender.load(model_dir, num_threads=1)
        indices = np.asarray([int(u[1:]) for u in users])
        user_items = recommender._user_items[indices]
        raw = best_of(5, lambda: recommender._model.recommend(indices, user_items, N=10))
        report("2. 1000 users in one request: latency", seconds * 1000, "ms")
        report("2. users/s through HTTP", 1000 / seconds, "users/s")
        report("2. users/s implicit raw batch recommend (1 thread)", 1000 / raw, "users/s")
        report("2. ratio HTTP / raw", raw / seconds, "×", "target ≥ 0.5")

        load_script = _post_script(request)
        load = subprocess.Popen(
            ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration + 2}s", "-s", load_script,
             f"{server.url}/invocations"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1)
        ping = wrk(f"{server.url}/ping", None, args.duration, 2)
        load.wait()
        os.unlink(load_script)
        report("3. /ping p99 while /invocations is saturated", ping["p99_ms"], "ms", "target < 50")
        report("3. /ping p50 while saturated", ping["p50_ms"], "ms")
    finally:
        server.stop()

    memory = {}
    for workers in (1, 2):
        server = Server(model_dir, workers)
        try:
            memory[workers] = server.pss_mb()
        finally:
            server.stop()
    report("4. PSS with 1 worker (supervisor + worker)", memory[1], "MB")
    report("4. PSS with 2 workers", memory[2], "MB")
    report("4. added by the second worker", memory[2] - memory[1], "MB", "target < 50")


def _post_script(body: bytes) -> str:
    """A wrk Lua script that POSTs `body` as JSON; the caller deletes the file."""
    escaped = body.decode().replace("\\", "\\\\").replace('"', '\\"')
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\nwrk.body = "{escaped}"\nwrk.headers["Content-Type"] = "application/json"\n')
    return script.name


if __name__ == "__main__":
    main()
