"""The implicit trainer: judge the model on a hold-out against the baselines (the quality gate), then fit what
ships on every event.

Two ways to hold out (vrmodels.training.split):
- `user`: each user's latest 20% of videos; ALS against most-popular and most-watched.
- `time` (the default when the catalogue says when videos were published): everything before a cut `test_days`
  before the data end trains, the satisfying first watches after it judge, of videos that existed at the cut; a
  third baseline, trending (views in the last days before the cut), joins. With a catalogue, videos with little
  history take factors from their metadata (vrmodels.training.coldstart), and the second stage (`ranker`) is
  learned on the window before the cut from a stage 1 fitted before that window, then judged at the cut.

What ships: ALS refitted on every event, the catalogue tables as of the data end, and a ranker learned on the
last window (the one the evaluation judged on) from the stage 1 fitted before it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix

from features.confidence import ConfidenceConfig
from features.feature_set import FeatureSet
from vrmodels.model.artifacts import ModelArtifacts
from vrmodels.model.catalogue import CatalogueRanker
from vrmodels.model.popularity import clicks, engagement
from vrmodels.model.ranker import Ranker
from vrmodels.model.topn import DEFAULT_TOPN
from vrmodels.model.twostage import Profiles, TwoStage
from vrmodels.model.videos import RECENT_DAYS, VideoTables
from vrmodels.training.als import TrainParams, fit_als
from vrmodels.training.assemble import assemble
from vrmodels.training.coldstart import with_priors
from vrmodels.training.evaluation import (
    CURVE_MAX_K,
    MAX_EVALUATED_USERS,
    K,
    SplitEvaluation,
    catalogue_lists,
    evaluate_split,
    evaluated_users,
    padded_lists,
    popularity_lists,
    quality_gate,
    score_lists,
)
from vrmodels.training.ranker import MIN_POSITIVES, TooLittleToLearn, learn
from vrmodels.training.relevance import DEFAULT_MIN_COMPLETION, Relevance
from vrmodels.training.split import DAY, Window, holdout, train_matrix, window
from vrmodels.training.tables import FALLBACK_HALF_LIFE_DAYS, codes, recent_engagement, video_tables
from vrmodels.training.tuning import Trial, tune

log = logging.getLogger(__name__)

TEST_FRACTION = 0.2
DEFAULT_TEST_DAYS = 7
SPLITS = ("auto", "user", "time")
RANKER_MODES = ("auto", "on", "off")


@dataclass
class TrainResult:
    model: AlternatingLeastSquares
    """Fitted on every event: what ships."""
    params: TrainParams
    confidence: ConfidenceConfig
    features: FeatureSet
    """The features the model was fitted on (re-aggregated when tuning chose other confidence parameters)."""
    relevance: Relevance
    evaluation: SplitEvaluation
    tuning: list[dict] | None
    split: dict
    """How the evaluation held out (the manifest's `evaluation` entry reads it)."""
    item_factors: np.ndarray
    """The shipped item factors: ALS's, blended with metadata priors when there is a catalogue."""
    tables: VideoTables | None = None
    ranker: Ranker | None = None
    ranker_account: dict | None = None

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return self.evaluation.metrics

    @property
    def shipped(self) -> str:
        """The name of the shipped model in the metrics."""
        return "two_stage" if self.ranker is not None else "als"


def train(
    features: FeatureSet,
    params: TrainParams = TrainParams(),
    tune_trials: int = 0,
    allow_worse: bool = False,
    show_progress: bool = False,
    relevant_completion: float = DEFAULT_MIN_COMPLETION,
    relevant_min_rating: float | None = None,
    on_trial: Callable[[dict], None] | None = None,
    split: str = "auto",
    test_days: int = DEFAULT_TEST_DAYS,
    ranker: str = "auto",
) -> TrainResult:
    """Raises QualityGateError (nothing fitted on all data) unless the shipped model beats the best baseline on
    NDCG@10 or allow_worse; ValueError for options the data cannot honour. `on_trial` hears of each tuning trial."""
    relevance = Relevance.for_events(features.pair_events, relevant_completion, relevant_min_rating)
    split = choose_split(split, features)
    use_ranker = choose_ranker(ranker, features, split)
    min_positives = MIN_POSITIVES if ranker == "auto" else 1
    trainer = TimeSplit(features, test_days, use_ranker, min_positives) if split == "time" else UserSplit(features)
    chosen, tuning = Trial(params, features.confidence_config), None
    if tune_trials:
        log.info("[tune] %d trials on a validation split of the training part", tune_trials)
        before, rows = trainer.tuning_data(relevance)
        chosen, tuning = tune(before, rows, relevance.mask(before.pair_events), tune_trials, chosen, on_trial)
        features = features.with_confidence(chosen.confidence)
        trainer = TimeSplit(features, test_days, use_ranker, min_positives) if split == "time" else UserSplit(features)
    evaluation, shipped_ranker = trainer.evaluate(relevance, chosen.params, show_progress)
    use_ranker = shipped_ranker is not None
    shipped = "two_stage" if use_ranker else "als"
    quality_gate(evaluation.metrics, relevance, allow_worse, shipped)
    log.info("[refit] on all %d pairs", len(features.interactions))
    model = fit_als(features.to_csr(), chosen.params, show_progress)
    tables = video_tables(features, relevance, features.data_end) if trainer.has_tables else None
    item_factors = _item_factors(model, features, features.to_csr(), tables)
    ranker_model, account = shipped_ranker() if shipped_ranker else (None, None)
    return TrainResult(
        model, chosen.params, chosen.confidence, features, relevance, evaluation, tuning, trainer.describe(),
        item_factors, tables, ranker_model, account,
    )  # fmt: skip


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


class UserSplit:
    """Each user's latest 20% held out: ALS against most-popular and most-watched."""

    def __init__(self, features: FeatureSet):
        self.features = features
        self.has_tables = features.videos is not None
        self._split: object = None

    def tuning_data(self, relevance: Relevance) -> tuple[FeatureSet, np.ndarray]:
        return self.features, self._holdout(relevance).train_rows

    def evaluate(self, relevance: Relevance, params: TrainParams, show_progress: bool) -> tuple:
        split = self._holdout(relevance)
        log.info(
            "[relevance] %s: %d of %d held-out pairs count as hits",
            relevance.describe(), int(split.relevant_rows.sum()), int(split.test_rows.sum()),
        )  # fmt: skip
        log.info(
            "[evaluate] fitting on %d pairs, holding out %d", int(split.train_rows.sum()), int(split.test_rows.sum())
        )
        if not self.has_tables:
            return evaluate_split(
                self.features, split.train_rows, split.relevant_rows, params, CURVE_MAX_K, show_progress
            ), None
        train = self.features.to_csr(split.train_rows)
        model = fit_als(train, params, show_progress)
        items = _item_factors(model, self.features, train, None)
        held = self.features.indicator(split.relevant_rows)
        users = evaluated_users(held, params.seed)
        every = np.ones(train.shape[1], dtype=bool)
        lists = {
            "als": catalogue_lists(np.asarray(model.user_factors)[users], items, train[users], CURVE_MAX_K, every),
            "most_popular": popularity_lists(clicks(train), train[users], CURVE_MAX_K, every),
            "most_watched": popularity_lists(engagement(train), train[users], CURVE_MAX_K, every),
        }
        return score_lists(lists, held[users], clicks(train), CURVE_MAX_K), None

    def _holdout(self, relevance: Relevance):
        if self._split is None:
            self._split = holdout(self.features.interactions, relevance.mask(self.features.pair_events), TEST_FRACTION)
        return self._split

    def describe(self) -> dict:
        return {"split": "per-user latest by time", "test_fraction": TEST_FRACTION}


class TimeSplit:
    """Everything before a cut trains, the next `test_days` judge; the ranker learns on the window before."""

    def __init__(self, features: FeatureSet, test_days: int, use_ranker: bool, min_positives: int):
        if test_days <= 0:
            raise ValueError(f"--test-days must be positive, got {test_days}")
        self.features = features
        self.use_ranker = use_ranker
        self.min_positives = min_positives
        self.has_tables = features.videos is not None or use_ranker
        first = int(features.interactions["first_timestamp"].min()) if len(features.interactions) else 0
        self.end = features.data_end
        self.cut = self.end - test_days * DAY
        self.ranker_cut = self.cut - test_days * DAY
        needed = self.ranker_cut if use_ranker else self.cut
        if needed <= first:
            raise ValueError(
                f"the events span {(self.end - first) / DAY:.1f} days: a time split of {test_days} test days "
                f"{'(and as many to learn the ranker on) ' if use_ranker else ''}leaves nothing to train on; "
                "lower --test-days or use --split user"
            )
        self.test_days = test_days

    def tuning_data(self, relevance: Relevance) -> tuple[FeatureSet, np.ndarray]:
        judged = window(self.features, relevance, self.cut, self.end)
        return judged.before, judged.train_rows

    def evaluate(self, relevance: Relevance, params: TrainParams, show_progress: bool) -> tuple:
        judged = window(self.features, relevance, self.cut, self.end)
        log.info(
            "[relevance] %s: %d of %d pairs first watched in the %d days after the cut count as hits",
            relevance.describe(), int(judged.relevant_rows.sum()), int(judged.test_rows.sum()), self.test_days,
        )  # fmt: skip
        train = train_matrix(judged)
        log.info("[evaluate] fitting on %d pairs before the cut", train.nnz)
        model = fit_als(train, params, show_progress)
        tables = video_tables(self.features, relevance, self.cut) if self.has_tables else None
        items = _item_factors(model, self.features, train, tables, judged.known_videos)
        held = self.features.indicator(judged.relevant_rows)
        users = evaluated_users(held, params.seed, among=np.diff(train.indptr) > 0)
        allowed, filters = judged.known_videos, train[users]
        lists = {
            "als": catalogue_lists(np.asarray(model.user_factors)[users], items, filters, CURVE_MAX_K, allowed),
            "most_popular": popularity_lists(clicks(train), filters, CURVE_MAX_K, allowed),
            "most_watched": popularity_lists(engagement(train), filters, CURVE_MAX_K, allowed),
            "trending": popularity_lists(_recent_clicks(self.features, self.cut), filters, CURVE_MAX_K, allowed),
        }
        judged_ranker: tuple[Ranker, dict] | None = None
        if self.use_ranker:
            try:
                judged_ranker = self.learn_ranker(relevance, params, self.ranker_cut, self.cut, show_progress)
            except TooLittleToLearn as reason:
                log.warning("[ranker] none: %s; ALS alone ships (--ranker on learns one anyway)", reason)
                self.use_ranker = False
        if judged_ranker is not None:
            two_stage = TwoStage(items, tables, CatalogueRanker(items), judged_ranker[0])  # type: ignore[arg-type]
            ranked = two_stage.rank(Profiles.of_users(model.user_factors, train, users), CURVE_MAX_K)
            lists["two_stage"] = padded_lists(*ranked, CURVE_MAX_K)
        fresh = None
        if tables is not None:
            with np.errstate(invalid="ignore"):
                fresh = allowed & (tables.published >= self.cut - RECENT_DAYS * DAY)
        evaluation = score_lists(lists, held[users], clicks(train), CURVE_MAX_K, fresh)

        def shipped_ranker() -> tuple[Ranker, dict]:
            """The ranker that ships: learned on the judged window, from the stage 1 fitted before it; the judged
            ranker itself when that window is too thin to learn from."""
            judged_on = {"judged_on": {"from": self.ranker_cut, "to": self.cut}}
            try:
                ranker, account = self._learn_on(
                    judged, relevance, model, items, tables, params.seed, self.min_positives
                )
            except TooLittleToLearn as reason:
                log.warning("[ranker] the last window is too thin (%s): the judged ranker ships", reason)
                ranker, account = judged_ranker  # type: ignore[misc]
                return ranker, account | {"window": {"from": self.ranker_cut, "to": self.cut}} | judged_on
            return ranker, account | {"window": {"from": self.cut, "to": self.end}} | judged_on

        return evaluation, shipped_ranker if self.use_ranker else None

    def learn_ranker(
        self, relevance: Relevance, params: TrainParams, cut: int, end: int, show_progress: bool
    ) -> tuple[Ranker, dict]:
        """A ranker learned on [cut, end) from a stage 1 fitted before `cut`."""
        learning = window(self.features, relevance, cut, end)
        train = train_matrix(learning)
        log.info("[ranker] stage 1 fitted on %d pairs before the ranker's window", train.nnz)
        model = fit_als(train, params, show_progress)
        tables = video_tables(self.features, relevance, cut)
        items = _item_factors(model, self.features, train, tables, learning.known_videos)
        return self._learn_on(learning, relevance, model, items, tables, params.seed, self.min_positives)

    def _learn_on(
        self,
        learning: Window,
        relevance: Relevance,
        model: AlternatingLeastSquares,
        items: np.ndarray,
        tables: VideoTables,
        seed: int,
        min_positives: int,
    ) -> tuple[Ranker, dict]:
        train = train_matrix(learning)
        labels = self.features.indicator(learning.relevant_rows)
        users = np.flatnonzero((np.diff(labels.indptr) > 0) & (np.diff(train.indptr) > 0))
        two_stage = TwoStage(items, tables, CatalogueRanker(items))
        profiles = lambda chunk: Profiles.of_users(model.user_factors, train, chunk)  # noqa: E731
        return learn(two_stage, profiles, labels, users, seed, min_positives)

    def describe(self) -> dict:
        return {
            "split": "time",
            "test_days": self.test_days,
            "cut": self.cut,
            "data_end": self.end,
            "ranker_window": [self.ranker_cut, self.cut] if self.use_ranker else None,
        }


def _item_factors(
    model: AlternatingLeastSquares,
    features: FeatureSet,
    train: csr_matrix,
    tables: VideoTables | None,
    exists: np.ndarray | None = None,
) -> np.ndarray:
    """ALS's item factors, blended with their metadata priors when there is a catalogue (vrmodels.training.coldstart);
    videos that did not `exist` yet keep zero factors."""
    items = np.asarray(model.item_factors, dtype=np.float32)
    if features.videos is None:
        return items
    channels, categories, _ = codes(features)
    users = np.bincount(train.indices, minlength=train.shape[1]).astype(np.float64)
    if exists is None:
        exists = tables.available() if tables is not None else np.ones(len(items), dtype=bool)
    return with_priors(items, users, channels, categories, exists)


def _recent_clicks(features: FeatureSet, time: int) -> np.ndarray:
    """Per video, the distinct users who watched it in the RECENT_DAYS before `time`: the trending baseline."""
    events = features.pair_events
    recent = (events.timestamp >= time - RECENT_DAYS * DAY) & (events.timestamp < time)
    pairs = np.zeros(len(features.interactions), dtype=bool)
    pairs[events.pair[recent]] = True
    video = features.interactions["video_index"].to_numpy()
    return np.bincount(video[pairs], minlength=len(features.video_ids)).astype(np.float32)


def evaluation_manifest(relevance: Relevance, evaluation: SplitEvaluation, split: dict | None = None) -> dict:
    return {
        "k": K,
        **(split or {"split": "per-user latest by time", "test_fraction": TEST_FRACTION}),
        "max_evaluated_users": MAX_EVALUATED_USERS,
        "relevance": relevance.to_dict(),
        "curves": evaluation.curves,
    }


def to_artifacts(result: TrainResult, topn_size: int = DEFAULT_TOPN, ann_mode: str = "auto") -> ModelArtifacts:
    """The model directory's content, with the serving aids it asks for."""
    features = result.features
    manifest = {
        "algorithm": "implicit.als.AlternatingLeastSquares" + (" + LightGBM lambdarank" if result.ranker else ""),
        "parameters": asdict(result.params),
        "confidence": result.confidence.to_dict(),
        "data": {"features": features.report},
        "evaluation": evaluation_manifest(result.relevance, result.evaluation, result.split),
        "metrics": result.metrics,
        "shipped": result.shipped,
        "tuning": result.tuning,
    }
    if result.ranker_account is not None:
        manifest["ranker"] = result.ranker_account
    popularity = None
    if result.tables is not None:
        popularity = recent_engagement(features, features.data_end)
        manifest["fallback"] = f"engagement halved every {FALLBACK_HALF_LIFE_DAYS:g} days before the data end"
    return assemble(
        result.model.user_factors, result.item_factors, features.to_csr(), features.user_ids, features.video_ids,
        manifest, topn_size, ann_mode, result.tables, result.ranker, popularity,
    )  # fmt: skip
