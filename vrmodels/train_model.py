"""Train implicit ALS on a feature directory, judge it against the baselines, ship a model directory.

    python -m vrmodels.train_model --features DIR --models-root DIR [--tune] [--allow-worse] [--package FILE]
        [--split auto|user|time] [--test-days 7] [--ranker auto|on|off]
        [--relevant-completion 0.8] [--relevant-min-rating R] [--topn 100] [--ann auto|on|off]

Writes `<models-root>/<version>/` with its evaluation report and points `<models-root>/latest` at it; exits 3
and writes nothing when the model does not beat the best baseline (the quality gate), 2 on bad input.
The steps are vrmodels.training.trainer's; docs/training.md explains them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from features.feature_set import FeatureSet
from features.options import add_arguments, from_arguments
from vrmodels.model.artifacts import REPORT_HTML_FILE, package_model_dir
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training.als import TrainParams
from vrmodels.training.evaluation import QualityGateError, metrics_table
from vrmodels.training.logs import log_to_stdout
from vrmodels.training.model_dir import save_versioned, to_artifacts
from vrmodels.training.options import TrainingOptions
from vrmodels.training.trainer import train


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=Path, required=True, help="directory written by features.build_features")
    parser.add_argument("--models-root", type=Path, required=True, help="versioned model directories go here")
    add_arguments(parser.add_argument_group("ALS (see vrmodels/training/als.py)"), TrainParams)
    add_arguments(parser.add_argument_group("training (see docs/training.md)"), TrainingOptions)
    parser.add_argument("--package", type=Path, help="also write this model.tar.gz for SageMaker")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    limit_blas_threads()
    log_to_stdout()
    params = TrainParams(**from_arguments(args, TrainParams))
    options = TrainingOptions(**from_arguments(args, TrainingOptions))
    started = time.perf_counter()
    with tqdm(
        total=options.trials, desc="tune", unit="trial", file=sys.stderr, disable=None if options.trials else True
    ) as bar:

        def on_trial(record: dict) -> None:
            bar.update()
            bar.set_postfix(best=f"{record['best']:.4f}")

        try:
            result = train(
                FeatureSet.load(args.features), params, options, show_progress=sys.stderr.isatty(), on_trial=on_trial
            )
        except QualityGateError as exc:
            print(metrics_table(exc.metrics))
            print(f"error: {exc}", file=sys.stderr)
            return 3
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(f"relevance: {result.relevance.describe()}\n{metrics_table(result.metrics)}")
    directory = save_versioned(to_artifacts(result.trained, topn=options.topn, ann=options.ann), args.models_root)
    print(f"model written to {directory} in {time.perf_counter() - started:.1f}s")
    print(f"evaluation report: {(directory / REPORT_HTML_FILE).resolve().as_uri()}")
    if args.package:
        print(f"packaged {package_model_dir(directory, args.package)}")
    print(json.dumps({"model_dir": str(directory), "params": asdict(result.params)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
