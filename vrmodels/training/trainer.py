"""The implicit trainer: judge the model on a hold-out against the baselines (the quality gate), then fit what
ships on every event.

The steps: choose the hold-out (vrmodels.training.holdouts), tune on the training part when asked
(vrmodels.training.tuning), judge, refuse a model that does not beat the best baseline at home (or, judged in
session, loses to watched-next alone there), then refit ALS on every event, build the session tables and, with a
catalogue, the tables as of the data end and the ranker learned on the last window. What ships is a
`TrainedModel` (vrmodels.training.model_dir), the same record the Spark trainer produces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from features.confidence import ConfidenceConfig
from features.feature_set import FeatureSet
from vrmodels.model.manifest import Evaluation, Manifest
from vrmodels.model.ranking.sequential import SequentialRanking
from vrmodels.training.als import TrainParams, fit_als
from vrmodels.training.evaluation import MAX_EVALUATED_USERS, K, SplitEvaluation, in_session_gate, quality_gate
from vrmodels.training.holdouts import TimeSplit, UserSplit, item_factors
from vrmodels.training.learn_ranker import MIN_POSITIVES
from vrmodels.training.model_dir import TrainedModel
from vrmodels.training.options import RANKER_MODES, SPLITS, TrainingOptions
from vrmodels.training.relevance import Relevance
from vrmodels.training.sessions import session_tables
from vrmodels.training.tables import FALLBACK_HALF_LIFE_DAYS, recent_engagement, video_tables
from vrmodels.training.tuning import Trial, tune

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    trained: TrainedModel
    """What ships (vrmodels.training.model_dir.to_artifacts makes its model directory)."""
    params: TrainParams
    confidence: ConfidenceConfig
    relevance: Relevance
    evaluation: SplitEvaluation

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return self.evaluation.metrics

    @property
    def kind(self) -> str:
        return self.trained.manifest.kind


def train(
    features: FeatureSet,
    params: TrainParams = TrainParams(),
    options: TrainingOptions = TrainingOptions(),
    *,
    show_progress: bool = False,
    on_trial: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Raises QualityGateError (nothing fitted on all data) unless the shipped model beats the best baseline on
    NDCG@10 or `options.allow_worse`; ValueError for options the data cannot honour. `on_trial` hears of each
    tuning trial."""
    relevance = Relevance.for_events(features.pair_events, options.relevant_completion, options.relevant_min_rating)
    split = choose_split(options.split, features)
    use_ranker = choose_ranker(options.ranker, features, split)
    min_positives = MIN_POSITIVES if options.ranker == "auto" else 1

    def holdout_of(features: FeatureSet) -> UserSplit | TimeSplit:
        if split == "user":
            return UserSplit(features)
        return TimeSplit(features, test_days=options.test_days, use_ranker=use_ranker, min_positives=min_positives)

    holdout = holdout_of(features)
    chosen, tuning = Trial(params, features.confidence_config), None
    if options.trials:
        log.info("[tune] %d trials on a validation split of the training part", options.trials)
        before, rows = holdout.tuning_data(relevance)
        relevant = relevance.mask(before.pair_events)
        chosen, tuning = tune(before, rows, relevant, trials=options.trials, base=chosen, on_trial=on_trial)
        features = features.with_confidence(chosen.confidence)
        holdout = holdout_of(features)
    judgement = holdout.judge(relevance, chosen.params, show_progress)
    quality_gate(judgement.evaluation.metrics, relevance, allow_worse=options.allow_worse, kind=judgement.kind)
    in_session_gate(judgement.judgements.get("in_session", {}), allow_worse=options.allow_worse, kind=judgement.kind)
    log.info("[refit] on all %d pairs", len(features.interactions))
    user_items = features.to_csr()
    model = fit_als(user_items, chosen.params, show_progress)
    tables = video_tables(features, relevance, features.data_end) if holdout.has_tables else None
    known = holdout.watches(relevance) if isinstance(holdout, TimeSplit) else None  # sorted once already
    sessions, sessions_entry = session_tables(features, relevance=relevance, time=features.data_end, watches=known)
    sessions_entry = judgement.tuned(sessions_entry)
    shipped = None
    if judgement.kind == SequentialRanking.kind:
        shipped = holdout.shipped_ranker(judgement, relevance, chosen.params.seed)  # type: ignore[union-attr]
    manifest = Manifest(
        kind=judgement.kind,
        algorithm="implicit.als.AlternatingLeastSquares" + (" + LightGBM lambdarank" if shipped else ""),
        parameters=asdict(chosen.params),
        confidence=chosen.confidence.to_dict(),
        data={"features": features.report},
        evaluation=evaluation_entry(relevance, judgement.evaluation, holdout.describe(shipped is not None)),
        metrics=judgement.evaluation.metrics,
        judgements=judgement.judgements,
        tuning=tuning,
        sessions=sessions_entry,
        ranker=shipped.account if shipped else None,
        fallback=f"engagement halved every {FALLBACK_HALF_LIFE_DAYS:g} days before the data end" if tables else None,
    )
    trained = TrainedModel(
        user_factors=model.user_factors,
        item_factors=item_factors(model, features, user_items, tables=tables),
        user_items=user_items,
        user_ids=features.user_ids,
        video_ids=features.video_ids,
        manifest=manifest,
        tables=tables,
        ranker=shipped.ranker if shipped else None,
        popularity=recent_engagement(features, features.data_end) if tables is not None else None,
        sessions=sessions,
    )
    return TrainResult(trained, chosen.params, chosen.confidence, relevance, judgement.evaluation)


def choose_split(split: str, features: FeatureSet) -> str:
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split != "auto":
        return split
    dated = features.videos is not None and features.videos["published_at"].notna().any()
    return "time" if dated else "user"


def choose_ranker(ranker: str, features: FeatureSet, split: str) -> bool:
    if ranker not in RANKER_MODES:
        raise ValueError(f"--ranker must be one of {', '.join(RANKER_MODES)}, got {ranker!r}")
    if ranker == "on" and split != "time":
        raise ValueError("--ranker on learns from a time window: use --split time (or a catalogue with published_at)")
    return ranker == "on" or (ranker == "auto" and split == "time" and features.videos is not None)


def evaluation_entry(relevance: Relevance, evaluation: SplitEvaluation, holdout: dict) -> Evaluation:
    """The manifest's evaluation entry: the cut-off, the hold-out, the relevance and the curves."""
    return Evaluation(
        k=K,
        **holdout,
        max_evaluated_users=MAX_EVALUATED_USERS,
        relevance=relevance.to_dict(),
        curves=evaluation.curves,
    )
