"""Offline speed benchmarks: feature throughput, training overhead over bare implicit, and what the second
stage costs.

    python -m bench.offline [--skip-ranker] [--rounds 3]
    python -m bench.offline --against ../base [--rounds 3]   (the default training of this checkout and another)

On a generated platform log of 5M events (270k users, 20k videos, 500 channels; bench/.cache). Targets:
features ≥ 1M events/s, without and with the catalogue; our ALS fit ≤ 1.15× bare implicit on the same matrix;
the whole two-stage training (time split, three ALS fits, two rankers, two-stage lists for every user) adds at
most 1× the time of the ALS-only training (per-user split, ALS lists), both measured here on the same log with
their model's content assembled. With `--against`, the default training (features with the catalogue, then
`vrmodels.train_model`, as users run them) of this checkout and of another, alternating, on the same log: the
sequence-aware training at most 1.3× the two-stage one. Model quality lives in `bench.quality`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from implicit.cpu.als import AlternatingLeastSquares

from bench.common import PROJECT_ROOT, best_of, cache_dir, in_turn, report
from features.build_features import build_features, build_features_from_file
from features.catalogue import read_catalogue
from features.events import read_events
from features.feature_set import FeatureSet
from features.sample_events import generate_platform
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training.als import TrainParams, fit_als
from vrmodels.training.model_dir import to_artifacts
from vrmodels.training.options import TrainingOptions
from vrmodels.training.trainer import train

EVENTS = 5_000_000


def platform_log() -> tuple[str, str]:
    """The 5M-event log and its catalogue, generated once (cached in bench/.cache)."""
    events, videos = cache_dir() / "platform-events-5m.csv", cache_dir() / "platform-videos-5m.csv"
    if not events.exists():
        print("generating the 5M-event platform log (cached in bench/.cache) ...", flush=True)
        platform = generate_platform(users=270_000, videos=20_000, channels=500, categories=20, seed=1)
        platform.events.head(EVENTS).to_csv(events, index=False)
        platform.videos.to_csv(videos, index=False)
    return str(events), str(videos)


def feature_throughput(events: str, videos: str) -> FeatureSet:
    """Events read, validated and aggregated, without and with the catalogue (best of 3 each)."""
    features: list[FeatureSet] = []
    for label, catalogue in (("", None), (" with its catalogue", videos)):
        seconds = best_of(
            3, lambda with_videos=catalogue: features.append(build_features_from_file(events, videos=with_videos))
        )
        count = features[-1].report["input_events"]
        report(f"features{label}: events", count, "events")
        report(f"features{label}: wall time (best of 3)", seconds, "s")
        report(f"features{label}: throughput", count / seconds / 1e6, "M ev/s", "target ≥ 1.0")
    return features[0]


def training_overhead(features: FeatureSet) -> None:
    params = TrainParams()
    matrix = features.to_csr()
    print(f"training matrix: {matrix.shape[0]} users × {matrix.shape[1]} videos, {matrix.nnz} pairs", flush=True)

    def bare() -> None:
        AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            alpha=params.alpha,
            iterations=params.iterations,
            random_state=params.seed,
        ).fit(matrix, show_progress=False)

    bare_seconds = best_of(3, bare)
    ours_seconds = best_of(3, lambda: fit_als(features.to_csr(), params))
    report("training: bare implicit fit", bare_seconds, "s")
    report("training: our fit (matrix build + fit)", ours_seconds, "s")
    report("training: ratio ours / bare", ours_seconds / bare_seconds, "×", "target ≤ 1.15")


def second_stage_cost(events: str, videos: str, rounds: int) -> None:
    """The ALS-only training (no catalogue, per-user split) against the two-stage one, each with its model's
    content assembled (its top-N lists for every user), on the same log: `rounds` pairs, back to back; the
    median of the pairs' ratios."""
    plain = build_features(read_events(events), source=events)
    with_catalogue = build_features(read_events(events), source=events, videos=read_catalogue(videos))
    als_only, two_stage, results = [], [], []

    def timed(features: FeatureSet, into: list[float]) -> None:
        started = time.perf_counter()
        result = train(features, options=TrainingOptions(allow_worse=True))
        to_artifacts(result.trained)
        into.append(time.perf_counter() - started)
        results.append(result)

    for round_number in range(rounds):
        timed(plain, als_only)
        timed(with_catalogue, two_stage)
        print(f"round {round_number + 1}: ALS only {als_only[-1]:.1f} s, two stages {two_stage[-1]:.1f} s", flush=True)
    als_seconds, two_stage_seconds = statistics.median(als_only), statistics.median(two_stage)
    report("training: ALS only, per-user split, lists assembled (median)", als_seconds, "s")
    report("training: two stages, time split, lists assembled (median)", two_stage_seconds, "s")
    # Each round's pair runs back to back, so the machine's drift between rounds cancels within a pair.
    added = [(two - als) / als for als, two in zip(als_only, two_stage)]
    print("what the second stage adds, per round: " + ", ".join(f"{ratio:.2f}×" for ratio in added))
    report("training: what the second stage adds (median of rounds)", statistics.median(added), "×", "target ≤ 1")
    report("training: same, from the two medians", (two_stage_seconds - als_seconds) / als_seconds, "×")
    result = results[-1]
    metrics = result.metrics
    print(
        f"quality on this log (NDCG@10, time split): {result.kind} {metrics[result.kind]['ndcg']:.4f}, "
        f"ALS {metrics['als']['ndcg']:.4f}, trending {metrics['trending']['ndcg']:.4f}; "
        f"ranker: {result.trained.manifest.ranker['rounds'] if result.trained.manifest.ranker else 0} rounds"
    )


def against(other: Path, events: str, videos: str, rounds: int) -> None:
    """The default training, by the commands users type, in this checkout and in `other`, alternating which goes
    first, `rounds` times on the same log; the medians and the median of the paired ratios."""
    seconds: dict[str, list[float]] = {"this": [], "other": []}
    work = Path(tempfile.mkdtemp(prefix="bench-offline-"))
    for round_number in range(rounds):
        for name, root in in_turn(round_number, [("this", PROJECT_ROOT), ("other", other)]):
            features, models = work / f"{name}-features", work / f"{name}-models-{round_number}"
            build = [
                sys.executable,
                "-m",
                "features.build_features",
                events,
                "--videos",
                videos,
                "--out",
                str(features),
            ]
            subprocess.run(build, cwd=root, check=True, capture_output=True)
            started = time.perf_counter()
            command = [sys.executable, "-m", "vrmodels.train_model", "--features", str(features)]
            subprocess.run(
                [*command, "--models-root", str(models), "--allow-worse"], cwd=root, check=True, capture_output=True
            )
            seconds[name].append(time.perf_counter() - started)
        print(
            f"round {round_number + 1}: this {seconds['this'][-1]:.1f} s, other {seconds['other'][-1]:.1f} s",
            flush=True,
        )
    report("training, this checkout (median)", statistics.median(seconds["this"]), "s")
    report(f"training, {other} (median)", statistics.median(seconds["other"]), "s")
    ratios = [ours / theirs for ours, theirs in zip(seconds["this"], seconds["other"])]
    report("training: this / other (median of rounds)", statistics.median(ratios), "×", "target ≤ 1.3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-ranker", action="store_true", help="skip the two-stage training comparison")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each training (default 3)")
    parser.add_argument("--against", type=Path, help="another checkout: compare the default training's wall time")
    args = parser.parse_args()
    limit_blas_threads()
    print(f"cores: {os.cpu_count()}", flush=True)
    events, videos = platform_log()
    if args.against:
        against(args.against.resolve(), events, videos, args.rounds)
        return
    features = feature_throughput(events, videos)
    training_overhead(features)
    if not args.skip_ranker:
        second_stage_cost(events, videos, args.rounds)


if __name__ == "__main__":
    main()
