"""Which variant viewers prefer: served lists from data capture joined with the watch events that followed.

    python -m monitoring.attribution --capture capture/vr/ --events watches.csv --control AllTraffic \\
        [--window-hours 24] [--videos videos.csv] [--out attribution/]

A served video is *taken* when its viewer watched it within the window after the list was served: by the
list's `recommendation_id` when the event carries it (the platform sent the id back), else by the same user and
video, credited to the latest list that showed it before the watch (last touch). Per variant: lists served,
users reached, take rate (lists with a take), satisfying take rate (a take that completed ≥ 80% of the video or
came with a complete/like/share event, as training judges), watch minutes per 1,000 lists, take rate by
position, catalogue coverage and the share of fresh uploads (with --videos). Intervals are 95% bootstrap
intervals over users (Poisson weights; a user is one cluster whichever variants served them, so a viewer's
correlated lists never pass for independent evidence). Each other variant gets a verdict against the control on
the take rate: better or worse when the interval of the relative difference excludes 0 at --significance (0.04,
two-sided), else undecided, with the smallest relative difference this sample could detect (80% power).

Writes attribution.json, and attribution.html with its PNG charts (they need matplotlib), into --out. Exit
status: 0 when every other variant is better, 1 when one is worse, 2 undecided, 3 bad input (the message names
the file, and the row and column for events); unreadable capture records are counted and named, never fatal.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from features.catalogue import read_catalogue
from features.columns import DataFileError
from features.events import RECOMMENDATION_ID, read_events
from monitoring.attribution_report import write_html
from monitoring.capture import CaptureError
from monitoring.served import Served, served_lists
from vrmodels.training.relevance import DEFAULT_MIN_COMPLETION, SATISFYING_EVENTS

BETTER, WORSE, UNDECIDED = "better", "worse", "undecided"
EXIT = {BETTER: 0, WORSE: 1, UNDECIDED: 2}
BAD_INPUT = 3
RATES = ("take_rate", "satisfying_take_rate", "minutes_per_1000_lists")
ARROW_TEXT = "string[pyarrow]"
INTERVAL_LEVEL = 0.95  # the rates' intervals, whatever the verdict's significance


@dataclass(frozen=True)
class Options:
    control: str
    window_hours: float = 24.0
    # 0.04, not 0.05: the bootstrap is calibrated (an A/A is decided 5.4% ± 0.7% of 1,000 simulated times at 0.05,
    # as the delta method's test is), so at 0.05 "an A/A stays undecided in ≥ 95% of runs" would hold only half
    # the time; 0.04 holds it with margin, for about 3% more detectable difference.
    significance: float = 0.04
    power: float = 0.8
    replicates: int = 1000
    fresh_days: float = 7.0
    seed: int = 0


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Verdict:
    variant: str
    verdict: str
    relative_difference: Interval
    """candidate take rate / control take rate − 1, with its interval."""
    p_value: float
    """two-sided, from the bootstrap distribution of the difference"""
    detectable_relative_difference: float
    """the smallest relative difference this sample detects at the significance with the power asked"""


@dataclass(frozen=True)
class Outcomes:
    """Per list: taken, taken satisfyingly, minutes watched; per item: taken (for the position rates) and its
    video's code (distinct across the served items and the events, 0 to `videos` - 1: for the coverage)."""

    taken: np.ndarray
    satisfying: np.ndarray
    minutes: np.ndarray
    item_taken: np.ndarray
    matched_by_id: int
    matched_by_user: int
    item_video: np.ndarray
    videos: int


def attribute(served: Served, events: pd.DataFrame, window_hours: float) -> Outcomes:
    """Join served items with the events that followed them (by recommendation id, else last touch by user and
    video) within the window. Ids become integer codes first: a million lists hold ten million items, and only
    those whose viewer and video (or list and video) appear among the events are joined."""
    window = window_hours * 3600
    lists, items = served.lists, served.items
    events = events.reset_index(drop=True)
    item_list = items["list"].to_numpy()
    videos = _codes(items["video"], events["video_id"])
    users = _codes(lists["user"], events["user_id"])
    ids = _codes(lists["recommendation_id"], events.get(RECOMMENDATION_ID, pd.Series(None, index=events.index)))
    width = int(max(videos.served.max(initial=-1), videos.events.max(initial=-1))) + 1
    served_time = lists["time"].to_numpy()
    event_time = events["timestamp"].to_numpy(dtype=np.float64)
    with_id = ids.events >= 0

    def joined(list_code: np.ndarray, event_code: np.ndarray, chosen: np.ndarray, by_id: bool) -> pd.DataFrame:
        item_key = np.where(list_code[item_list] >= 0, list_code[item_list] * width + videos.served, -1)
        event_key = np.where(chosen & (event_code >= 0), event_code * width + videos.events, -2)
        near = np.flatnonzero(pd.Series(item_key).isin(event_key[event_key >= 0]).to_numpy())  # hashed: np.isin sorts
        left = pd.DataFrame({"key": item_key[near], "item": near})
        right = pd.DataFrame({"key": event_key[chosen], "event": np.flatnonzero(chosen)})
        pairs = left.merge(right, on="key")
        item, event = pairs["item"].to_numpy(), pairs["event"].to_numpy()
        delay = event_time[event] - served_time[item_list[item]]
        keep = (delay >= 0) & (delay <= window)
        if by_id:
            keep |= np.isnan(delay)  # a list captured without its time still owns the watches naming its id
        return pd.DataFrame({"item": item[keep], "event": event[keep], "time": served_time[item_list[item[keep]]]})

    by_id = joined(ids.served, ids.events, with_id, by_id=True)
    by_user = joined(users.served, users.events, ~with_id, by_id=False).sort_values(["event", "time"], kind="stable")
    by_user = by_user.drop_duplicates("event", keep="last")  # last touch: the latest list before the watch
    matched = pd.concat([by_id, by_user], ignore_index=True)
    item, event = matched["item"].to_numpy(), matched["event"].to_numpy()
    rows = item_list[item]
    satisfying = _satisfying(events)[event]
    seconds = events["watch_seconds"].fillna(0).to_numpy()[event] if "watch_seconds" in events else np.zeros(len(event))
    taken = np.zeros(len(lists), dtype=bool)
    taken[rows] = True
    satisfied = np.zeros(len(lists), dtype=bool)
    satisfied[rows[satisfying]] = True
    minutes = np.bincount(rows, weights=seconds / 60, minlength=len(lists))
    item_taken = np.zeros(len(items), dtype=bool)
    item_taken[item] = True
    return Outcomes(taken, satisfied, minutes, item_taken, len(by_id), len(by_user), videos.served, width)


@dataclass(frozen=True)
class _Coded:
    served: np.ndarray
    events: np.ndarray


def _codes(served: pd.Series, events: pd.Series) -> _Coded:
    """One integer code per distinct id across both sides (-1 for a missing one). As Arrow strings: its hashing
    takes about two thirds of the time pandas takes over ten million Python strings."""
    both = pd.concat([served.astype(ARROW_TEXT), events.astype(ARROW_TEXT)], ignore_index=True)
    codes, _ = pd.factorize(both, use_na_sentinel=True)
    return _Coded(codes[: len(served)], codes[len(served) :])


def _satisfying(events: pd.DataFrame) -> np.ndarray:
    """Training's definition of a satisfying watch (vrmodels.training.relevance), per event."""
    result = np.zeros(len(events), dtype=bool)
    if "event" in events:
        result |= events["event"].isin(SATISFYING_EVENTS).to_numpy()
    if "watch_seconds" in events and "video_duration" in events:
        with np.errstate(invalid="ignore", divide="ignore"):
            completion = (events["watch_seconds"] / events["video_duration"]).to_numpy(dtype=np.float64)
        result |= completion >= DEFAULT_MIN_COMPLETION
    return result


def cluster_sums(lists: pd.DataFrame, outcomes: Outcomes, variants: list[str]) -> dict[str, np.ndarray]:
    """Per user (rows) and variant (columns): lists, takes, satisfying takes, minutes. A list served to nobody
    named is a cluster of its own."""
    users = lists["user"].where(lists["user"].notna(), "\0list " + lists.index.astype(str))
    cluster, _ = pd.factorize(users)
    column = pd.Categorical(lists["variant"], categories=variants).codes
    shape = (int(cluster.max()) + 1 if len(cluster) else 0, len(variants))
    sums = {}
    for name, values in (
        ("lists", np.ones(len(lists))),
        ("takes", outcomes.taken),
        ("satisfying", outcomes.satisfying),
        ("minutes", outcomes.minutes),
    ):
        table = np.zeros(shape)
        np.add.at(table, (cluster, column), values)
        sums[name] = table
    return sums


def bootstrap_rates(sums: dict[str, np.ndarray], replicates: int, seed: int) -> dict[str, np.ndarray]:
    """Each rate per variant under `replicates` Poisson-weighted resamplings of the users: replicates × variants."""
    rng = np.random.default_rng(seed)
    clusters = sums["lists"].shape[0]
    totals = {name: values.astype(np.float32) for name, values in sums.items()}
    out: dict[str, list[np.ndarray]] = {name: [] for name in RATES}
    table = _poisson_table()
    chunk = max(1, 20_000_000 // max(clusters, 1))
    for start in range(0, replicates, chunk):
        weights = poisson_weights(rng, (min(chunk, replicates - start), clusters), table)
        lists = weights @ totals["lists"]
        with np.errstate(invalid="ignore", divide="ignore"):
            out["take_rate"].append(weights @ totals["takes"] / lists)
            out["satisfying_take_rate"].append(weights @ totals["satisfying"] / lists)
            out["minutes_per_1000_lists"].append(1000 * (weights @ totals["minutes"]) / lists)
    return {name: np.vstack(parts) for name, parts in out.items()}


def _poisson_table() -> np.ndarray:
    """Poisson(1) as 65,536 equally likely values: a random 16-bit number picks one."""
    cdf = np.cumsum([math.exp(-1.0) / math.factorial(n) for n in range(16)])
    return np.searchsorted(cdf, (np.arange(65_536) + 0.5) / 65_536, side="right").astype(np.float32)


def poisson_weights(rng: np.random.Generator, shape: tuple[int, int], table: np.ndarray) -> np.ndarray:
    """Poisson(1) draws (to 1/65,536 of each probability) from random bytes through `table`: a tenth of the cost
    of Generator.poisson for the hundreds of millions a large bootstrap needs."""
    return table[np.frombuffer(rng.bytes(2 * shape[0] * shape[1]), dtype=np.uint16).reshape(shape)]


def judge(
    sums: dict[str, np.ndarray], variants: list[str], options: Options
) -> tuple[dict[str, dict[str, Interval]], list[Verdict]]:
    """Each variant's rates with intervals, and each other variant's verdict against the control."""
    samples = bootstrap_rates(sums, options.replicates, options.seed)
    lists = sums["lists"].sum(axis=0)
    point = {
        "take_rate": sums["takes"].sum(axis=0) / lists,
        "satisfying_take_rate": sums["satisfying"].sum(axis=0) / lists,
        "minutes_per_1000_lists": 1000 * sums["minutes"].sum(axis=0) / lists,
    }
    rate_tail = 100 * (1 - INTERVAL_LEVEL) / 2
    rates = {
        variant: {
            name: Interval(
                float(point[name][column]),
                *(float(v) for v in np.nanpercentile(samples[name][:, column], [rate_tail, 100 - rate_tail])),
            )
            for name in RATES
        }
        for column, variant in enumerate(variants)
    }
    control = variants.index(options.control)
    tail = 100 * options.significance / 2
    z = NormalDist().inv_cdf(1 - options.significance / 2) + NormalDist().inv_cdf(options.power)
    verdicts = []
    for column, variant in enumerate(variants):
        if column == control:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = samples["take_rate"][:, column] / samples["take_rate"][:, control] - 1
        relative = relative[np.isfinite(relative)]
        low, high = np.percentile(relative, [tail, 100 - tail]) if len(relative) else (np.nan, np.nan)
        verdict = BETTER if low > 0 else WORSE if high < 0 else UNDECIDED
        p_value = min(1.0, 2 * min(np.mean(relative <= 0), np.mean(relative >= 0))) if len(relative) else 1.0
        with np.errstate(invalid="ignore", divide="ignore"):  # no take in the control: no relative difference
            value = point["take_rate"][column] / point["take_rate"][control] - 1
        verdicts.append(
            Verdict(
                variant,
                verdict,
                Interval(float(value), float(low), float(high)),
                float(p_value),
                float(z * np.std(relative)) if len(relative) else float("nan"),
            )
        )
    return rates, verdicts


def summarize(served: Served, events: pd.DataFrame, options: Options, catalogue: pd.DataFrame | None) -> dict:
    lists, items = served.lists, served.items
    variants = sorted(lists["variant"].unique())
    if options.control not in variants:
        raise ValueError(f"--control {options.control!r}: no lists served by it; the capture holds {variants}")
    outcomes = attribute(served, events, options.window_hours)
    sums = cluster_sums(lists, outcomes, variants)
    rates, verdicts = judge(sums, variants, options)
    item_variant = lists["variant"].to_numpy()[items["list"].to_numpy()]
    # Counted on the join's integer codes: sets of ten million id strings took a quarter of the run.
    known_videos = outcomes.videos if catalogue is None else catalogue["video_id"].nunique()
    fresh = _fresh(served, catalogue, options.fresh_days)
    per_variant = {}
    for column, variant in enumerate(variants):
        mine = item_variant == variant
        positions = items.loc[mine, "position"].to_numpy()
        by_position = np.bincount(positions, weights=outcomes.item_taken[mine]) / np.maximum(np.bincount(positions), 1)
        per_variant[variant] = {
            "lists": int(sums["lists"][:, column].sum()),
            "users": int((sums["lists"][:, column] > 0).sum()),
            **{name: asdict(interval) for name, interval in rates[variant].items()},
            "take_rate_by_position": [round(float(rate), 6) for rate in by_position[1:]],
            "catalogue_coverage": _distinct(outcomes.item_video[mine], outcomes.videos) / max(known_videos, 1),
            "fresh_share": None if fresh is None else float(fresh[mine].mean()) if mine.any() else None,
        }
    return {
        "control": options.control,
        "options": asdict(options),
        "variants": per_variant,
        "verdicts": {verdict.variant: asdict(verdict) for verdict in verdicts},
        "events": {
            "read": len(events),
            "matched_by_recommendation_id": outcomes.matched_by_id,
            "matched_by_user_and_video": outcomes.matched_by_user,
        },
        "capture": served.tally.to_dict(),
        "lists_without_time": int(lists["time"].isna().sum()),
    }


def _distinct(codes: np.ndarray, count: int) -> int:
    return int(np.count_nonzero(np.bincount(codes[codes >= 0], minlength=count)))


def _fresh(served: Served, catalogue: pd.DataFrame | None, days: float) -> np.ndarray | None:
    """Per item: whether the video was published within `days` before the list was served (needs published_at)."""
    if catalogue is None or "published_at" not in catalogue or catalogue["published_at"].isna().all():
        return None
    published = served.items["video"].map(catalogue.set_index("video_id")["published_at"]).to_numpy(np.float64)
    time = served.lists["time"].to_numpy()[served.items["list"].to_numpy()]
    with np.errstate(invalid="ignore"):
        return (time - published >= 0) & (time - published <= days * 86400)


def _finite(value: object) -> object:
    """The summary with null where a figure is not a number (no lists, no take in the control): strict JSON."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def exit_status(verdicts: dict[str, dict]) -> int:
    found = {verdict["verdict"] for verdict in verdicts.values()}
    if WORSE in found:
        return EXIT[WORSE]
    return EXIT[BETTER] if found == {BETTER} else EXIT[UNDECIDED]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", required=True, help="data capture: a folder, a file or s3://bucket/prefix")
    parser.add_argument("--events", required=True, type=Path, help="watch events (CSV, CSV.gz or Parquet)")
    parser.add_argument("--control", required=True, help="the production variant the others are judged against")
    parser.add_argument("--window-hours", type=float, default=Options.window_hours)
    parser.add_argument("--significance", type=float, default=Options.significance)
    parser.add_argument("--replicates", type=int, default=Options.replicates, help="bootstrap resamplings")
    parser.add_argument("--videos", type=Path, help="the catalogue: coverage of it, and the share of fresh uploads")
    parser.add_argument("--fresh-days", type=float, default=Options.fresh_days)
    parser.add_argument("--out", type=Path, default=Path("attribution"))
    args = parser.parse_args(argv)
    options = Options(
        args.control,
        window_hours=args.window_hours,
        significance=args.significance,
        replicates=args.replicates,
        fresh_days=args.fresh_days,
    )
    try:
        served = served_lists(args.capture)
        events = read_events(args.events)
        catalogue = read_catalogue(args.videos) if args.videos else None
        if served.lists.empty:
            raise CaptureError(f"{args.capture}: no list could be read ({served.tally.to_dict()})")
        summary = summarize(served, events, options, catalogue)
    except (CaptureError, DataFileError, ValueError) as error:
        print(f"attribution: {error}", file=sys.stderr)
        return BAD_INPUT
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "attribution.json").write_text(json.dumps(_finite(summary), indent=2) + "\n")
    written = write_html(summary, args.out)
    print(json.dumps({"verdicts": summary["verdicts"], "written": [str(path) for path in written]}, indent=2))
    return exit_status(summary["verdicts"])


if __name__ == "__main__":
    sys.exit(main())
