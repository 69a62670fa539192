"""Hosting-mode benchmarks: batch transform, multi-model endpoints (issue 19). Two workers, as on a 2-vCPU instance.

    python -m bench.hosting [--duration 8] [--rounds 4]

Printed, each from this one run:
1. a batch transform of 100k users (k=10) through sagemaker_local.transform (SageMaker's semantics, S3 in moto)
   against the same users sent as `instances` batches of 10,000 straight to the server (the anchor, alternated):
   every line answered in order, throughput within 20%;
2. a known-user request through /models/{name}/invoke against /invocations on the same model, wrk c=8,
   alternated: within 10%;
3. the 100k × 20k benchmark model: POST /models, then the first answer: under 1 s;
4. 50 small models loaded and invoked through both workers: what the second worker adds (PSS) < 50 MB; after
   unloading them all, no worker maps a file of theirs;
5. churn (issue 26): 50 models behind a multi-model server of two workers whose memory budget holds 10, invoked
   by 4 clients for `--churn-minutes` (30; 0 skips it) through sagemaker_local.models, which loads on first use and
   unloads the least recently used on a 507, as SageMaker does: no 5xx but 507, memory flat (PSS sampled).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import orjson

from bench.common import cache_dir, children, free_port, in_turn, report
from bench.server import KNOWN_USER, USERS, Server, generated_model, lua_script, wrk
from bench.synthetic import ids, random_model
from sagemaker_local.models import ModelHost, TargetModelError
from sagemaker_local.transform import Job, Runner
from serving.models import MIB, files_bytes
from vrmodels.model.artifacts import package_model_dir
from vrmodels.model.threads import limit_blas_threads

WORKERS = 2
TRANSFORM_USERS = 100_000
SMALL_MODELS = 50
CHURN_RESIDENT = 10  # models the churn's memory budget holds at once
CHURN_CLIENTS = 4


def moto_s3() -> tuple[object, object]:
    """A moto server on 127.0.0.1 and an S3 client of it (SageMaker's side of the hosting benchmarks)."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    s3 = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id="t", aws_secret_access_key="t",
    )  # fmt: skip
    return moto, s3


def transform_throughput(model_dir: Path, rounds: int) -> None:
    moto, s3 = moto_s3()
    s3.create_bucket(Bucket="bench")
    users = ids("u", USERS)[:TRANSFORM_USERS]
    lines = [orjson.dumps({"user_id": user, "k": 10}) for user in users]
    s3.put_object(Bucket="bench", Key="in/users.jsonl", Body=b"\n".join(lines) + b"\n")
    server = Server(model_dir, WORKERS, env={"SAGEMAKER_BATCH": "true"})
    timings: dict[str, list[float]] = {"transform": [], "instances": []}
    try:
        for round_number in range(rounds):
            for kind in in_turn(round_number, ("transform", "instances")):
                started = time.perf_counter()
                if kind == "transform":
                    job = Job("s3://bench/in/", f"s3://bench/out-{round_number}/")
                    result = Runner(server.url, job, s3).run()
                    assert not result.failed, result.as_dict()
                else:
                    instances_batches(server.url, users)
                timings[kind].append(time.perf_counter() - started)
        answer = s3.get_object(Bucket="bench", Key="out-0/users.jsonl.out")["Body"].read().splitlines()
        in_order = len(answer) == len(users) and all(
            orjson.loads(line)["userId"] == user for line, user in zip(answer, users)
        )
        mini_batches = result.files[0].mini_batches
    finally:
        server.stop()
        moto.stop()
    transform, instances = (float(np.median(timings[kind])) for kind in ("transform", "instances"))
    print(f"1. batch transform of {TRANSFORM_USERS:,} users, k=10, {WORKERS} workers, {rounds} alternating rounds")
    print(f"   every line answered, in input order: {in_order}; {mini_batches} mini-batches of up to 6 MB")
    report("1. transform job (local runner): users/s", TRANSFORM_USERS / transform, "users/s")
    report("1. instances batches of 10,000, 2 in flight: users/s", TRANSFORM_USERS / instances, "users/s")
    report("1. transform / instances throughput", instances / transform, "×", "target ≥ 0.8")


def instances_batches(url: str, users: list[str]) -> None:
    """The anchor: the same users as `instances` requests of 10,000 (the real-time limit), two in flight."""
    bodies = [
        orjson.dumps({"instances": [{"user_id": user, "k": 10} for user in users[start : start + 10_000]]})
        for start in range(0, len(users), 10_000)
    ]
    with httpx.Client(timeout=600) as client, ThreadPoolExecutor(WORKERS) as pool:
        for response in pool.map(
            lambda body: client.post(f"{url}/invocations", content=body, headers={"Content-Type": "application/json"}),
            bodies,
        ):
            response.raise_for_status()


def multi_model_server(root: Path, workers: int = WORKERS, memory_mb: float = 20_000) -> Server:
    env = {
        "SAGEMAKER_MULTI_MODEL": "true",
        "VR_MULTI_MODEL_ROOT": str(root),
        "VR_MULTI_MODEL_MEMORY_MB": str(memory_mb),
    }
    return Server(root, workers, env=env)


def load(url: str, name: str, directory: Path) -> float:
    started = time.perf_counter()
    httpx.post(f"{url}/models", json={"model_name": name, "url": str(directory)}, timeout=360).raise_for_status()
    return time.perf_counter() - started


def invoke_overhead(model_dir: Path, rounds: int, duration: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="vr-bench-mme-"))
    shutil.copytree(model_dir, root / "big", copy_function=os.link)  # hard links: the same pages, under the root
    known = lua_script([KNOWN_USER])
    invoke = lua_script([KNOWN_USER], path="/models/big/invoke")
    results: dict[str, list[dict[str, float]]] = {"invocations": [], "invoke": []}
    first_answer = []
    try:
        for round_number in range(rounds):
            for kind in in_turn(round_number, ("invocations", "invoke")):
                if kind == "invocations":
                    server = Server(model_dir, WORKERS)
                    try:
                        results[kind].append(wrk(f"{server.url}/invocations", known, duration, 8))
                    finally:
                        server.stop()
                    continue
                server = multi_model_server(root)
                try:
                    loaded = load(server.url, "big", root / "big")
                    started = time.perf_counter()
                    body = {"user_id": "u000001", "k": 10}
                    httpx.post(f"{server.url}/models/big/invoke", json=body, timeout=60).raise_for_status()
                    first_answer.append((loaded, time.perf_counter() - started))
                    time.sleep(0.5)
                    results[kind].append(wrk(f"{server.url}/models/big/invoke", invoke, duration, 8))
                finally:
                    server.stop()
    finally:
        shutil.rmtree(root)
        for script in (known, invoke):
            os.unlink(script)
    single, multi = (float(np.median([r["rps"] for r in results[kind]])) for kind in ("invocations", "invoke"))
    print(f"2. known user, k=10, c=8, {WORKERS} workers, {rounds} alternating rounds (medians)")
    report("2. /invocations, single-model server: req/s", single, "req/s")
    report("2. /models/{name}/invoke, multi-model server: req/s", multi, "req/s")
    report("2. invoke / invocations", multi / single, "×", "target ≥ 0.9")
    loaded, answered = min(first_answer, key=sum)
    print("3. the 100k × 20k model: load, then the first answer")
    report("3. POST /models (map, warm, register)", loaded * 1000, "ms")
    report("3. then the first invocation", answered * 1000, "ms")
    report("3. load to first answer", (loaded + answered) * 1000, "ms", "target < 1000")


def small_model() -> Path:
    directory = cache_dir() / "small-model-2000x1000"
    if not directory.exists():
        random_model(directory, users=2000, videos=1000, factors=32, topn=20)
    return directory


def many_models_memory() -> None:
    root = Path(tempfile.mkdtemp(prefix="vr-bench-many-"))
    source = small_model()
    for index in range(SMALL_MODELS):
        shutil.copytree(source, root / f"m{index:02d}" / "model")
    pss, leftover = {}, []
    try:
        for workers in (1, 2):
            server = multi_model_server(root, workers)
            try:
                pids = children(server.process.pid)
                for index in range(SMALL_MODELS):
                    load(server.url, f"m{index:02d}", root / f"m{index:02d}" / "model")
                for index in range(SMALL_MODELS):  # new connections until every worker has mapped every model
                    for _ in range(100):
                        httpx.post(
                            f"{server.url}/models/m{index:02d}/invoke", json={"user_id": "u0001", "k": 5},
                            headers={"Connection": "close"}, timeout=30,
                        ).raise_for_status()  # fmt: skip
                        if all(f"{root}/m{index:02d}/" in Path(f"/proc/{pid}/maps").read_text() for pid in pids):
                            break
                time.sleep(0.5)
                pss[workers] = server.pss_mb()
                if workers == 2:
                    for index in range(SMALL_MODELS):
                        httpx.delete(f"{server.url}/models/m{index:02d}", timeout=360).raise_for_status()
                    leftover = [pid for pid in pids if str(root) in Path(f"/proc/{pid}/maps").read_text()]
            finally:
                server.stop()
    finally:
        shutil.rmtree(root)
    print(
        f"4. {SMALL_MODELS} small models (2,000 users × 1,000 videos × 32 each) loaded and invoked through every worker"
    )
    report("4. PSS, 1 worker (supervisor + worker)", pss[1], "MB")
    report("4. PSS, 2 workers", pss[2], "MB")
    report("4. added by the second worker", pss[2] - pss[1], "MB", "target < 50")
    print(f"   after unloading all {SMALL_MODELS}: workers still mapping a model file: {leftover or 'none'}")


def multi_model_churn(minutes: float) -> None:
    source = small_model()
    model_mb = files_bytes(source) / MIB  # what the server counts against VR_MULTI_MODEL_MEMORY_MB
    moto, s3 = moto_s3()
    s3.create_bucket(Bucket="bench")
    with tempfile.TemporaryDirectory(prefix="vr-bench-churn-archive-") as folder:
        archive = package_model_dir(source, Path(folder) / "model.tar.gz").read_bytes()
    targets = [f"tenant-{index:02d}.tar.gz" for index in range(SMALL_MODELS)]
    for target in targets:
        s3.put_object(Bucket="bench", Key=f"tenants/{target}", Body=archive)
    root = Path(tempfile.mkdtemp(prefix="vr-bench-churn-"))
    server = multi_model_server(root, memory_mb=round(model_mb * (CHURN_RESIDENT + 0.5), 3))
    host = ModelHost(server.url, "s3://bench/tenants/", root, s3, root=str(root))
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + minutes * 60
    weights = [1 / (rank + 1) for rank in range(SMALL_MODELS)]  # a few busy tenants, a long tail

    def client(seed: int) -> None:
        picker = random.Random(seed)
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < deadline:
                target = picker.choices(targets, weights)[0]
                try:
                    status = http.post(host.invoke_url(target), json={"user_id": "u0001", "k": 5}).status_code
                    outcome = str(status)
                except TargetModelError as error:
                    outcome = f"load {error.status}"
                except httpx.TransportError as error:
                    outcome = f"transport {type(error).__name__}"
                with lock:
                    statuses[outcome] += 1

    samples: list[tuple[float, float]] = []
    workers_seen: set[int] = set()
    started = time.monotonic()
    try:
        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(CHURN_CLIENTS)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            samples.append(((time.monotonic() - started) / 60, server.pss_mb()))
            workers_seen.update(children(server.process.pid))
            time.sleep(min(30, max(1, minutes * 2)))
        stale = [pid for pid in children(server.process.pid) if "(deleted)" in Path(f"/proc/{pid}/maps").read_text()]
    finally:
        server.stop()
        moto.stop()
        shutil.rmtree(root)
    answered = sum(statuses.values())
    failures = {outcome: count for outcome, count in statuses.items() if outcome != "200"}
    server_errors = sum(count for outcome, count in failures.items() if outcome.split()[-1].startswith("5"))
    print(
        f"5. churn: {SMALL_MODELS} models ({model_mb:.2f} MiB each), budget {CHURN_RESIDENT}, {WORKERS} workers, "
        f"{CHURN_CLIENTS} clients, {minutes:g} minutes"
    )
    report("5. requests", answered, "")
    report("5. requests/s", answered / max(time.monotonic() - started, 1e-9), "req/s")
    print(f"   answers other than 200: {failures or 'none'}")
    report("5. loads (each after a download and unpack)", host.loads, "")
    report("5. unloads after a 507", host.evictions, "")
    report("5. 5xx other than 507", server_errors, "", "target 0")
    first, last, peak = samples[0][1], samples[-1][1], max(pss for _, pss in samples)
    half = [pss for minute, pss in samples if minute >= samples[-1][0] / 2]
    report("5. PSS at start (server + workers)", first, "MB")
    report("5. PSS at the end", last, "MB")
    report("5. PSS peak", peak, "MB")
    report("5. PSS range over the second half", max(half) - min(half), "MB", "flat: within the budget")
    slope = (
        np.polyfit([minute for minute, pss in samples if minute >= samples[-1][0] / 2], half, 1)[0]
        if len(half) > 1
        else 0.0
    )
    report("5. PSS trend over the second half", slope * 60, "MB/hour")
    marks = samples[:: max(1, len(samples) // 8)] + samples[-1:]
    print("   PSS over time: " + ", ".join(f"{minute:.0f} min {pss:.0f} MB" for minute, pss in marks))
    print(
        f"   worker processes seen: {len(workers_seen)} (2 means none was replaced); mapping a deleted file at the "
        f"end: {stale or 'none'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of each comparison")
    parser.add_argument("--churn-minutes", type=float, default=30, help="the multi-model churn's length (0 skips)")
    parser.add_argument("--only-churn", action="store_true", help="run the churn alone")
    args = parser.parse_args()
    limit_blas_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {WORKERS} workers", flush=True)
    if not args.only_churn:
        model_dir = generated_model()
        transform_throughput(model_dir, args.rounds)
        invoke_overhead(model_dir, args.rounds, args.duration)
        many_models_memory()
    if args.churn_minutes > 0:
        multi_model_churn(args.churn_minutes)


if __name__ == "__main__":
    main()
