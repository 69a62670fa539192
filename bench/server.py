"""Server benchmarks with wrk on 127.0.0.1, against a generated 100k-user × 20k-video × 64-factor model.

    python -m bench.server [--duration 10] [--rounds 3]   (anchor and ours alternating; the median round)
    python -m bench.server --against ../base [--rounds 3]   (this checkout against another, alternating)
    python -m bench.server --sequence-only [--against ../base]   (section 5 alone; against another: ratios, each
                                                                   checkout serving the model it trains)

Contenders, one worker each unless said: the tutorial's own app (`bench.tutorial_app`, the anchor: FastAPI,
pydantic, one implicit recommend per request, one uvicorn process) and ours (`serve.py`). Printed, all from
this one run (targets of issue 9):
1. known-user k=10, users drawn uniformly, wrk -t1 -c8: ours ≥ 4× the anchor's req/s, p99 no worse;
2. exact-path requests (history fold-in, candidates, exclude_watched false, similar videos, in turn), c=32:
   ≥ 2× the anchor's req/s on a plain known-user request at c=32; and p50/p99 at c=1;
3. 1000 users in one request: ≥ 0.75× implicit's raw batch recommend; /ping p99 < 50 ms while saturated;
4. memory (PSS) with 1 and 2 workers: the second adds < 50 MB;
5. the sequence-aware model of a generated platform (issue 24): a history of 2, 10 and 50 videos p99 ≤ 5 ms and
   up next p99 ≤ 3 ms, at c=1; a history of 5 at c=2, 4 and 8 (batching, no target).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
from implicit.cpu.als import AlternatingLeastSquares

from bench.common import PROJECT_ROOT, best_of, cache_dir, children, free_port, in_turn, report
from bench.synthetic import ids, random_model
from features.build_features import build_features
from features.catalogue import validate_catalogue
from features.events import validate_events
from features.sample_events import generate_platform
from vrmodels.model.artifacts import FORMAT_VERSION, load_model_dir, write_model_dir
from vrmodels.model.threads import limit_blas_threads
from vrmodels.model.topn import DEFAULT_TOPN
from vrmodels.training.model_dir import to_artifacts
from vrmodels.training.options import TrainingOptions
from vrmodels.training.trainer import train

USERS, VIDEOS, FACTORS, WATCHED_PER_USER = 100_000, 20_000, 64, 30


def generated_model() -> Path:
    directory = cache_dir() / f"model-{USERS}x{VIDEOS}x{FACTORS}-top{DEFAULT_TOPN}-format{FORMAT_VERSION}"
    if not directory.exists():
        print("generating the benchmark model (cached in bench/.cache) ...", flush=True)
        random_model(directory, USERS, VIDEOS, FACTORS, watched=WATCHED_PER_USER, topn=DEFAULT_TOPN)
    return directory


class Server:
    """`serve.py`, or the tutorial's app, on a free local port; `env` adds or overrides variables; `root` is the
    checkout whose serve.py runs (another commit's, to compare)."""

    def __init__(
        self,
        model_dir: Path,
        workers: int = 1,
        tutorial: bool = False,
        env: dict[str, str] | None = None,
        root: Path = PROJECT_ROOT,
        log: Path | None = None,
    ):
        """`log`: where its stdout goes (default: nowhere)."""
        self.port = free_port()
        environment = {
            **os.environ,
            "VR_MODEL_DIR": str(model_dir),
            "VR_OPT_ML": tempfile.mkdtemp(),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
            **(env or {}),
        }
        command = [sys.executable, "-m", "bench.tutorial_app"] if tutorial else [sys.executable, "serve.py"]
        started = time.monotonic()
        stdout = log.open("wb") if log else subprocess.DEVNULL
        self.process = subprocess.Popen(command, cwd=root, env=environment, stdout=stdout, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        while time.monotonic() < started + 180:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("server did not become ready")
        self.ready_seconds = time.monotonic() - started
        """From start to the first /ping 200."""
        time.sleep(1.0)  # let every worker finish its warm-up

    def pss_mb(self) -> float:
        return sum(_memory_kb(pid, ("Pss",)) for pid in [self.process.pid, *children(self.process.pid)]) / 1024

    def private_mb(self) -> list[float]:
        """Each worker's private memory (its own pages: neither the model files' page cache nor what it shares
        with the supervisor), which is what another worker costs whichever file pages were touched."""
        return [_memory_kb(pid, ("Private_Clean", "Private_Dirty")) / 1024 for pid in children(self.process.pid)]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


# Lua bodies for wrk: each request picks its own random user/video, in the generator's id format.
U, V = f"u%0{len(ids('u', USERS)[0]) - 1}d", f"v%0{len(ids('v', VIDEOS)[0]) - 1}d"
KNOWN_USER = f'string.format(\'{{"user_id":"{U}","k":10}}\', math.random(0, {USERS - 1}))'
EXACT_PATH = [
    # fold-in of a fresh history for a user the model never saw
    f'string.format(\'{{"user_id":"new-%d","history":["{V}","{V}","{V}","{V}","{V}"],"k":10}}\', '
    f"math.random(1, 1000000), math.random(0, {VIDEOS - 1}), math.random(0, {VIDEOS - 1}), "
    f"math.random(0, {VIDEOS - 1}), math.random(0, {VIDEOS - 1}), math.random(0, {VIDEOS - 1}))",
    # a known user ranking 50 candidates
    f'string.format(\'{{"user_id":"{U}","k":10,"candidates":[%s]}}\', math.random(0, {USERS - 1}), candidates())',
    # a known user, watched videos not filtered
    f'string.format(\'{{"user_id":"{U}","k":10,"exclude_watched":false}}\', math.random(0, {USERS - 1}))',
    # similar videos
    f'string.format(\'{{"video_id":"{V}","k":10}}\', math.random(0, {VIDEOS - 1}))',
]


def _memory_kb(pid: int, fields: tuple[str, ...]) -> int:
    """The sum of these smaps_rollup fields of one process, in kB."""
    total = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in fields:
            total += int(value.split()[0])
    return total


def lua_script(bodies: list[str], path: str = "/invocations", videos: list[str] | None = None) -> str:
    """A wrk script that POSTs JSON to `path`, cycling through `bodies` (Lua expressions), with a fixed seed;
    `video()` in a body picks one of `videos` at random."""
    choices = "\n".join(f"  if n == {i} then return {body} end" for i, body in enumerate(bodies))
    table = ",".join(f'"{video}"' for video in videos or ["none"])
    script = f"""math.randomseed(7)
local counter = 0
local videos = {{{table}}}
function video()
  return videos[math.random(1, #videos)]
end
function candidates()
  local ids = {{}}
  for i = 1, 50 do ids[i] = string.format('"{V}"', math.random(0, {VIDEOS - 1})) end
  return table.concat(ids, ",")
end
function body(n)
{choices}
end
request = function()
  counter = counter + 1
  return wrk.format("POST", "{path}", {{["Content-Type"] = "application/json"}}, body(counter % {len(bodies)}))
end
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    return handle.name


def wrk(url: str, script: str | None, duration: int, connections: int) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if script:
        command[1:1] = ["-s", script]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        raise RuntimeError(f"{non_2xx.group(1)} failed responses:\n{output}")
    return {
        "requests": float(re.search(r"(\d+) requests in", output).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _latency(output, "50%"),
        "p99_ms": _latency(output, "99%"),
    }


def _latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def row(name: str, result: dict[str, float]) -> None:
    print(
        f"  {name:<52} {result['rps']:>9,.0f} req/s   p50 {result['p50_ms']:7.2f} ms   p99 {result['p99_ms']:7.2f} ms"
    )


def model_of(root: Path, maker: str = "generated_model") -> Path:
    """The benchmark model `maker` (generated_model, sequential_model) as `root`'s code writes it (cached there):
    with `root` the older checkout, a format both read. (Before 2026-12-07 sequential_model returned the directory
    and some of its ids.)"""
    code = f"from bench.server import {maker}; made = {maker}(); print(made[0] if isinstance(made, tuple) else made)"
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True)
    return Path(result.stdout.strip().splitlines()[-1])


def history_script(length: int, video_ids: list[str]) -> str:
    """A wrk script asking for a history of `length` random videos, for no user, k=10."""
    slots = ",".join(['"%s"'] * length)
    body = 'string.format(\'{"history":[' + slots + '],"k":10}\', ' + ", ".join(["video()"] * length) + ")"
    return lua_script([body], videos=video_ids)


def sequential_model() -> Path:
    """The sequence-aware model of a generated platform (20,000 users, 5,000 videos, 250 channels, sittings;
    cached)."""
    directory = cache_dir() / f"sequential-20000x5000-format{FORMAT_VERSION}"
    if not directory.exists():
        print("training the sequence-aware benchmark model (cached in bench/.cache) ...", flush=True)
        limit_blas_threads()  # the same model from every checkout and caller: two BLAS threads train another one
        platform = generate_platform(users=20_000, videos=5_000, channels=250, categories=20, seed=2)
        events = validate_events(platform.events, "generated platform")
        features = build_features(events, videos=validate_catalogue(platform.videos, "generated catalogue"))
        write_model_dir(to_artifacts(train(features, options=TrainingOptions(allow_worse=True)).trained), directory)
    return directory


def some_videos(model_dir: Path) -> list[str]:
    """The ids section 5's requests draw from: the model's first 2,000 videos."""
    return load_model_dir(model_dir).videos.all_ids()[:2000]


def alternating(rounds: int, against: Path) -> Iterator[tuple[int, str, Path]]:
    """(round, "other" or "this", checkout root) for `rounds` rounds, which checkout goes first alternating."""
    for round_number in range(rounds):
        for name, root in in_turn(round_number, [("other", against), ("this", PROJECT_ROOT)]):
            yield round_number, name, root


SEQUENCE_REQUESTS = {
    **{f"history of {length}": (length, 1) for length in (2, 10, 50)},
    "up next": ('string.format(\'{"video_id":"%s","k":10}\', video())', 1),
    "up next for a viewer": ('string.format(\'{"video_id":"%s","history":["%s"],"k":10}\', video(), video())', 1),
    **{f"history of 5, c={connections}": (5, connections) for connections in (2, 4, 8)},
}
"""Section 5's requests: a history length (random videos, no user) or a wrk body, and the connections (2-8: where
a lone query's scoring on the event loop must give way to batching)."""


def sequence_latency(
    model_dir: Path, video_ids: list[str], duration: int, root: Path = PROJECT_ROOT, *, rotation: int = 0
) -> dict:
    """Section 5: each of SEQUENCE_REQUESTS against one worker of `root`'s server on the sequence-aware model,
    starting `rotation` kinds into their list (so rounds do not always measure a kind at the same point of a
    server's life); the result keeps SEQUENCE_REQUESTS' order."""
    latency: dict[str, dict[str, float]] = {}
    kinds = list(SEQUENCE_REQUESTS.items())
    start = rotation % len(kinds)
    server = Server(model_dir, root=root)
    try:
        for name, (request, connections) in kinds[start:] + kinds[:start]:
            if isinstance(request, int):
                script = history_script(request, video_ids)
            else:
                script = lua_script([request], videos=video_ids)
            try:
                latency[name] = wrk(f"{server.url}/invocations", script, duration, connections)
            finally:
                os.unlink(script)
    finally:
        server.stop()
    return {name: latency[name] for name in SEQUENCE_REQUESTS}


def report_sequence(latency: dict, label: str = "ours") -> None:
    print("5. sequence-aware model (20k users, 5k videos, ranker, watched-next table), c=1 unless said")
    for name, result in latency.items():
        row(f"{label}, {name}", result)
    for length in (2, 10, 50):
        report(f"5. history of {length}, c=1: p99", latency[f"history of {length}"]["p99_ms"], "ms", "target ≤ 5")
    report("5. up next, c=1: p99", latency["up next"]["p99_ms"], "ms", "target ≤ 3")


def compare_sequence(against: Path, rounds: int, duration: int) -> None:
    """Section 5 for this checkout and another, alternating which goes first, each serving the model it trains (the
    same data; the formats may differ); medians of each request's p50/p99."""
    models = {"this": sequential_model(), "other": model_of(against, "sequential_model")}
    video_ids = some_videos(models["this"])
    runs: dict[str, list[dict]] = {"this": [], "other": []}
    for round_number, name, root in alternating(rounds, against):
        runs[name].append(sequence_latency(models[name], video_ids, duration, root, rotation=round_number))
        print(f"  round {round_number + 1}, {name}: " + ", ".join(
            f"{kind} p99 {result['p99_ms']:.2f} ms" for kind, result in runs[name][-1].items()
        ), flush=True)  # fmt: skip
    print(f"this checkout ({PROJECT_ROOT}) against {against}, {rounds} alternating rounds, medians:")
    for kind in SEQUENCE_REQUESTS:
        for figure in ("p50_ms", "p99_ms"):
            ours, theirs = (float(np.median([run[kind][figure] for run in runs[name]])) for name in ("this", "other"))
            report(f"5. {kind}: {figure[:3]} this / other ({ours:.2f} / {theirs:.2f} ms)", ours / theirs, "×")


def compare(against: Path, rounds: int, duration: int, model_dir: Path, known: str, exact: str) -> None:
    """This checkout against another, alternating which goes first: known user c=8, exact path c=32 and c=1."""
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {"known c=8": [], "exact c=32": [], "exact c=1": []} for name in ("this", "other")
    }
    for round_number, name, root in alternating(rounds, against):
        server = Server(model_dir, root=root)
        try:
            runs[name]["known c=8"].append(wrk(f"{server.url}/invocations", known, duration, 8))
            runs[name]["exact c=32"].append(wrk(f"{server.url}/invocations", exact, duration, 32))
            runs[name]["exact c=1"].append(wrk(f"{server.url}/invocations", exact, duration, 1))
        finally:
            server.stop()
        print(f"  round {round_number + 1}, {name}: " + ", ".join(
            f"{kind} {results[-1]['rps']:,.0f} req/s" for kind, results in runs[name].items()
        ), flush=True)  # fmt: skip
    print(f"this checkout ({PROJECT_ROOT}) against {against}, {rounds} alternating rounds, medians:")
    for kind in runs["this"]:
        ours, theirs = (float(np.median([r["rps"] for r in runs[name][kind]])) for name in ("this", "other"))
        p99s = (float(np.median([r["p99_ms"] for r in runs[name][kind]])) for name in ("this", "other"))
        report(f"{kind}: req/s this / other ({ours:,.0f} / {theirs:,.0f})", ours / theirs, "×")
        report(f"{kind}: p99 this - other", next(p99s) - next(p99s), "ms")


def against_anchor(model_dir: Path, known: str, exact: str, duration: int, rounds: int) -> tuple[dict, dict, dict]:
    """The anchor's runs (known user, c=8 and c=32) and ours (known user c=8; exact path c=1 and c=32), `rounds` of
    each, alternating which goes first; of each kind, the run with the median req/s."""
    kinds = ("anchor 8", "anchor 32", "ours 8", "exact 1", "exact 32")
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}

    def anchor_round() -> None:
        tutorial = Server(model_dir, tutorial=True)
        try:
            for c in (8, 32):
                runs[f"anchor {c}"].append(wrk(f"{tutorial.url}/invocations", known, duration, c))
        finally:
            tutorial.stop()

    def our_round() -> None:
        server = Server(model_dir)
        try:
            runs["ours 8"].append(wrk(f"{server.url}/invocations", known, duration, 8))
            for c in (1, 32):
                runs[f"exact {c}"].append(wrk(f"{server.url}/invocations", exact, duration, c))
        finally:
            server.stop()

    for round_number in range(rounds):
        for action in in_turn(round_number, (anchor_round, our_round)):
            action()
        print(f"  round {round_number + 1}: " + ", ".join(
            f"{kind} {results[-1]['rps']:,.0f} req/s" for kind, results in runs.items()
        ), flush=True)  # fmt: skip
    median = {kind: sorted(results, key=lambda run: run["rps"])[len(results) // 2] for kind, results in runs.items()}
    return (
        {8: median["anchor 8"], 32: median["anchor 32"]},
        median["ours 8"],
        {1: median["exact 1"], 32: median["exact 32"]},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--against", type=Path, help="another checkout (a worktree of an older commit) to compare")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, anchor (or --against) and ours")
    parser.add_argument(
        "--sequence-only", action="store_true", help="section 5 alone (with --against: alternating, as ratios)"
    )
    args = parser.parse_args()
    limit_blas_threads()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; model {USERS} users × {VIDEOS} videos × {FACTORS}")
    known, exact = lua_script([KNOWN_USER]), lua_script(EXACT_PATH)
    duration = args.duration
    if args.sequence_only:
        if args.against:
            compare_sequence(args.against.resolve(), args.rounds, duration)
        else:
            model_dir = sequential_model()
            report_sequence(sequence_latency(model_dir, some_videos(model_dir), duration))
        return
    if args.against:
        against = args.against.resolve()
        compare(against, args.rounds, duration, model_of(against), known, exact)
        return
    model_dir = generated_model()

    anchor, ours_known, ours_exact = against_anchor(model_dir, known, exact, duration, args.rounds)
    server = Server(model_dir)
    try:
        batch_seconds, raw_seconds = one_request_of_1000_users(server.url, model_dir)
        ping = ping_while_saturated(server.url, known, duration)
    finally:
        server.stop()

    print("1. known user, k=10, c=8 (one worker each)")
    row("tutorial app (anchor)", anchor[8])
    row("ours", ours_known)
    report("1. ours / tutorial req/s", ours_known["rps"] / anchor[8]["rps"], "×", "target ≥ 4")
    report("1. ours p99 - tutorial p99", ours_known["p99_ms"] - anchor[8]["p99_ms"], "ms", "target ≤ 0")
    print("2. exact-path requests (fold-in, candidates, exclude_watched false, similar, in turn)")
    row("tutorial app, plain known user, c=32 (anchor)", anchor[32])
    row("ours, exact path, c=32", ours_exact[32])
    row("ours, exact path, c=1", ours_exact[1])
    report("2. ours exact c=32 / tutorial plain c=32", ours_exact[32]["rps"] / anchor[32]["rps"], "×", "target ≥ 2")
    print("3. one request of 1000 users; /ping under load")
    report("3. 1000 users in one request", batch_seconds * 1000, "ms")
    report("3. implicit raw batch recommend, same users", raw_seconds * 1000, "ms")
    report("3. ratio raw / HTTP", raw_seconds / batch_seconds, "×", "target ≥ 0.75")
    report("3. /ping p99 while /invocations is saturated", ping["p99_ms"], "ms", "target < 50")

    sequential_dir = sequential_model()
    latency = sequence_latency(sequential_dir, some_videos(sequential_dir), duration)
    report_sequence(latency)

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
    for script in (known, exact):
        os.unlink(script)


def one_request_of_1000_users(url: str, model_dir: Path) -> tuple[float, float]:
    users = ids("u", USERS)[:: USERS // 1000][:1000]
    batch = orjson.dumps({"instances": [{"user_id": u, "k": 10} for u in users]})
    headers = {"Content-Type": "application/json"}
    with httpx.Client(timeout=60) as client:
        client.post(f"{url}/invocations", content=batch, headers=headers)
        seconds = best_of(
            5, lambda: client.post(f"{url}/invocations", content=batch, headers=headers).raise_for_status()
        )
    model = AlternatingLeastSquares(num_threads=1)
    artifacts = load_model_dir(model_dir)
    model.user_factors, model.item_factors = np.asarray(artifacts.user_factors), np.asarray(artifacts.item_factors)
    indices = np.asarray([int(u[1:]) for u in users])
    user_items = artifacts.user_items[indices]
    raw = best_of(5, lambda: model.recommend(indices, user_items, N=10))
    return seconds, raw


def ping_while_saturated(url: str, script: str, duration: int) -> dict[str, float]:
    load = subprocess.Popen(
        ["wrk", "-t1", "-c32", f"-d{duration + 2}s", "-s", script, f"{url}/invocations"], stdout=subprocess.DEVNULL
    )
    time.sleep(1)
    ping = wrk(f"{url}/ping", None, duration, 2)
    load.wait()
    return ping


if __name__ == "__main__":
    main()
