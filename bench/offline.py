"""Offline speed benchmarks: feature throughput and training overhead over bare implicit.

    python -m bench.offline

Targets (issue 2): features ≥ 1M events/s on 5M events; training ≤ 1.15× bare implicit on the same matrix.
Model quality lives in `bench.quality`.
"""

from __future__ import annotations

import argparse
import os

from implicit.cpu.als import AlternatingLeastSquares

from bench.common import best_of, cache_dir, report
from features.build_features import build_features_from_file
from features.feature_set import FeatureSet
from features.sample_events import generate_events
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training.als import TrainParams, fit_als
from vrmodels.training.trainer import train


def feature_throughput() -> FeatureSet:
    path = cache_dir() / "events-5m.csv"
    if not path.exists():
        print("generating 5M events (cached in bench/.cache) ...", flush=True)
        generate_events(users=270_000, videos=20_000, mean_events=20.0, topics=50, seed=1).head(5_000_000).to_csv(
            path, index=False
        )
    features: list[FeatureSet] = []
    seconds = best_of(3, lambda: features.append(build_features_from_file(path)))
    events = features[-1].report["input_events"]
    report("features: events read, validated and aggregated", events, "events")
    report("features: wall time (best of 3)", seconds, "s")
    report("features: throughput", events / seconds / 1e6, "M ev/s", "target ≥ 1.0")
    return features[-1]


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
    full_seconds = best_of(1, lambda: train(features, params))
    report("training: full train() (split, eval fit + baseline, refit)", full_seconds, "s")
    report("training: full train() / two bare fits", full_seconds / (2 * bare_seconds), "×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    limit_blas_threads()
    print(f"cores: {os.cpu_count()}", flush=True)
    features = feature_throughput()
    training_overhead(features)


if __name__ == "__main__":
    main()
