"""The implicit trainer: judge ALS on a hold-out against the baselines (the quality gate), refit on all data.

Steps: hold out each user's latest 20% → (optionally tune on a validation split of the training part) → fit
ALS on the rest → compare NDCG@10 on the relevant held-out pairs with most-popular and most-watched → refit
on every pair. `to_artifacts` turns the result into a model directory's content.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from implicit.cpu.als import AlternatingLeastSquares

from features.confidence import ConfidenceConfig
from features.feature_set import FeatureSet
from vrmodels.model.artifacts import ModelArtifacts
from vrmodels.model.topn import DEFAULT_TOPN
from vrmodels.training.als import TrainParams, fit_als
from vrmodels.training.assemble import assemble
from vrmodels.training.evaluation import (
    CURVE_MAX_K,
    MAX_EVALUATED_USERS,
    K,
    SplitEvaluation,
    evaluate_split,
    quality_gate,
)
from vrmodels.training.relevance import DEFAULT_MIN_COMPLETION, Relevance
from vrmodels.training.split import holdout
from vrmodels.training.tuning import Trial, tune

log = logging.getLogger(__name__)

TEST_FRACTION = 0.2


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
    on_trial: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Raises QualityGateError (nothing fitted on all data) unless ALS beats the best baseline or allow_worse.

    `on_trial` hears of each tuning trial (a CLI's progress display)."""
    relevance = Relevance.for_events(features.pair_events, relevant_completion, relevant_min_rating)
    relevant = relevance.mask(features.pair_events)
    split = holdout(features.interactions, relevant, TEST_FRACTION)
    log.info(
        "[relevance] %s: %d of %d held-out pairs count as hits",
        relevance.describe(), int(split.relevant_rows.sum()), int(split.test_rows.sum()),
    )  # fmt: skip
    chosen, tuning = Trial(params, features.confidence_config), None
    if tune_trials:
        log.info("[tune] %d trials on a validation split of the training part", tune_trials)
        chosen, tuning = tune(features, split.train_rows, relevant, tune_trials, chosen, on_trial)
        features = features.with_confidence(chosen.confidence)
    log.info("[evaluate] fitting on %d pairs, holding out %d", int(split.train_rows.sum()), int(split.test_rows.sum()))
    evaluation = evaluate_split(
        features, split.train_rows, split.relevant_rows, chosen.params, max_k=CURVE_MAX_K, show_progress=show_progress
    )
    quality_gate(evaluation.metrics, relevance, allow_worse)
    log.info("[refit] on all %d pairs", len(features.interactions))
    model = fit_als(features.to_csr(), chosen.params, show_progress)
    return TrainResult(model, chosen.params, chosen.confidence, features, relevance, evaluation, tuning)


def evaluation_manifest(relevance: Relevance, evaluation: SplitEvaluation) -> dict:
    return {
        "k": K,
        "test_fraction": TEST_FRACTION,
        "split": "per-user latest by time",
        "max_evaluated_users": MAX_EVALUATED_USERS,
        "relevance": relevance.to_dict(),
        "curves": evaluation.curves,
    }


def to_artifacts(result: TrainResult, topn_size: int = DEFAULT_TOPN, ann_mode: str = "auto") -> ModelArtifacts:
    """The model directory's content, with the serving aids it asks for."""
    features = result.features
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
        result.model.user_factors, result.model.item_factors, features.to_csr(), features.user_ids,
        features.video_ids, manifest, topn_size, ann_mode,
    )  # fmt: skip
