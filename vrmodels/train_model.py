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
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from features.feature_set import FeatureSet
from vrmodels.model.artifacts import REPORT_HTML_FILE, package_model_dir
from vrmodels.model.threads import limit_blas_threads
from vrmodels.model.topn import DEFAULT_TOPN
from vrmodels.training.aids import ANN_MODES
from vrmodels.training.als import TrainParams
from vrmodels.training.assemble import save_versioned
from vrmodels.training.evaluation import QualityGateError, metrics_table
from vrmodels.training.relevance import DEFAULT_MIN_COMPLETION
from vrmodels.training.trainer import DEFAULT_TEST_DAYS, RANKER_MODES, SPLITS, to_artifacts, train
from vrmodels.training.tuning import DEFAULT_TUNE_TRIALS


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = TrainParams()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=Path, required=True, help="directory written by features.build_features")
    parser.add_argument("--models-root", type=Path, required=True, help="versioned model directories go here")
    parser.add_argument("--factors", type=int, default=defaults.factors)
    parser.add_argument("--regularization", type=float, default=defaults.regularization)
    parser.add_argument("--alpha", type=float, default=defaults.alpha)
    parser.add_argument("--iterations", type=int, default=defaults.iterations)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--tune", action="store_true", help="search ALS and confidence parameters first")
    parser.add_argument(
        "--tune-trials",
        type=int,
        default=DEFAULT_TUNE_TRIALS,
        help=f"budget for --tune (default {DEFAULT_TUNE_TRIALS})",
    )
    parser.add_argument(
        "--relevant-completion",
        type=float,
        default=DEFAULT_MIN_COMPLETION,
        help="with watch data, a held-out view counts as a hit from this completion on (default 0.8)",
    )
    parser.add_argument(
        "--relevant-min-rating", type=float, help="with rating data, only held-out ratings ≥ this count as hits"
    )
    parser.add_argument(
        "--topn",
        type=int,
        default=DEFAULT_TOPN,
        help=f"precompute each user's top N for serving (default {DEFAULT_TOPN}; 0: none, every request is scored)",
    )
    parser.add_argument(
        "--ann",
        choices=ANN_MODES,
        default="auto",
        help="approximate top-k indexes for large catalogues (auto: from 100,000 videos; docs/large-catalogues.md)",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="auto",
        help="how to hold out: per user, or in time (auto: time when the catalogue has published_at)",
    )
    parser.add_argument(
        "--test-days",
        type=int,
        default=DEFAULT_TEST_DAYS,
        help=f"with --split time, the days after the cut that judge (default {DEFAULT_TEST_DAYS})",
    )
    parser.add_argument(
        "--ranker",
        choices=RANKER_MODES,
        default="auto",
        help="the learned second stage (auto: on with a catalogue and a time split)",
    )
    parser.add_argument("--allow-worse", action="store_true", help="ship even if the model loses to the baselines")
    parser.add_argument("--package", type=Path, help="also write this model.tar.gz for SageMaker")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    limit_blas_threads()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    params = TrainParams(args.factors, args.regularization, args.alpha, args.iterations, args.seed)
    started = time.perf_counter()
    trials = args.tune_trials if args.tune else 0
    with tqdm(total=trials, desc="tune", unit="trial", file=sys.stderr, disable=None if trials else True) as bar:

        def on_trial(record: dict) -> None:
            bar.update()
            bar.set_postfix(best=f"{record['best']:.4f}")

        try:
            result = train(
                FeatureSet.load(args.features),
                params,
                tune_trials=trials,
                allow_worse=args.allow_worse,
                show_progress=sys.stderr.isatty(),
                relevant_completion=args.relevant_completion,
                relevant_min_rating=args.relevant_min_rating,
                on_trial=on_trial,
                split=args.split,
                test_days=args.test_days,
                ranker=args.ranker,
            )
        except QualityGateError as exc:
            print(metrics_table(exc.metrics))
            print(f"error: {exc}", file=sys.stderr)
            return 3
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(f"relevance: {result.relevance.describe()}\n{metrics_table(result.metrics)}")
    directory = save_versioned(to_artifacts(result, args.topn, args.ann), args.models_root)
    print(f"model written to {directory} in {time.perf_counter() - started:.1f}s")
    print(f"evaluation report: {(directory / REPORT_HTML_FILE).resolve().as_uri()}")
    if args.package:
        print(f"packaged {package_model_dir(directory, args.package)}")
    print(json.dumps({"model_dir": str(directory), "params": asdict(result.params)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
