"""What a training run may be told, declared once (features.options) for every way of starting one.

`vrmodels.train_model` offers every option below and ALS's parameters (TrainParams); `vrmodels.train_spark` the
ones of SPARK_OPTIONS and Spark's parameters (SparkParams); the SageMaker training job reads all of them, and
the confidence parameters (features.confidence.ConfidenceConfig), as hyperparameters, by the same names.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from features.options import declared, option
from vrmodels.model.booleans import parse_bool
from vrmodels.model.topn import DEFAULT_TOPN
from vrmodels.training.aids import ANN_MODES
from vrmodels.training.relevance import DEFAULT_MIN_COMPLETION
from vrmodels.training.tuning import DEFAULT_TUNE_TRIALS

SPLITS = ("auto", "user", "time")
RANKER_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class TrainingOptions:
    split: str = option(
        "auto", "how to hold out: per user, or in time (auto: time when the catalogue has published_at)", choices=SPLITS
    )
    test_days: int = option(7, "with a time split, the days after the cut that judge")
    ranker: str = option(
        "auto", "the learned second stage (auto: on with a catalogue and a time split)", choices=RANKER_MODES
    )
    tune: bool = option(False, "search ALS and confidence parameters first")
    tune_trials: int = option(DEFAULT_TUNE_TRIALS, "budget for tune")
    relevant_completion: float = option(
        DEFAULT_MIN_COMPLETION, "with watch data, a held-out view counts as a hit from this completion on"
    )
    relevant_min_rating: float | None = option(None, "with rating data, only held-out ratings ≥ this count as hits")
    allow_worse: bool = option(False, "ship even if the model loses to the baselines")
    topn: int = option(DEFAULT_TOPN, "precompute each user's top N for serving (0: none, every request is scored)")
    ann: str = option(
        "auto",
        "approximate top-k indexes for large catalogues (auto: from 100,000 videos; docs/large-catalogues.md)",
        choices=ANN_MODES,
    )

    @property
    def trials(self) -> int:
        """Tuning trials to run: tune_trials when tuning, else none."""
        return self.tune_trials if self.tune else 0


SPARK_OPTIONS = ("relevant_completion", "relevant_min_rating", "allow_worse", "topn", "ann")


class HyperparameterError(ValueError):
    """A hyperparameter that does not parse; the message names it and what it expects."""


def from_hyperparameters(values: Mapping[str, str], cls: type, only: Collection[str] | None = None) -> dict[str, Any]:
    """The options of `cls` among SageMaker's hyperparameters (every value a string), typed as declared."""
    typed: dict[str, Any] = {}
    for item, kind in declared(cls, only):
        if item.name not in values:
            continue
        raw = values[item.name].strip()
        try:
            value = parse_bool(raw) if kind is bool else json.loads(raw) if kind is dict else kind(raw)
        except ValueError:
            expected = "true or false" if kind is bool else kind.__name__
            raise HyperparameterError(f"hyperparameter {item.name}={raw!r}: expected {expected}") from None
        choices = item.metadata["choices"]
        if choices and value not in choices:
            raise HyperparameterError(f"hyperparameter {item.name}={raw!r}: expected one of {', '.join(choices)}")
        typed[item.name] = value
    return typed
