"""Drift report: live traffic, as SageMaker's data capture recorded it, against the model's training data.

    python -m monitoring.drift --capture DIR_OR_S3_URI --model MODEL_DIR [--out DIR] [thresholds]
    python -m vrmodels.drift ...   (the same)

Reads every capture file under `--capture` (monitoring.capture: the server's own decoder, parser and wire
types) and compares the recommendation requests and answers with what the model was trained on (its
watched-videos matrix: videos per user, and popularity):
- unknown-user rate: requests whose user the model does not know (new users, or ids that changed format);
- how many videos a `history` carries, against how many a training user watched; the k asked for;
- the popularity of requested and recommended videos (share among the training's 1% most popular videos,
  median popularity percentile), against the training interactions;
- the share of answers that are the popular fallback, and of requested videos the model does not know.
Writes drift.json and drift.png (the chart needs matplotlib) into `--out` and exits 1 when a rate exceeds its
threshold, so it can run on a schedule; 2 when nothing under `--capture` can be read. A record that cannot be
read, or a body the server would have refused, is counted (and the first few named by file and line) beside
the rates, never fatal.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitoring.capture import CaptureError, Tally, invocations
from serving.wire import RecommendationsAnswer
from vrmodels.model.artifacts import ModelArtifactError, load_model_dir
from vrmodels.model.popularity import clicks
from vrmodels.model.queries import Query

THRESHOLDS = {  # rate → default ceiling
    "unknown_user_rate": 0.5,
    "fallback_share": 0.5,
    "unknown_video_rate": 0.2,
}
POPULAR_FRACTION = 0.01


@dataclass
class Traffic:
    users: list[str | None] = field(default_factory=list)
    history_lengths: list[int] = field(default_factory=list)
    ks: list[int] = field(default_factory=list)
    requested_videos: list[str] = field(default_factory=list)
    recommended_videos: list[str] = field(default_factory=list)
    answers: int = 0
    fallbacks: int = 0
    invocations: int = 0
    tally: Tally = field(default_factory=Tally)
    """What could not be read: bad records, and bodies the server could not have read either."""

    @property
    def unreadable_payloads(self) -> int:
        return self.tally.unreadable_bodies


def read_capture(location: str) -> Traffic:
    """The recommendation traffic under `location`; CaptureError when nothing there can be read."""
    traffic = Traffic()
    for invocation in invocations(location, traffic.tally):
        traffic.invocations += 1
        for query in invocation.requests:
            if isinstance(query, Query):
                traffic.users.append(query.user_id)
                traffic.history_lengths.append(len(query.history or ()))
                traffic.ks.append(query.k)
                traffic.requested_videos += [watch.video_id for watch in query.history or ()]
                traffic.requested_videos += list(query.candidates or ())
        for answer in invocation.answers:
            if isinstance(answer, RecommendationsAnswer):
                traffic.answers += 1
                traffic.fallbacks += answer.fallback
                traffic.recommended_videos += [item.videoId for item in answer.recommendations]
    if not traffic.invocations:
        examples = "; ".join(traffic.tally.samples)
        raise CaptureError(f"{location}: no readable capture records ({traffic.tally.bad_records} bad: {examples})")
    return traffic


def compare(traffic: Traffic, model_dir: Path) -> dict:
    """The report: live figures next to the training data's, and the rates checked against thresholds."""
    artifacts = load_model_dir(model_dir)
    user_items, videos = artifacts.user_items, artifacts.videos
    watched_per_user = np.diff(user_items.indptr)
    popularity = clicks(user_items)
    percentile = np.empty(len(videos))
    percentile[np.argsort(popularity, kind="stable")] = np.linspace(0, 100, len(videos)) if len(videos) else []
    popular = np.zeros(len(videos), dtype=bool)
    popular[np.argsort(-popularity, kind="stable")[: max(1, int(np.ceil(len(videos) * POPULAR_FRACTION)))]] = True

    def profile(ids: list[str]) -> dict:
        found = [videos.index_of(video) for video in ids]
        indices = np.asarray([index for index in found if index is not None], dtype=int)
        return {
            "videos": len(ids),
            "unknown_share": 1 - len(indices) / len(ids) if ids else 0.0,
            "top_1_percent_share": float(popular[indices].mean()) if len(indices) else 0.0,
            "median_popularity_percentile": float(np.median(percentile[indices])) if len(indices) else None,
            "distinct": len(set(indices.tolist())),
        }

    named = [user for user in traffic.users if user]
    unknown_users = sum(artifacts.users.index_of(user) is None for user in named)
    histories = [length for length in traffic.history_lengths if length]
    requested, recommended = profile(traffic.requested_videos), profile(traffic.recommended_videos)
    rates = {
        "unknown_user_rate": unknown_users / len(named) if named else 0.0,
        "fallback_share": traffic.fallbacks / traffic.answers if traffic.answers else 0.0,
        "unknown_video_rate": requested["unknown_share"],
    }
    return {
        "model_version": artifacts.manifest.model_version,
        "invocations": traffic.invocations,
        "unreadable_payloads": traffic.unreadable_payloads,
        "unread": traffic.tally.to_dict(),
        "recommendation_requests": len(traffic.users),
        "rates": rates,
        "history_length": {"live": _summary(histories), "training_videos_per_user": _summary(watched_per_user)},
        "k": {"live": _summary(traffic.ks)},
        "popularity": {
            "requested": requested,
            "recommended": recommended,
            "training_interactions_top_1_percent_share": float(popular[user_items.indices].mean())
            if user_items.nnz
            else 0.0,
        },
    }


def _summary(values: list[int] | np.ndarray) -> dict:
    values = np.asarray(values, dtype=float)
    if not len(values):
        return {"count": 0}
    return {
        "count": len(values),
        "mean": float(values.mean()),
        "p50": float(np.percentile(values, 50)),
        "p90": float(np.percentile(values, 90)),
        "max": float(values.max()),
    }


def exceeded(report: dict, thresholds: dict[str, float]) -> list[str]:
    return [
        f"{name} {report['rates'][name]:.3f} > {limit:g}"
        for name, limit in thresholds.items()
        if report["rates"][name] > limit
    ]


def plot(report: dict, traffic: Traffic, thresholds: dict[str, float], *, path: Path) -> bool:
    """drift.png; False when matplotlib is not installed (offline extra, requirements-offline.txt)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    figure = Figure(figsize=(12, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    rates_axis, k_axis, history_axis = figure.subplots(1, 3)
    names = list(thresholds)
    rates_axis.bar(names, [report["rates"][name] for name in names], color="tab:blue", label="live")
    rates_axis.scatter(
        names, [thresholds[name] for name in names], color="tab:red", marker="_", s=400, label="threshold"
    )
    rates_axis.set_title("rates")
    rates_axis.tick_params(axis="x", labelrotation=15, labelsize=7)
    rates_axis.legend()
    k_axis.hist(traffic.ks or [0], bins=20)
    k_axis.set_title("k asked for")
    history_axis.hist([length for length in traffic.history_lengths if length] or [0], bins=20)
    history_axis.set_title("history length (live)")
    figure.suptitle(f"drift of {report['model_version']}: {report['invocations']} invocations", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--capture", required=True, help="a folder or file of capture JSON Lines, or s3://bucket/prefix"
    )
    parser.add_argument("--model", type=Path, required=True, help="the model directory the endpoint serves")
    parser.add_argument("--out", type=Path, default=Path("drift"), help="where drift.json and drift.png go (drift/)")
    for name, default in THRESHOLDS.items():
        parser.add_argument(f"--max-{name.replace('_', '-')}", type=float, default=default, dest=name)
    args = parser.parse_args(argv)
    thresholds = {name: getattr(args, name) for name in THRESHOLDS}
    try:
        traffic = read_capture(args.capture)
        report = compare(traffic, args.model)
    except (CaptureError, ModelArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    alarms = exceeded(report, thresholds)
    report["thresholds"], report["exceeded"] = thresholds, alarms
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "drift.json").write_text(json.dumps(report, indent=2))
    charted = plot(report, traffic, thresholds, path=args.out / "drift.png")
    print(json.dumps({"rates": report["rates"], "exceeded": alarms}))
    print(
        f"report: {args.out / 'drift.json'}"
        + (f", chart: {args.out / 'drift.png'}" if charted else " (no matplotlib: no chart)")
    )
    return 1 if alarms else 0


if __name__ == "__main__":
    sys.exit(main())
