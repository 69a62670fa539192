"""What logging costs a busy endpoint: bytes written to stdout (CloudWatch Logs, billed per GB ingested) per
request, and throughput at the default settings against `VR_LOG_LEVEL=WARNING` (no access lines at all).

    python -m bench.logs [--duration 60] [--rounds 3]

Known users, k=10, one worker, wrk -t1 -c8, on bench.server's 100k-user × 20k-video model; the two settings
alternate, each round starting with the other. Everything the server writes to stdout counts (the metrics
published every minute and at shutdown, the sampled access lines, start and stop). Targets (issue 26): ≤ 10 bytes
per request averaged over 60 s of load, throughput at the default settings within 2% of WARNING's.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

from bench.common import report
from bench.server import KNOWN_USER, Server, generated_model, lua_script, wrk
from vrmodels.model.threads import limit_blas_threads

SETTINGS = {"default": {}, "WARNING": {"VR_LOG_LEVEL": "WARNING"}}


def run(model_dir: Path, script: str, *, duration: int, env: dict[str, str]) -> tuple[float, float]:
    """One server's req/s and stdout bytes per request over `duration` seconds of load (its whole stdout)."""
    log = Path(tempfile.mkdtemp()) / "stdout"
    server = Server(model_dir, env=env, log=log)
    try:
        result = wrk(f"{server.url}/invocations", script, duration, 8)
    finally:
        server.stop()
    return result["rps"], log.stat().st_size / result["requests"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the two settings")
    args = parser.parse_args()
    limit_blas_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores")
    model_dir, script = generated_model(), lua_script([KNOWN_USER])
    rps: dict[str, list[float]] = {name: [] for name in SETTINGS}
    per_request: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for round_number in range(args.rounds):
        names = list(SETTINGS) if round_number % 2 == 0 else list(SETTINGS)[::-1]
        for name in names:
            throughput, size = run(model_dir, script, duration=args.duration, env=SETTINGS[name])
            rps[name].append(throughput)
            per_request[name].append(size)
            print(f"  round {round_number + 1}, {name}: {throughput:,.0f} req/s, {size:.2f} bytes/request", flush=True)
    for name in SETTINGS:
        report(f"{name}: stdout bytes per request (median)", statistics.median(per_request[name]), "B", "target ≤ 10")
    ratios = [default / warning for default, warning in zip(rps["default"], rps["WARNING"], strict=True)]
    report("req/s default / WARNING (median of rounds)", statistics.median(ratios), "×", "target ≥ 0.98")


if __name__ == "__main__":
    main()
