"""The Spark trainer next to the implicit trainer, in local[2] on this machine (issue 11).

    python -m bench.spark [--grid] [--skip-large]

Printed: MovieLens-100K (per-user temporal 80/20) NDCG@10 of both trainers with their defaults (target: Spark
within 10% of implicit) and wall times; the bundled sample likewise; the same on bench.offline's generated
platform log of 5M events (bench/.cache/platform-events-5m.csv). `--grid` prints the regParam × alpha grid the Spark
defaults were chosen from, on both data sets.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import os
import platform
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

from bench.common import MOVIELENS, report
from bench.offline import platform_log
from features.build_features import build_features_from_file
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training import spark as train_spark
from vrmodels.training.options import TrainingOptions
from vrmodels.training.trainer import train

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "events.csv.gz"


def timed(action):
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = action()
    return result, time.perf_counter() - started


def compare(spark, name: str, path: Path, input_format: str) -> None:
    implicit, implicit_seconds = timed(
        lambda: train(
            build_features_from_file(path, input_format),
            options=TrainingOptions(allow_worse=True),
        )
    )
    spark_result, spark_seconds = timed(
        lambda: train_spark.train_spark(
            spark, str(path), input_format=input_format, options=TrainingOptions(allow_worse=True)
        )
    )
    ours, theirs = implicit.metrics["als"]["ndcg"], spark_result.evaluation.metrics["als"]["ndcg"]
    report(f"{name}: NDCG@10 implicit (defaults)", ours, "")
    report(f"{name}: NDCG@10 Spark ALS (defaults)", theirs, "", "target ≥ 0.9 × implicit")
    report(f"{name}: Spark / implicit NDCG@10", theirs / ours, "×")
    report(f"{name}: wall time implicit (features, evaluation fit, refit)", implicit_seconds, "s")
    report(f"{name}: wall time Spark local[2] (the same steps)", spark_seconds, "s")


def grid(spark, name: str, path: Path, input_format: str) -> None:
    print(f"{name}: Spark NDCG@10 by regParam × alpha (rank 64, 15 iterations)")
    for reg_param, alpha in itertools.product([0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0], [0.5, 1.0, 2.0, 5.0, 20.0]):
        params = replace(train_spark.SparkParams(), reg_param=reg_param, alpha=alpha)
        result, _ = timed(
            partial(
                train_spark.train_spark,
                spark,
                str(path),
                params,
                input_format=input_format,
                options=TrainingOptions(allow_worse=True),
            )
        )
        print(
            f"  regParam {reg_param:<5} alpha {alpha:<5} NDCG@10 {result.evaluation.metrics['als']['ndcg']:.4f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--skip-large", action="store_true", help="skip the 5M-event log")
    args = parser.parse_args()
    limit_blas_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; Spark local[2]", flush=True)
    spark = train_spark.spark_session("local[2]", "vr-bench")
    spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="als-checkpoints-"))
    try:
        timed(
            lambda: train_spark.train_spark(spark, str(SAMPLE), options=TrainingOptions(allow_worse=True))
        )  # JVM warm-up, not measured
        datasets = [("bundled sample", SAMPLE, "events")]
        if MOVIELENS.exists():
            datasets.insert(0, ("MovieLens-100K", MOVIELENS, "movielens"))
        for name, path, input_format in datasets:
            if args.grid:
                grid(spark, name, path, input_format)
            compare(spark, name, path, input_format)
        if not args.skip_large:
            events, _ = platform_log()
            compare(spark, "generated 5M events", Path(events), "events")
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
