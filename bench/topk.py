"""Exact top-k over the catalogue by the factors' memory layout: what the scoring thread's batches cost.

    python -m bench.topk [--videos 20000] [--factors 64] [--repeats 200]

implicit's `topk` multiplies the queries by `items.T`; vrmodels.model.topk hands it a column-major copy of the
item factors, so that `items.T` is contiguous. For each batch size a busy worker forms (1-64 queries), this times
row-major (the mapped file's layout) and column-major factors alternately, one thread as in a worker, with 30
filtered videos per query, and prints microseconds per query and the ratio. The answers are checked equal.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from implicit.cpu.topk import topk
from scipy.sparse import csr_matrix

from vrmodels.model.threads import limit_blas_threads

BATCHES = (1, 2, 4, 8, 16, 32, 64)
K, FILTERED = 10, 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=20_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per layout and batch size")
    args = parser.parse_args()
    limit_blas_threads()
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((args.videos, args.factors), dtype=np.float32)
    layouts = {"row-major": rows, "column-major": np.asfortranarray(rows)}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.videos} videos × {args.factors} factors")
    print(f"{'queries':>8} {'row-major µs/query':>20} {'column-major µs/query':>22} {'ratio':>7}")
    for batch in BATCHES:
        queries = rng.standard_normal((batch, args.factors), dtype=np.float32)
        filtered = np.sort(rng.choice(args.videos, (batch, FILTERED)), axis=1).ravel()
        filters = csr_matrix(
            (np.ones(len(filtered), np.float32), filtered, np.arange(batch + 1) * FILTERED), (batch, args.videos)
        )
        answers = [topk(items, queries, K, filter_query_items=filters, num_threads=1)[0] for items in layouts.values()]
        if not np.array_equal(*answers):
            raise SystemExit(f"the layouts disagree at {batch} queries")
        timings: dict[str, list[float]] = {name: [] for name in layouts}
        for _ in range(args.repeats):
            for name, items in layouts.items():  # alternating: the machine's drift touches both alike
                started = time.perf_counter()
                topk(items, queries, K, filter_query_items=filters, num_threads=1)
                timings[name].append((time.perf_counter() - started) / batch * 1e6)
        row, column = (statistics.median(timings[name]) for name in layouts)
        print(f"{batch:>8} {row:>20.1f} {column:>22.1f} {row / column:>6.2f}×")


if __name__ == "__main__":
    main()
