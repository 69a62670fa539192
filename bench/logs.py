"""What logging costs a busy endpoint: bytes written to stdout (CloudWatch Logs, billed per GB ingested) per
request, and throughput at the default settings against `VR_LOG_LEVEL=WARNING` (no access lines at all).

    python -m bench.logs [--duration 60] [--rounds 3]
    python -m bench.logs --decision-cost-only

Known users, k=10, one worker, wrk -t1 -c8, on bench.server's 100k-user × 20k-video model; the two settings
alternate, each round starting with the other. Everything the server writes to stdout counts (the metrics
published every minute and at shutdown, the sampled access lines, start and stop). Then, in-process, what the
two settings do differently per request (the access-line decision, and the sampled lines written to
/dev/null), in µs: the share of a request's time it can cost, whatever the machine's noise between runs.
Targets (issue 26): ≤ 10 bytes per request averaged over 60 s of load, throughput at the default settings within
2% of WARNING's.

"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import in_turn, report
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


DECISIONS = 500_000
REFERENCE_RPS = 3_000  # known-user req/s of one worker on the CI machine (2026-12-06)


def decision_cost() -> None:
    """Run in a child per setting (logging is configured once a process): µs per request of the access-line
    decision and the sampled lines, stdout to /dev/null."""
    from serving.logs import configure_logging
    from serving.middleware import RequestLog
    from serving.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level)
    log = RequestLog(app=None, settings=settings)
    fields = {"request_id": "0" * 32, "method": "POST", "route": "/invocations", "status": 200, "latency_ms": 1.0}
    started = time.perf_counter()
    for _ in range(DECISIONS):
        level = log._access_line_level(200)
        if level is not None:
            log.logger.log(fields, time.time(), level=level)
    print((time.perf_counter() - started) / DECISIONS * 1e6, file=sys.stderr)


def decision_costs(rounds: int = 3) -> dict[str, float]:
    """Median µs per request of each setting's decision, alternating."""
    costs: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(rounds):
        for name, env in SETTINGS.items():
            child = subprocess.run(
                [sys.executable, "-m", "bench.logs", "--decision-cost-child"],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                check=True,
            )
            costs[name].append(float(child.stderr.strip().splitlines()[-1]))
    return {name: statistics.median(values) for name, values in costs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the two settings")
    parser.add_argument("--decision-cost-only", action="store_true", help="only the in-process part")
    parser.add_argument("--decision-cost-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decision_cost_child:
        decision_cost()
        return
    limit_blas_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores")
    if not args.decision_cost_only:
        served(args.duration, args.rounds)
    costs = decision_costs()
    for name, cost in costs.items():
        report(f"{name}: access-line decision and sampled lines, per request", cost, "µs")
    extra = costs["default"] - costs["WARNING"]
    share = extra / (1e6 / REFERENCE_RPS) * 100
    print(
        f"   the default settings' extra work: {extra:.2f} µs a request, {share:.3f}% of one at {REFERENCE_RPS:,} req/s"
    )


def served(duration: int, rounds: int) -> None:
    model_dir, script = generated_model(), lua_script([KNOWN_USER])
    rps: dict[str, list[float]] = {name: [] for name in SETTINGS}
    per_request: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for round_number in range(rounds):
        for name in in_turn(round_number, list(SETTINGS)):
            throughput, size = run(model_dir, script, duration=duration, env=SETTINGS[name])
            rps[name].append(throughput)
            per_request[name].append(size)
            print(f"  round {round_number + 1}, {name}: {throughput:,.0f} req/s, {size:.2f} bytes/request", flush=True)
    for name in SETTINGS:
        report(f"{name}: stdout bytes per request (median)", statistics.median(per_request[name]), "B", "target ≤ 10")
    ratios = [default / warning for default, warning in zip(rps["default"], rps["WARNING"], strict=True)]
    report("req/s default / WARNING (median of rounds)", statistics.median(ratios), "×", "target ≥ 0.98")


if __name__ == "__main__":
    main()
