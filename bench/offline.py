"""Offline benchmarks: feature throughput, training overhead over bare implicit, MovieLens-100K quality.

    python -m bench.offline [--skip-movielens]

Targets (issue 2): features ≥ 1M events/s on 5M events; training ≤ 1.15× bare implicit on the same matrix;
MovieLens-100K (temporal per-user 80/20) NDCG@10 ≥ 0.17 with defaults and ≥ 0.19 with --tune.
"""

from __future__ import annotations

import argparse
import os

from implicit.cpu.als import AlternatingLeastSquares  # after vrmodels: BLAS limited to one thread

from bench.common import MOVIELENS, best_of, cache_dir, report
from features.build_features import build_features_from_file
from features.feature_set import FeatureSet
from features.sample_events import generate_events
from vrmodels.train_model import TrainParams, fit_als, metrics_table, train


def feature_throughput() -> FeatureSet:
    path = cache_dir() / "events-5m.csv"
    if not path.exists():
        print("generating 5M events (cached in bench/.cache) ...", flush=True)
        generate_events(users=270_000, videos=20_000, mean_events=20.0, genres=50, seed=1).head(5_000_000).to_csv(
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


def movielens_quality() -> None:
    if not MOVIELENS.exists():
        print(f"skipped MovieLens-100K: {MOVIELENS} not found")
        return
    features = build_features_from_file(MOVIELENS, "movielens")
    default = train(features, TrainParams())
    tuned = train(features, TrainParams(), tune_trials=20)
    print(
        metrics_table(
            {
                "default ALS": default.metrics["als"],
                "tuned ALS": tuned.metrics["als"],
                **{"most_popular": default.metrics["most_popular"]},
            }
        )
    )
    report("MovieLens-100K: NDCG@10 default", default.metrics["als"]["ndcg"], "", "target ≥ 0.17")
    report("MovieLens-100K: NDCG@10 --tune", tuned.metrics["als"]["ndcg"], "", "target ≥ 0.19")
    report("MovieLens-100K: NDCG@10 most-popular", default.metrics["most_popular"]["ndcg"], "", "(≈ 0.11)")
    report(
        "MovieLens-100K: default / most-popular",
        default.metrics["als"]["ndcg"] / default.metrics["most_popular"]["ndcg"],
        "×",
    )
    print(f"tuned parameters: {tuned.params}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-movielens", action="store_true")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}", flush=True)
    features = feature_throughput()
    training_overhead(features)
    if not args.skip_movielens:
        movielens_quality()


if __name__ == "__main__":
    main()
