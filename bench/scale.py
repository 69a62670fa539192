"""The scale curve: exact and ANN serving over generated models from 100k users × 20k videos to 1M × 1M.

    python -m bench.scale [--users 100000 1000000] [--videos 20000 200000 1000000] [--duration 8]

Each model has 64 factors, 10 watched videos per user, both HNSW indexes, session tables (50 watched-next followers
a video: the table a model of format 6 maps) and no precomputed top-N lists (so
every known-user request is scored: exactly with VR_ANN=off, through the index with VR_ANN=on); factors have
the structure of trained ALS factors (bench.synthetic). Models are cached in bench/.cache. Printed per model:
- model files on disk, and seconds from `python serve.py` to the first /ping 200 (2 workers);
- PSS of the whole server with 1 and with 2 workers, what the second worker adds, and each worker's private memory
  (PSS grows with the model-file pages the workers happened to touch, which the page cache shares and may drop);
- req/s, p50 and p99 of known-user k=10 requests at c=1 and c=8, exact and ANN (2 workers, wrk on 127.0.0.1);
- recall@10 of ANN answers against exact ones on 1,000 random users.
Targets (issue 10): at 1M × 1M, recall ≥ 0.95, ANN p99 < 10 ms at c=1 and ≥ 5× exact's req/s at c=8; at 1M
users, the second worker adds < 50 MB and /ping answers 200 within 10 s of start.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from bench.common import cache_dir
from bench.server import Server, lua_script, wrk
from bench.synthetic import ids, random_model
from vrmodels.model.artifacts import FORMAT_VERSION
from vrmodels.model.recommend import Query, Recommender, ScoringOptions
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training.sessions import FOLLOWERS

FACTORS, WATCHED = 64, 10


def model(users: int, videos: int) -> Path:
    directory = cache_dir() / f"scale-{users}x{videos}x{FACTORS}-format{FORMAT_VERSION}"
    if not directory.exists():
        started = time.perf_counter()
        print(f"generating {users} × {videos} (cached in bench/.cache) ...", flush=True)
        random_model(directory, users, videos, FACTORS, watched=WATCHED, ann_mode="on", followers=FOLLOWERS)
        print(f"  generated in {time.perf_counter() - started:.0f}s", flush=True)
    return directory


def server_env(ann: bool) -> dict[str, str]:
    return {"VR_ANN": "on" if ann else "off", "VR_LOG_LEVEL": "WARNING"}


def recall_at_10(model_dir: Path, users: int, sample: int = 1000) -> float:
    approximate = Recommender.load(model_dir)
    exact = Recommender.load(model_dir, ScoringOptions(use_ann=False))
    user_ids = ids("u", users)
    chosen = [user_ids[i] for i in np.random.default_rng(0).choice(users, sample, replace=False)]
    queries = [Query(user, 10) for user in chosen]
    hits = [
        len(set(a.video_ids) & set(e.video_ids)) / 10 for a, e in zip(approximate.rank(queries), exact.rank(queries))
    ]
    return float(np.mean(hits))


def measure(users: int, videos: int, duration: int) -> dict:
    directory = model(users, videos)
    row = {"users": users, "videos": videos, "files_mb": sum(f.stat().st_size for f in directory.iterdir()) / 1e6}
    one = Server(directory, 1, env=server_env(ann=True))
    row["pss_1_worker_mb"] = one.pss_mb()
    one.stop()
    user = f"u%0{len(ids('u', users)[0]) - 1}d"
    script = lua_script([f'string.format(\'{{"user_id":"{user}","k":10}}\', math.random(0, {users - 1}))'])
    for ann in (False, True):
        server = Server(directory, 2, env=server_env(ann))
        try:
            if ann:
                row["ready_seconds"] = server.ready_seconds
                row["pss_2_workers_mb"] = server.pss_mb()
                row["private_per_worker_mb"] = max(server.private_mb())
            for connections in (1, 8):
                result = wrk(f"{server.url}/invocations", script, duration, connections)
                row[f"{'ann' if ann else 'exact'}_c{connections}"] = result
        finally:
            server.stop()
    os.unlink(script)
    row["recall_at_10"] = recall_at_10(directory, users)
    return row


def print_row(row: dict) -> None:
    exact, ann = row["exact_c8"], row["ann_c8"]
    print(
        f"{row['users']:>9,} × {row['videos']:>9,}: files {row['files_mb']:7.0f} MB, "
        f"ready {row['ready_seconds']:5.1f} s, "
        f"PSS 1w {row['pss_1_worker_mb']:6.0f} MB, 2w {row['pss_2_workers_mb']:6.0f} MB "
        f"(+{row['pss_2_workers_mb'] - row['pss_1_worker_mb']:.0f}), private per worker "
        f"{row['private_per_worker_mb']:.0f} MB, recall@10 {row['recall_at_10']:.3f}",
        flush=True,
    )
    for mode in ("exact", "ann"):
        c1, c8 = row[f"{mode}_c1"], row[f"{mode}_c8"]
        print(
            f"    {mode:<5} c=1 {c1['rps']:8,.0f} req/s p50 {c1['p50_ms']:7.2f} p99 {c1['p99_ms']:7.2f} ms | "
            f"c=8 {c8['rps']:8,.0f} req/s p50 {c8['p50_ms']:7.2f} p99 {c8['p99_ms']:7.2f} ms",
            flush=True,
        )
    print(f"    ANN / exact req/s at c=8: {ann['rps'] / exact['rps']:.1f}×", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--videos", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    args = parser.parse_args()
    limit_blas_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; 2 workers; {FACTORS} factors", flush=True)
    for users in args.users:
        for videos in args.videos:
            print_row(measure(users, videos, args.duration))


if __name__ == "__main__":
    main()
