"""Peak memory when every worker answers its largest allowed request at once (issue 13).

    python -m bench.memory [--workers 2] [--seconds 10]

On the server benchmark's model (100k users × 20k videos × 64 factors, top-100 lists), the largest requests the
6 MB response budget lets through, in two shapes: few users with k=1000 over the whole catalogue (watched
videos kept, so each is scored in full), and 10,000 known users with k=10. Each worker gets one of them,
continuously, for `--seconds`; the process tree's PSS (shared pages split fairly) is sampled every 20 ms.
Printed: the model's size, the idle footprint, and the peak above idle per worker: the figures the README's
sizing rule is built from.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
from pathlib import Path

import httpx
import orjson

from bench.common import report
from bench.server import USERS, Server, generated_model
from bench.synthetic import ids
from serving.budget import ResponseBudget
from serving.errors import PayloadTooLarge
from vrmodels.model.queries import Query
from vrmodels.model.recommend import Recommender
from vrmodels.model.threads import limit_blas_threads

LIMIT_BYTES = 6 * 1024 * 1024


def largest_request(budget: ResponseBudget, k: int, exclude_watched: bool) -> bytes:
    """As many instances of this shape as the budget lets through."""
    users = ids("u", USERS)
    instance = {"k": k, "exclude_watched": exclude_watched}
    low, high = 1, 10_000
    while low < high:  # the largest count the budget accepts
        middle = (low + high + 1) // 2
        try:
            budget.check([Query(users[0], k, exclude_watched)] * middle)
            low = middle
        except PayloadTooLarge:
            high = middle - 1
    return orjson.dumps({"instances": [{"user_id": users[n * 37 % USERS], **instance} for n in range(low)]})


def peak_pss_mb(server: Server, body: bytes, workers: int, seconds: float) -> tuple[float, int]:
    """Highest PSS of the server's process tree while `workers` clients send `body` back to back."""
    stop, peak, answers = time.monotonic() + seconds, [0.0], [0]

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            while time.monotonic() < stop:
                response = http.post(
                    f"{server.url}/invocations", content=body, headers={"Content-Type": "application/json"}
                )
                response.raise_for_status()
                answers[0] += 1

    def sampler() -> None:
        while time.monotonic() < stop:
            peak[0] = max(peak[0], server.pss_mb())
            time.sleep(0.02)

    threads = [threading.Thread(target=client) for _ in range(workers)] + [threading.Thread(target=sampler)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return peak[0], answers[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    limit_blas_threads()
    model_dir = generated_model()
    recommender = Recommender.load(model_dir)
    budget = ResponseBudget(LIMIT_BYTES, recommender.video_count, recommender.longest_video_id)
    model_mb = sum(path.stat().st_size for path in Path(model_dir).iterdir()) / 1e6
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.workers} workers; model files {model_mb:.0f} MB"
    )
    shapes = {
        "k=1000, whole catalogue scored": largest_request(budget, 1000, exclude_watched=False),
        "k=10, known users (precomputed lists)": largest_request(budget, 10, exclude_watched=True),
    }
    server = Server(model_dir, args.workers)
    try:
        idle = server.pss_mb()
        report("idle PSS (master + workers)", idle, "MB")
        for name, body in shapes.items():
            instances = len(orjson.loads(body)["instances"])
            peak, answered = peak_pss_mb(server, body, args.workers, args.seconds)
            report(f"{name}: instances per request", instances, "")
            report(f"{name}: answers in {args.seconds:g}s", answered, "")
            report(f"{name}: peak PSS", peak, "MB")
            report(f"{name}: peak above idle, per worker", (peak - idle) / args.workers, "MB")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
