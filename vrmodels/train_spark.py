"""Train with Spark MLlib ALS where the watch log outgrows one machine; the same model directory comes out.

    python -m vrmodels.train_spark --events PATH_OR_S3 --models-root DIR [--master local[*]|yarn|spark://...]
        [--format events|movielens] [--rank 64 --max-iter 15 --reg-param 0.3 --alpha 1 --seed 42]
        [--checkpoint-dir DIR --checkpoint-interval 10] [--package model.tar.gz] [--upload s3://bucket/prefix/]
    spark-submit --py-files vr.zip vrmodels/train_spark.py --events s3a://bucket/events/ --models-root /tmp/models

The steps are vrmodels.training.spark's; docs/spark.md gives the parameter mapping and the measured defaults.
Exits 3 and writes nothing when the model does not beat the best baseline, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from features.build_features import confidence_arguments, confidence_from_arguments
from features.columns import DataFileError
from features.options import add_arguments, from_arguments
from features.sittings import DEFAULT_GAP_MINUTES
from vrmodels.model.artifacts import package_model_dir
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training.evaluation import QualityGateError, metrics_table
from vrmodels.training.logs import log_to_stdout
from vrmodels.training.model_dir import save_versioned, to_artifacts
from vrmodels.training.options import SPARK_OPTIONS, TrainingOptions
from vrmodels.training.spark import SparkParams, spark_session, train_spark, trained_model


def upload(archive: Path, destination: str) -> str:
    """Copy model.tar.gz to s3://bucket/prefix/ (for deploy/deploy.sh --model-data-url); return its URI."""
    import boto3

    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    key = f"{prefix.rstrip('/')}/model.tar.gz".lstrip("/")
    boto3.client("s3").upload_file(str(archive), bucket, key)
    return f"s3://{bucket}/{key}"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", required=True, help="file or folder of events: local, hdfs:// or s3a://")
    parser.add_argument("--models-root", type=Path, required=True, help="versioned model directories go here")
    parser.add_argument("--master", default="local[*]", help="local[*] (default), yarn, spark://host:7077, ...")
    parser.add_argument("--format", choices=("events", "movielens"), default="events")
    add_arguments(parser.add_argument_group("Spark ALS (see docs/spark.md)"), SparkParams)
    parser.add_argument("--checkpoint-dir", help="reliable storage for ALS checkpoints (default: a local temp dir)")
    parser.add_argument("--min-user-events", type=int, default=1)
    parser.add_argument("--min-video-events", type=int, default=1)
    parser.add_argument(
        "--session-gap",
        type=float,
        default=DEFAULT_GAP_MINUTES,
        help=f"minutes without an event that end a sitting (default {DEFAULT_GAP_MINUTES})",
    )
    add_arguments(parser.add_argument_group("training (see docs/training.md)"), TrainingOptions, SPARK_OPTIONS)
    parser.add_argument("--package", type=Path, help="also write this model.tar.gz")
    parser.add_argument("--upload", help="also copy model.tar.gz to s3://bucket/prefix/ (needs boto3)")
    confidence_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    limit_blas_threads()
    log_to_stdout()
    params = SparkParams(**from_arguments(args, SparkParams))
    options = TrainingOptions(**from_arguments(args, TrainingOptions, SPARK_OPTIONS))
    started = time.perf_counter()
    spark = spark_session(args.master)
    checkpoints = args.checkpoint_dir or tempfile.mkdtemp(prefix="als-checkpoints-")
    spark.sparkContext.setCheckpointDir(checkpoints)
    try:
        result = train_spark(
            spark,
            args.events,
            params,
            confidence=confidence_from_arguments(args),
            options=options,
            input_format=args.format,
            min_user_events=args.min_user_events,
            min_video_events=args.min_video_events,
            session_gap_minutes=args.session_gap,
        )
    except QualityGateError as exc:
        print(metrics_table(exc.metrics))
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (DataFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
        if not args.checkpoint_dir:
            shutil.rmtree(checkpoints, ignore_errors=True)
    print(f"relevance: {result.relevance.describe()}\n{metrics_table(result.evaluation.metrics)}")
    artifacts = to_artifacts(trained_model(result), topn=options.topn, ann=options.ann)
    directory = save_versioned(artifacts, args.models_root)
    print(f"model written to {directory} in {time.perf_counter() - started:.1f}s")
    archive = args.package or (directory.parent / f"{directory.name}.tar.gz" if args.upload else None)
    if archive:
        print(f"packaged {package_model_dir(directory, archive)}")
    if args.upload:
        print(f"uploaded {upload(archive, args.upload)}")
    print(json.dumps({"model_dir": str(directory), "params": asdict(params), "missing": result.missing}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
