"""Hyperparameter search over ALS and confidence parameters, scored on an inner temporal validation split.

The validation part is each user's latest 20% of the training part, judged with the same relevance as the
test; the test part is never seen. Each trial re-aggregates the confidence from the kept events with its
own parameters (a bincount over the events: far cheaper than the fit). The search is optuna's TPE sampler,
seeded; trial 0 is always the starting point, so the chosen parameters are never worse than the defaults
on validation. Only parameters the data can inform are searched (no skip parameters without watch time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import optuna

from features.confidence import ConfidenceConfig
from features.feature_set import FeatureSet
from vrmodels.model.ranking.als import AlsRanking
from vrmodels.training.als import TrainParams
from vrmodels.training.evaluation import K, evaluate_split
from vrmodels.training.split import holdout

log = logging.getLogger(__name__)

VALIDATION_FRACTION = 0.2
DEFAULT_TUNE_TRIALS = 50
PARAM_SPACE = {
    "factors": [32, 64, 128],
    "regularization": [1.0, 2.0, 5.0, 10.0, 20.0, 40.0],
    "alpha": [0.5, 1.0, 2.0, 5.0, 10.0, 20.0],
    "iterations": [10, 15, 25],
}
WATCH_SPACE = {  # only where events carry watch time
    "skip_below": [0.3, 0.5, 0.65, 0.8, 0.9],
    "skip_weight": [0.0, 0.02, 0.05, 0.15, 0.5],
    "completion_weight": [0.0, 1.0, 2.0],
}
RATING_WEIGHTS = [0.0, 0.1, 0.25, 0.5, 1.0]  # only where events carry ratings
SCALINGS = ["log", "linear"]
EVENT_WEIGHT_FACTORS = [0.5, 1.0, 2.0]  # applied to each event type but the most frequent one


@dataclass(frozen=True)
class Trial:
    params: TrainParams
    confidence: ConfidenceConfig

    def values(self) -> dict:
        """Flat parameter name → value; event weights appear as `w[<event>]`."""
        confidence = self.confidence.to_dict()
        weights = confidence.pop("event_weights")
        return {**asdict(self.params), **confidence, **{f"w[{name}]": weight for name, weight in weights.items()}}

    def with_values(self, values: dict) -> Trial:
        """This trial with some flat values (as from `values()`) replaced."""
        params = {name: values[name] for name in PARAM_SPACE if name in values}
        confidence = {name: values[name] for name in (*WATCH_SPACE, "rating_weight", "scaling") if name in values}
        weights = dict(self.confidence.event_weights)
        weights |= {name[2:-1]: value for name, value in values.items() if name.startswith("w[")}
        return Trial(replace(self.params, **params), replace(self.confidence, **confidence, event_weights=weights))

    def describe(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.values().items() if name != "seed")


def search_space(base: Trial, features: FeatureSet) -> dict[str, list]:
    """Parameter name → choices (the starting value always among them), for what this data can inform."""
    events = features.pair_events
    space: dict[str, list] = {**PARAM_SPACE, "scaling": SCALINGS}
    if np.isfinite(events.completion).any():
        space |= WATCH_SPACE
    if events.rating is not None and np.isfinite(events.rating).any():
        space["rating_weight"] = RATING_WEIGHTS
    counts = np.bincount(events.event_codes, minlength=len(events.event_names))
    for name, count in zip(events.event_names, counts):
        if count and count < counts.max():  # the most frequent event anchors the scale (alpha does the rest)
            space[f"w[{name}]"] = [base.confidence.event_weights[name] * factor for factor in EVENT_WEIGHT_FACTORS]
    start = base.values()
    return {name: sorted(set(choices) | {start[name]}, key=str) for name, choices in space.items()}


def tune(
    features: FeatureSet,
    train_rows: np.ndarray,
    relevant: np.ndarray,
    *,
    trials: int,
    base: Trial,
    on_trial: Callable[[dict], None] | None = None,
) -> tuple[Trial, list[dict]]:
    """The best of `trials` trials by validation NDCG@K, and every trial's record; only `train_rows` are read.

    `on_trial` receives each trial's record as it finishes, with the best validation score so far."""
    inner = holdout(features.interactions, relevant, VALIDATION_FRACTION, within=train_rows)
    fit_rows, judged_rows = inner.train_rows, inner.relevant_rows
    space = search_space(base, features)
    scores: dict[tuple, float] = {}  # TPE may propose a trial again: score it once
    history: list[dict] = []

    def objective(study_trial: optuna.Trial) -> float:
        suggested = {name: study_trial.suggest_categorical(name, choices) for name, choices in space.items()}
        trial = base.with_values(suggested)
        key = tuple(sorted(trial.values().items()))
        if key not in scores:
            trial_features = features.with_confidence(trial.confidence)
            judged = evaluate_split(trial_features, fit_rows, judged_rows, params=trial.params)
            scores[key] = judged.metrics[AlsRanking.kind]["ndcg"]
        record = {
            "trial": study_trial.number,
            "params": asdict(trial.params),
            "confidence": trial.confidence.to_dict(),
            f"validation_ndcg@{K}": scores[key],
        }
        history.append(record)
        log.info("  trial %d: validation NDCG@%d %.4f  (%s)", study_trial.number, K, scores[key], trial.describe())
        if on_trial:
            on_trial(record | {"best": max(scores.values())})
        return scores[key]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=base.params.seed))
    study.enqueue_trial({name: base.values()[name] for name in space})
    study.optimize(objective, n_trials=trials)
    best = base.with_values(study.best_params)
    log.info(
        "[tune] best: trial %d, validation NDCG@%d %.4f (%s)",
        study.best_trial.number, K, study.best_value, best.describe(),
    )  # fmt: skip
    return best, history
