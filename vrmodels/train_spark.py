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
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from features.build_features import confidence_arguments, confidence_from_arguments
from features.columns import DataFileError
from vrmodels.model.artifacts import package_model_dir
from vrmodels.model.threads import limit_blas_threads
from vrmodels.model.topn import DEFAULT_TOPN
from vrmodels.training.aids import ANN_MODES
from vrmodels.training.assemble import save_versioned
from vrmodels.training.evaluation import QualityGateError, metrics_table
from vrmodels.training.relevance import DEFAULT_MIN_COMPLETION
from vrmodels.training.spark import SparkParams, spark_session, to_artifacts, train_spark


def upload(archive: Path, destination: str) -> str:
    """Copy model.tar.gz to s3://bucket/prefix/ (for deploy/deploy.sh --model-data-url); return its URI."""
    import boto3

    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    key = f"{prefix.rstrip('/')}/model.tar.gz".lstrip("/")
    boto3.client("s3").upload_file(str(archive), bucket, key)
    return f"s3://{bucket}/{key}"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = SparkParams()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", required=True, help="file or folder of events: local, hdfs:// or s3a://")
    parser.add_argument("--models-root", type=Path, required=True, help="versioned model directories go here")
    parser.add_argument("--master", default="local[*]", help="local[*] (default), yarn, spark://host:7077, ...")
    parser.add_argument("--format", choices=("events", "movielens"), default="events")
    parser.add_argument("--rank", type=int, default=defaults.rank)
    parser.add_argument("--max-iter", type=int, default=defaults.max_iter)
    parser.add_argument("--reg-param", type=float, default=defaults.reg_param)
    parser.add_argument("--alpha", type=float, default=defaults.alpha)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--checkpoint-interval", type=int, default=defaults.checkpoint_interval)
    parser.add_argument("--checkpoint-dir", help="reliable storage for ALS checkpoints (default: a local temp dir)")
    parser.add_argument("--min-user-events", type=int, default=1)
    parser.add_argument("--min-video-events", type=int, default=1)
    parser.add_argument("--relevant-completion", type=float, default=DEFAULT_MIN_COMPLETION)
    parser.add_argument("--relevant-min-rating", type=float)
    parser.add_argument("--topn", type=int, default=DEFAULT_TOPN)
    parser.add_argument("--ann", choices=ANN_MODES, default="auto")
    parser.add_argument("--allow-worse", action="store_true")
    parser.add_argument("--package", type=Path, help="also write this model.tar.gz")
    parser.add_argument("--upload", help="also copy model.tar.gz to s3://bucket/prefix/ (needs boto3)")
    confidence_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    limit_blas_threads()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    params = SparkParams(args.rank, args.max_iter, args.reg_param, args.alpha, args.seed, args.checkpoint_interval)
    started = time.perf_counter()
    spark = spark_session(args.master)
    checkpoints = args.checkpoint_dir or tempfile.mkdtemp(prefix="als-checkpoints-")
    spark.sparkContext.setCheckpointDir(checkpoints)
    try:
        result = train_spark(
            spark, args.events, params, confidence_from_arguments(args), args.format, args.allow_worse,
            args.relevant_completion, args.relevant_min_rating, args.min_user_events, args.min_video_events,
        )  # fmt: skip
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
    directory = save_versioned(to_artifacts(result, args.topn, args.ann), args.models_root)
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
