"""Train implicit ALS on a feature directory, evaluate it against most-popular, ship a model directory.

    python -m vrmodels.train_model --features DIR --models-root DIR [--tune] [--allow-worse] [--package FILE]
        [--relevant-completion 0.8] [--relevant-min-rating R]

Steps: hold out each user's latest 20% → fit ALS on the rest → compare NDCG@10 on the relevant held-out pairs
with most-popular and most-watched (the quality gate; `vrmodels.relevance` says what is relevant) → refit on all
data → write `<models-root>/<version>/` with its evaluation report and point `<models-root>/latest` at it.
`--tune` searches ALS and confidence parameters on a validation split carved from the training part only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix

from features.confidence import ConfidenceConfig
from features.feature_set import FeatureSet
from vrmodels import report
from vrmodels.als import (
    BASELINES,
    CURVE_MAX_K,
    MAX_EVALUATED_USERS,
    K,
    SplitEvaluation,
    TrainParams,
    evaluate_split,
    fit_als,
    metrics_table,
)
from vrmodels.ann import MODES as ANN_MODES
from vrmodels.artifacts import ModelArtifacts, package_model_dir, write_model_dir
from vrmodels.evaluation import engagement, holdout
from vrmodels.relevance import DEFAULT_MIN_COMPLETION, Relevance
from vrmodels.topn import DEFAULT_TOPN, serving_aids
from vrmodels.tuning import DEFAULT_TUNE_TRIALS, Trial, tune

TEST_FRACTION = 0.2


class QualityGateError(RuntimeError):
    """ALS did not beat both popularity baselines on held-out NDCG@10."""


@dataclass
class TrainResult:
    model: AlternatingLeastSquares
    params: TrainParams
    confidence: ConfidenceConfig
    features: FeatureSet
    """The features the model was fitted on (re-aggregated when tuning chose other confidence parameters)."""
    relevance: Relevance
    evaluation: SplitEvaluation
    tuning: list[dict] | None

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return self.evaluation.metrics


def train(
    features: FeatureSet,
    params: TrainParams = TrainParams(),
    tune_trials: int = 0,
    allow_worse: bool = False,
    show_progress: bool = False,
    relevant_completion: float = DEFAULT_MIN_COMPLETION,
    relevant_min_rating: float | None = None,
) -> TrainResult:
    relevance = Relevance.for_events(features.pair_events, relevant_completion, relevant_min_rating)
    relevant = relevance.mask(features.pair_events)
    split = holdout(features.interactions, relevant, TEST_FRACTION)
    print(
        f"[relevance] {relevance.describe()}: {int(split.relevant_rows.sum())} of {int(split.test_rows.sum())} "
        "held-out pairs count as hits",
        flush=True,
    )
    chosen, tuning = Trial(params, features.confidence_config), None
    if tune_trials:
        print(f"[tune] {tune_trials} trials on a validation split of the training part", flush=True)
        chosen, tuning = tune(features, split.train_rows, relevant, tune_trials, chosen)
        features = features.with_confidence(chosen.confidence)
    print(
        f"[evaluate] fitting on {int(split.train_rows.sum())} pairs, holding out {int(split.test_rows.sum())}",
        flush=True,
    )
    evaluation = evaluate_split(
        features, split.train_rows, split.relevant_rows, chosen.params, max_k=CURVE_MAX_K, show_progress=show_progress
    )
    quality_gate(evaluation.metrics, relevance, allow_worse)
    print(f"[refit] on all {len(features.interactions)} pairs", flush=True)
    model = fit_als(features.to_csr(), chosen.params, show_progress)
    return TrainResult(model, chosen.params, chosen.confidence, features, relevance, evaluation, tuning)


def quality_gate(metrics: dict[str, dict[str, float]], relevance: Relevance, allow_worse: bool) -> None:
    """Print the metrics; refuse (QualityGateError) unless ALS beats both baselines on NDCG@K."""
    print(f"relevance: {relevance.describe()}\n{metrics_table(metrics)}", flush=True)
    baseline = max(BASELINES, key=lambda name: metrics[name]["ndcg"])
    if metrics["als"]["ndcg"] <= metrics[baseline]["ndcg"]:
        message = (
            f"quality gate: ALS NDCG@{K} {metrics['als']['ndcg']:.4f} does not beat {baseline.replace('_', '-')} "
            f"{metrics[baseline]['ndcg']:.4f} ({relevance.describe()})"
        )
        if not allow_worse:
            raise QualityGateError(message + "; nothing shipped (use --allow-worse to ship anyway)")
        print(f"warning: {message}; shipping because --allow-worse was given", flush=True)


def to_artifacts(result: TrainResult, topn_size: int = DEFAULT_TOPN, ann_mode: str = "auto") -> ModelArtifacts:
    """The model directory's content, with the serving aids (vrmodels.topn.serving_aids) it asks for."""
    features = result.features
    user_items = features.to_csr()
    manifest = {
        "algorithm": "implicit.als.AlternatingLeastSquares",
        "parameters": asdict(result.params),
        "confidence": result.confidence.to_dict(),
        "data": {"features": features.report},
        "evaluation": evaluation_manifest(result.relevance, result.evaluation),
        "metrics": result.metrics,
        "tuning": result.tuning,
    }
    return assemble(
        result.model.user_factors, result.model.item_factors, user_items, features.user_ids, features.video_ids,
        manifest, topn_size, ann_mode,
    )  # fmt: skip


def evaluation_manifest(relevance: Relevance, evaluation: SplitEvaluation) -> dict:
    return {
        "k": K,
        "test_fraction": TEST_FRACTION,
        "split": "per-user latest by time",
        "max_evaluated_users": MAX_EVALUATED_USERS,
        "relevance": relevance.to_dict(),
        "curves": evaluation.curves,
    }


def assemble(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    user_items: csr_matrix,
    user_ids: Sequence[str],
    video_ids: Sequence[str],
    manifest: dict,
    topn_size: int,
    ann_mode: str,
) -> ModelArtifacts:
    """A model directory's content from any trainer's factors: version, data counts, serving aids, report."""
    digest = hashlib.sha256(user_items.data.tobytes() + user_items.indices.tobytes()).hexdigest()[:8]
    lists, indexes, serving = serving_aids(user_factors, item_factors, user_items, topn_size, ann_mode)
    manifest = {
        "model_version": f"als-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{digest}",
        **manifest,
        "data": {"users": len(user_ids), "videos": len(video_ids), "pairs": int(user_items.nnz), **manifest["data"]},
        "serving": serving,
    }
    return ModelArtifacts(
        user_factors=user_factors,
        item_factors=item_factors,
        user_items=user_items,
        popularity=engagement(user_items),
        user_ids=user_ids,
        video_ids=video_ids,
        manifest=manifest,
        reports=report.render(manifest),
        topn=lists,
        ann=indexes,
    )


def save_versioned(artifacts: ModelArtifacts, models_root: Path) -> Path:
    """Write `<models_root>/<version>/` and repoint the `latest` symlink at it."""
    directory = write_model_dir(artifacts, models_root / artifacts.manifest["model_version"])
    link = models_root / "latest"
    temporary = models_root / ".latest.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(directory.name)
    temporary.replace(link)
    return directory


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
        help="approximate top-k indexes for large catalogues (auto: from 100,000 videos; see vrmodels/ann.py)",
    )
    parser.add_argument("--allow-worse", action="store_true", help="ship even if ALS loses to the baselines")
    parser.add_argument("--package", type=Path, help="also write this model.tar.gz for SageMaker")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    params = TrainParams(args.factors, args.regularization, args.alpha, args.iterations, args.seed)
    started = time.perf_counter()
    try:
        result = train(
            FeatureSet.load(args.features),
            params,
            tune_trials=args.tune_trials if args.tune else 0,
            allow_worse=args.allow_worse,
            show_progress=sys.stderr.isatty(),
            relevant_completion=args.relevant_completion,
            relevant_min_rating=args.relevant_min_rating,
        )
    except (QualityGateError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, QualityGateError) else 2
    directory = save_versioned(to_artifacts(result, args.topn, args.ann), args.models_root)
    print(f"model written to {directory} in {time.perf_counter() - started:.1f}s")
    print(f"evaluation report: {(directory / report.HTML_FILE).resolve().as_uri()}")
    if args.package:
        print(f"packaged {package_model_dir(directory, args.package)}")
    print(json.dumps({"model_dir": str(directory), "params": asdict(result.params)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
