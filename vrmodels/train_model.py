"""Train implicit ALS on a feature directory, evaluate it against most-popular, ship a model directory.

    python -m vrmodels.train_model --features DIR --models-root DIR [--tune] [--allow-worse] [--package FILE]

Steps: hold out each user's latest 20% → fit ALS on the rest → compare NDCG@10 with most-popular
(the quality gate) → refit on all data → write `<models-root>/<version>/` and point `<models-root>/latest`
at it. `--tune` picks parameters by random search on a validation split carved from the training part only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares

from features.feature_set import FeatureSet
from vrmodels.artifacts import ModelArtifacts, package_model_dir, write_model_dir
from vrmodels.evaluation import popularity, rank_by_popularity, ranking_metrics, temporal_split

K = 10
TEST_FRACTION = 0.2
MAX_EVALUATED_USERS = 20_000


@dataclass(frozen=True)
class TrainParams:
    """Defaults measured on MovieLens-100K and the bundled sample (see README, "Model quality")."""

    factors: int = 64
    regularization: float = 5.0
    alpha: float = 1.0
    iterations: int = 15
    seed: int = 42


TUNE_SPACE = {
    "factors": [16, 32, 64, 128],
    "regularization": [0.1, 1.0, 3.0, 5.0, 10.0, 20.0, 50.0],
    "alpha": [0.5, 1.0, 2.0, 5.0, 10.0, 40.0],
    "iterations": [10, 15, 25],
}


class QualityGateError(RuntimeError):
    """ALS did not beat most-popular on held-out NDCG@10."""


@dataclass
class TrainResult:
    model: AlternatingLeastSquares
    params: TrainParams
    metrics: dict[str, dict[str, float]]
    tuning: list[dict] | None


def fit_als(user_items, params: TrainParams, show_progress: bool = False) -> AlternatingLeastSquares:
    model = AlternatingLeastSquares(
        factors=params.factors,
        regularization=params.regularization,
        alpha=params.alpha,
        iterations=params.iterations,
        random_state=int(params.seed),
        num_threads=0,
    )
    model.fit(user_items, show_progress=show_progress)
    return model


def compare_with_popular(
    features: FeatureSet,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    params: TrainParams,
    show_progress: bool = False,
) -> dict[str, dict[str, float]]:
    """NDCG/MAP/precision/recall@K of ALS and of most-popular, both trained on `train_rows` only."""
    train, test = features.to_csr(train_rows), features.to_csr(test_rows)
    users = np.flatnonzero(np.diff(test.indptr))
    if len(users) > MAX_EVALUATED_USERS:  # scoring every user would cost more than the fits themselves
        users = np.sort(np.random.default_rng(params.seed).choice(users, MAX_EVALUATED_USERS, replace=False))
    model = fit_als(train, params, show_progress)
    als_ids, als_scores = model.recommend(users, train[users], N=K, filter_already_liked_items=True)
    pop_ids, pop_scores = rank_by_popularity(popularity(train), train[users], K)
    return {
        "als": ranking_metrics(als_ids, als_scores, test[users], K),
        "most_popular": ranking_metrics(pop_ids, pop_scores, test[users], K),
    }


def tune(
    features: FeatureSet, train_rows: np.ndarray, trials: int, base: TrainParams
) -> tuple[TrainParams, list[dict]]:
    """Random search scored on the latest 20% of the training part; the test part is never seen."""
    inner = features.interactions[train_rows]
    validation_in_inner = temporal_split(inner, TEST_FRACTION)
    validation = np.zeros(len(train_rows), dtype=bool)
    validation[np.flatnonzero(train_rows)[validation_in_inner]] = True
    fit_rows = train_rows & ~validation

    rng = np.random.default_rng(base.seed)
    candidates = [base] + [
        replace(base, **{name: values[rng.integers(len(values))] for name, values in TUNE_SPACE.items()})
        for _ in range(max(0, trials - 1))
    ]
    history = []
    for number, candidate in enumerate(dict.fromkeys(candidates), start=1):
        ndcg = compare_with_popular(features, fit_rows, validation, candidate)["als"]["ndcg"]
        history.append({"params": asdict(candidate), "validation_ndcg": ndcg})
        print(
            f"  tune {number}/{len(candidates)}: {_params_text(candidate)} → validation NDCG@{K} {ndcg:.4f}", flush=True
        )
    best = max(history, key=lambda entry: entry["validation_ndcg"])
    return TrainParams(**best["params"]), history


def train(
    features: FeatureSet,
    params: TrainParams = TrainParams(),
    tune_trials: int = 0,
    allow_worse: bool = False,
    show_progress: bool = False,
) -> TrainResult:
    test_rows = temporal_split(features.interactions, TEST_FRACTION)
    train_rows = ~test_rows
    tuning = None
    if tune_trials:
        print(f"[tune] {tune_trials} trials on a validation split of the training part", flush=True)
        params, tuning = tune(features, train_rows, tune_trials, params)
        print(f"[tune] chosen: {_params_text(params)}", flush=True)
    print(f"[evaluate] fitting on {int(train_rows.sum())} pairs, holding out {int(test_rows.sum())}", flush=True)
    metrics = compare_with_popular(features, train_rows, test_rows, params, show_progress)
    print(metrics_table(metrics), flush=True)
    if metrics["als"]["ndcg"] <= metrics["most_popular"]["ndcg"]:
        message = (
            f"quality gate: ALS NDCG@{K} {metrics['als']['ndcg']:.4f} does not beat most-popular "
            f"{metrics['most_popular']['ndcg']:.4f}"
        )
        if not allow_worse:
            raise QualityGateError(message + "; nothing shipped (use --allow-worse to ship anyway)")
        print(f"warning: {message}; shipping because --allow-worse was given", flush=True)
    print(f"[refit] on all {len(features.interactions)} pairs", flush=True)
    model = fit_als(features.to_csr(), params, show_progress)
    return TrainResult(model=model, params=params, metrics=metrics, tuning=tuning)


def to_artifacts(result: TrainResult, features: FeatureSet) -> ModelArtifacts:
    user_items = features.to_csr()
    data_digest = hashlib.sha256(user_items.data.tobytes() + user_items.indices.tobytes()).hexdigest()[:8]
    version = f"als-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{data_digest}"
    return ModelArtifacts(
        user_factors=result.model.user_factors,
        item_factors=result.model.item_factors,
        user_items=user_items,
        popularity=popularity(user_items),
        user_ids=features.user_ids,
        video_ids=features.video_ids,
        manifest={
            "model_version": version,
            "algorithm": "implicit.als.AlternatingLeastSquares",
            "parameters": asdict(result.params),
            "data": {
                "users": features.shape[0],
                "videos": features.shape[1],
                "pairs": int(user_items.nnz),
                "features": features.report,
            },
            "evaluation": {
                "k": K,
                "test_fraction": TEST_FRACTION,
                "split": "per-user latest by time",
                "max_evaluated_users": MAX_EVALUATED_USERS,
            },
            "metrics": result.metrics,
            "tuning": result.tuning,
        },
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


def metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    header = f"{'model':<14}" + "".join(f"{name + '@' + str(K):>14}" for name in ("precision", "recall", "ndcg", "map"))
    rows = [
        f"{model:<14}" + "".join(f"{values[name]:>14.4f}" for name in ("precision", "recall", "ndcg", "map"))
        for model, values in metrics.items()
    ]
    return "\n".join([header, *rows])


def _params_text(params: TrainParams) -> str:
    return ", ".join(f"{name}={value}" for name, value in asdict(params).items())


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
    parser.add_argument("--tune", action="store_true", help="random search before the final fit")
    parser.add_argument("--tune-trials", type=int, default=20, help="budget for --tune (default 20)")
    parser.add_argument("--allow-worse", action="store_true", help="ship even if ALS loses to most-popular")
    parser.add_argument("--package", type=Path, help="also write this model.tar.gz for SageMaker")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    params = TrainParams(args.factors, args.regularization, args.alpha, args.iterations, args.seed)
    started = time.perf_counter()
    features = FeatureSet.load(args.features)
    try:
        result = train(
            features,
            params,
            tune_trials=args.tune_trials if args.tune else 0,
            allow_worse=args.allow_worse,
            show_progress=sys.stderr.isatty(),
        )
    except QualityGateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    directory = save_versioned(to_artifacts(result, features), args.models_root)
    print(f"model written to {directory} in {time.perf_counter() - started:.1f}s")
    if args.package:
        print(f"packaged {package_model_dir(directory, args.package)}")
    print(json.dumps({"model_dir": str(directory), "params": asdict(result.params)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
