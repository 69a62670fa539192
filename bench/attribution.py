"""Attribution on a simulated platform whose truth is known (issue 25).

    python -m bench.attribution [--lists 1000000] [--events 5000000] [--seeds 200] [--users 50000]

1. speed: `monitoring.attribution` on 1M served lists (k=10, captured as SageMaker writes them, JSON Lines
   batches) and 5M watch events: under 60 s;
2. power: two variants of `--users` users each, the candidate's take rate truly 10% higher: the verdict is
   "better" in ≥ 90% of seeds;
3. calibration: an A/A (the same truth for both): "undecided" in ≥ 95% of seeds.

Sections 2 and 3 draw each viewer's lists and takes (what attribution sums per viewer after the join, which
section 1 and tests/test_attribution.py exercise) and judge them with attribution.judge.

The simulated viewers differ in how readily they take a recommendation (a Beta-distributed propensity), and
each sees several lists, so their lists are correlated as real viewers' are.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from bench.common import report
from monitoring import attribution
from sagemaker_local.runtime import Capture

START = datetime(2026, 12, 1, tzinfo=UTC)
K = 10
LISTS_PER_RECORD = 50  # served lists per captured invocation (a JSON Lines batch)
VIDEOS = 20_000


def viewers(
    rng: np.random.Generator, count: int, lists_per_user: float, base_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each viewer's propensity to take a recommendation (Beta, mean `base_rate`: viewers differ) and how many
    lists they are served (1 + Poisson)."""
    propensity = rng.beta(2.0, 2.0 / base_rate - 2.0, size=count)
    return propensity, rng.poisson(lists_per_user - 1, size=count) + 1


def simulate(
    directory: Path,
    *,
    lifts: dict[str, float],
    users: int,
    lists_per_user: float = 4.0,
    base_rate: float = 0.2,
    seed: int = 0,
    id_share: float = 0.5,
    noise_events: int = 0,
) -> dict[str, dict[str, int]]:
    """Capture files under `directory`/capture and events in `directory`/events.parquet for variants whose take
    rate is `lift` × the viewer's propensity; each user is served by one variant, the lists drawn at random over a
    day. Returns the truth: per variant, lists and lists taken."""
    rng = np.random.default_rng(seed)
    names = list(lifts)
    propensity, counts = viewers(rng, users * len(names), lists_per_user, base_rate)
    owner = np.repeat(np.arange(len(propensity)), counts)
    variant = owner // users
    served_at = rng.uniform(0, 86_400, size=len(owner))
    lift = np.asarray([lifts[name] for name in names])[variant]
    taken = rng.random(len(owner)) < np.minimum(propensity[owner] * lift, 1.0)
    videos = rng.integers(0, VIDEOS, size=(len(owner), K))
    position = np.minimum(rng.geometric(0.35, size=len(owner)), K) - 1
    list_ids = [f"{value:024x}" for value in rng.integers(0, 2**62, size=len(owner))]
    capture = Capture(directory / "capture")
    order = np.argsort(served_at, kind="stable")
    for start in range(0, len(order), LISTS_PER_RECORD):
        rows = order[start : start + LISTS_PER_RECORD]
        for name_index, name in enumerate(names):
            mine = rows[variant[rows] == name_index]
            if not len(mine):
                continue
            requests = b"\n".join(orjson.dumps({"user_id": f"u{owner[row]:07d}", "k": K}) for row in mine)
            answers = b"\n".join(
                orjson.dumps(
                    {
                        "userId": f"u{owner[row]:07d}",
                        "recommendations": [{"videoId": f"v{video:05d}", "score": 0.5} for video in videos[row]],
                        "recommendationId": list_ids[row],
                    }
                )
                for row in mine
            )
            capture.write(
                "vr",
                name,
                ("application/jsonlines", requests),
                ("application/jsonlines", answers),
                now=datetime.fromtimestamp(START.timestamp() + served_at[mine[0]], UTC),
            )
    hits = np.flatnonzero(taken)
    delay = rng.uniform(60, 3600 * 6, size=len(hits))
    satisfied = rng.random(len(hits)) < 0.6
    events = pd.DataFrame(
        {
            "user_id": [f"u{owner[row]:07d}" for row in hits],
            "video_id": [f"v{videos[row, position[row]]:05d}" for row in hits],
            "timestamp": (START.timestamp() + served_at[hits] + delay).astype(np.int64) + 1,
            "watch_seconds": np.where(satisfied, 570.0, 60.0),
            "video_duration": 600.0,
            "recommendation_id": [list_ids[row] if rng.random() < id_share else None for row in hits],
        }
    )
    if noise_events:
        noise = pd.DataFrame(
            {
                "user_id": [f"u{user:07d}" for user in rng.integers(0, len(propensity), size=noise_events)],
                "video_id": [f"v{video:05d}" for video in rng.integers(0, VIDEOS, size=noise_events)],
                "timestamp": (START.timestamp() + rng.uniform(0, 3 * 86_400, size=noise_events)).astype(np.int64),
                "watch_seconds": 300.0,
                "video_duration": 600.0,
                "recommendation_id": None,
            }
        )
        events = pd.concat([events, noise], ignore_index=True)
    events.to_parquet(directory / "events.parquet")
    return {
        name: {"lists": int((variant == index).sum()), "taken": int(taken[variant == index].sum())}
        for index, name in enumerate(names)
    }


def verdicts(lifts: dict[str, float], users: int, seeds: int, replicates: int) -> list[str]:
    """The candidate's verdict against the control for each seed: the platform of `simulate`, drawn as each
    viewer's lists and takes (what attribution sums per viewer after the join), judged by attribution.judge."""
    found = []
    names = list(lifts)
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        propensity, counts = viewers(rng, users * len(names), lists_per_user=4.0, base_rate=0.2)
        variant = np.arange(len(propensity)) // users
        lift = np.asarray([lifts[name] for name in names])[variant]
        takes = rng.binomial(counts, np.minimum(propensity * lift, 1.0))
        sums = {name: np.zeros((len(propensity), len(names))) for name in ("lists", "takes", "satisfying", "minutes")}
        sums["lists"][np.arange(len(propensity)), variant] = counts
        sums["takes"][np.arange(len(propensity)), variant] = takes
        options = attribution.Options(names[0], replicates=replicates, seed=seed + 1_000_000)
        _, judged = attribution.judge(sums, names, options)
        found.append(judged[0].verdict)
    return found


def speed(lists: int, events: int) -> None:
    with tempfile.TemporaryDirectory(prefix="vr-bench-attribution-") as folder:
        users = lists // 4
        started = time.perf_counter()
        simulate(
            Path(folder), lifts={"control": 1.0, "candidate": 1.1}, users=users // 2, noise_events=events
        )  # the takes add about a fifth of the lists as events
        made = time.perf_counter() - started
        out = Path(folder) / "out"
        started = time.perf_counter()
        status = attribution.main(
            [
                "--capture", str(Path(folder) / "capture"), "--events", str(Path(folder) / "events.parquet"),
                "--control", "control", "--out", str(out),
            ]
        )  # fmt: skip
        took = time.perf_counter() - started
        summary = orjson.loads((out / "attribution.json").read_bytes())
    served = sum(figures["lists"] for figures in summary["variants"].values())
    print(f"1. {served:,} lists served, {summary['events']['read']:,} events (simulated in {made:.0f} s)")
    report("1. python -m monitoring.attribution (read, join, bootstrap, write)", took, "s", "target < 60")
    print(f"   exit status {status}; verdict {summary['verdicts']['candidate']['verdict']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lists", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=5_000_000, help="watch events beside those of the takes")
    parser.add_argument("--users", type=int, default=50_000, help="users per variant in sections 2 and 3")
    parser.add_argument("--seeds", type=int, default=200, help="simulations in sections 2 and 3 (0 skips them)")
    parser.add_argument("--replicates", type=int, default=attribution.Options.replicates, help="bootstrap resamplings")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores", flush=True)
    speed(args.lists, args.events)
    if args.seeds < 1:
        return
    better = verdicts({"control": 1.0, "candidate": 1.1}, args.users, args.seeds, args.replicates)
    report("2. a true +10% take rate judged better", better.count("better") / len(better), "share", "target ≥ 0.9")
    same = verdicts({"control": 1.0, "candidate": 1.0}, args.users, args.seeds, args.replicates)
    report("3. an A/A judged undecided", same.count("undecided") / len(same), "share", "target ≥ 0.95")


if __name__ == "__main__":
    main()
