"""The two ways a model is judged before it ships: held out per user, or in time as a nightly retrain lives.

- `UserSplit`: each user's latest 20% of videos held out; ALS against most-popular and most-watched.
- `TimeSplit` (the default when the catalogue says when videos were published): everything before a cut
  `test_days` before the data end trains, the satisfying first watches after it judge, of videos that existed at
  the cut; trending (views in the last days before the cut) joins the baselines. With a catalogue, videos with
  little history take factors from their metadata (vrmodels.training.coldstart), and the second stage is learned
  on the window before the cut from a stage 1 fitted before that window, then judged at the cut.

Each `judge` returns a `Judgement`: the metrics, the kind that ships, and, for a time split with a second stage,
what the shipped ranker is learned from (`TimeSplit.shipped_ranker`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix

from features.feature_set import FeatureSet
from vrmodels.model.indices import NO_VIDEOS
from vrmodels.model.lightgbm_ranker import LightGBMRanker
from vrmodels.model.narrowing import Narrowing
from vrmodels.model.popularity import clicks, engagement
from vrmodels.model.ranking.als import AlsRanking
from vrmodels.model.ranking.base import QueryBatch
from vrmodels.model.ranking.twostage import TwoStageRanking
from vrmodels.model.topk import CatalogueTopK
from vrmodels.model.videos import RECENT_DAYS, VideoTables
from vrmodels.training.als import TrainParams, fit_als
from vrmodels.training.coldstart import with_priors
from vrmodels.training.evaluation import (
    CURVE_MAX_K,
    SplitEvaluation,
    catalogue_lists,
    evaluate_split,
    evaluated_users,
    padded_lists,
    popularity_lists,
    score_lists,
)
from vrmodels.training.learn_ranker import TooLittleToLearn, learn
from vrmodels.training.relevance import Relevance
from vrmodels.training.split import DAY, Window, holdout, train_matrix, window
from vrmodels.training.tables import codes, video_tables

log = logging.getLogger(__name__)

TEST_FRACTION = 0.2
USER_HOLDOUT = {"split": "per-user latest by time", "test_fraction": TEST_FRACTION}  # the manifest's record of it


@dataclass(frozen=True)
class LearnedRanker:
    ranker: LightGBMRanker
    account: dict
    """What it learned from (the manifest's `ranker` entry)."""


@dataclass(frozen=True)
class Stage1:
    """The ALS fitted before a time split's cut, with what the shipped ranker learns from it."""

    window: Window
    model: AlternatingLeastSquares
    items: np.ndarray
    tables: VideoTables


@dataclass(frozen=True)
class Judgement:
    evaluation: SplitEvaluation
    kind: str
    """The kind that ships (a vrmodels.model.ranking kind)."""
    judged_ranker: LearnedRanker | None = None
    """The second stage the evaluation judged (learned on the window before the cut)."""
    stage1: Stage1 | None = None


class UserSplit:
    """Each user's latest 20% held out: ALS against most-popular and most-watched."""

    def __init__(self, features: FeatureSet):
        self.features = features
        self.has_tables = features.videos is not None
        self._split: object = None

    def tuning_data(self, relevance: Relevance) -> tuple[FeatureSet, np.ndarray]:
        """The features to tune on and the rows of them that train (the rest is never seen by tuning)."""
        return self.features, self._holdout(relevance).train_rows

    def judge(self, relevance: Relevance, params: TrainParams, show_progress: bool = False) -> Judgement:
        split = self._holdout(relevance)
        log.info(
            "[relevance] %s: %d of %d held-out pairs count as hits",
            relevance.describe(), int(split.relevant_rows.sum()), int(split.test_rows.sum()),
        )  # fmt: skip
        log.info(
            "[evaluate] fitting on %d pairs, holding out %d", int(split.train_rows.sum()), int(split.test_rows.sum())
        )
        if not self.has_tables:
            evaluation = evaluate_split(
                self.features,
                split.train_rows,
                split.relevant_rows,
                params=params,
                max_k=CURVE_MAX_K,
                show_progress=show_progress,
            )
            return Judgement(evaluation, AlsRanking.kind)
        train = self.features.to_csr(split.train_rows)
        model = fit_als(train, params, show_progress)
        items = item_factors(model, self.features, train, tables=None)
        held = self.features.indicator(split.relevant_rows)
        users = evaluated_users(held, params.seed)
        every = np.ones(train.shape[1], dtype=bool)
        lists = {
            AlsRanking.kind: catalogue_lists(
                np.asarray(model.user_factors)[users], items, train[users], k=CURVE_MAX_K, allowed=every
            ),
            "most_popular": popularity_lists(clicks(train), train[users], CURVE_MAX_K, allowed=every),
            "most_watched": popularity_lists(engagement(train), train[users], CURVE_MAX_K, allowed=every),
        }
        evaluation = score_lists(lists, held[users], clicks(train), max_k=CURVE_MAX_K)
        return Judgement(evaluation, AlsRanking.kind)

    def _holdout(self, relevance: Relevance):
        if self._split is None:
            self._split = holdout(self.features.interactions, relevance.mask(self.features.pair_events), TEST_FRACTION)
        return self._split

    def describe(self, with_ranker: bool = False) -> dict:
        """The hold-out, as the manifest's evaluation entry records it."""
        return dict(USER_HOLDOUT)


class TimeSplit:
    """Everything before a cut trains, the next `test_days` judge; the ranker learns on the window before."""

    def __init__(self, features: FeatureSet, *, test_days: int, use_ranker: bool, min_positives: int):
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
        """The features before the cut and their rows (tuning never sees the judged days)."""
        judged = window(self.features, relevance, self.cut, self.end)
        return judged.before, judged.train_rows

    def judge(self, relevance: Relevance, params: TrainParams, show_progress: bool = False) -> Judgement:
        judged = window(self.features, relevance, self.cut, self.end)
        log.info(
            "[relevance] %s: %d of %d pairs first watched in the %d days after the cut count as hits",
            relevance.describe(), int(judged.relevant_rows.sum()), int(judged.test_rows.sum()), self.test_days,
        )  # fmt: skip
        train = train_matrix(judged)
        log.info("[evaluate] fitting on %d pairs before the cut", train.nnz)
        model = fit_als(train, params, show_progress)
        tables = video_tables(self.features, relevance, self.cut) if self.has_tables else None
        items = item_factors(model, self.features, train, tables=tables, exists=judged.known_videos)
        held = self.features.indicator(judged.relevant_rows)
        users = evaluated_users(held, params.seed, among=np.diff(train.indptr) > 0)
        allowed, filters = judged.known_videos, train[users]
        lists = {
            AlsRanking.kind: catalogue_lists(
                np.asarray(model.user_factors)[users], items, filters, k=CURVE_MAX_K, allowed=allowed
            ),
            "most_popular": popularity_lists(clicks(train), filters, CURVE_MAX_K, allowed=allowed),
            "most_watched": popularity_lists(engagement(train), filters, CURVE_MAX_K, allowed=allowed),
            "trending": popularity_lists(recent_clicks(self.features, self.cut), filters, CURVE_MAX_K, allowed=allowed),
        }
        judged_ranker = None
        if self.use_ranker:
            try:
                judged_ranker = self.learn_ranker(relevance, params, cut=self.ranker_cut, end=self.cut)
            except TooLittleToLearn as reason:
                log.warning("[ranker] none: %s; ALS alone ships (--ranker on learns one anyway)", reason)
        if judged_ranker is not None:
            ranking = TwoStageRanking(
                items,
                CatalogueTopK(items),
                NO_VIDEOS,
                tables=tables,
                ranker=judged_ranker.ranker,  # type: ignore[arg-type]
            )
            plain = Narrowing(NO_VIDEOS)
            batch = QueryBatch.of_users(model.user_factors, train, users, k=CURVE_MAX_K, narrowing=plain)
            lists[TwoStageRanking.kind] = padded_lists(ranking.rank(batch), CURVE_MAX_K)
        fresh = None
        if tables is not None:
            with np.errstate(invalid="ignore"):
                fresh = allowed & (tables.published >= self.cut - RECENT_DAYS * DAY)
        evaluation = score_lists(lists, held[users], clicks(train), max_k=CURVE_MAX_K, fresh=fresh)
        if judged_ranker is None:
            return Judgement(evaluation, AlsRanking.kind)
        return Judgement(
            evaluation,
            TwoStageRanking.kind,
            judged_ranker,
            Stage1(judged, model, items, tables),  # type: ignore[arg-type]
        )

    def shipped_ranker(self, judgement: Judgement, relevance: Relevance, seed: int) -> LearnedRanker:
        """The ranker that ships: learned on the judged window, from the stage 1 fitted before it; the judged ranker
        itself when that window is too thin to learn from."""
        stage1, judged = judgement.stage1, judgement.judged_ranker
        assert stage1 is not None and judged is not None, "only a judgement with a second stage ships a ranker"
        judged_on = {"judged_on": {"from": self.ranker_cut, "to": self.cut}}
        try:
            learned = self._learn_on(stage1, relevance, seed)
        except TooLittleToLearn as reason:
            log.warning("[ranker] the last window is too thin (%s): the judged ranker ships", reason)
            window_of = {"window": {"from": self.ranker_cut, "to": self.cut}}
            return LearnedRanker(judged.ranker, judged.account | window_of | judged_on)
        return LearnedRanker(
            learned.ranker, learned.account | {"window": {"from": self.cut, "to": self.end}} | judged_on
        )

    def learn_ranker(self, relevance: Relevance, params: TrainParams, *, cut: int, end: int) -> LearnedRanker:
        """A ranker learned on [cut, end) from a stage 1 fitted before `cut`."""
        learning = window(self.features, relevance, cut, end)
        train = train_matrix(learning)
        log.info("[ranker] stage 1 fitted on %d pairs before the ranker's window", train.nnz)
        model = fit_als(train, params)
        tables = video_tables(self.features, relevance, cut)
        items = item_factors(model, self.features, train, tables=tables, exists=learning.known_videos)
        return self._learn_on(Stage1(learning, model, items, tables), relevance, params.seed)

    def _learn_on(self, stage1: Stage1, relevance: Relevance, seed: int) -> LearnedRanker:
        train = train_matrix(stage1.window)
        labels = self.features.indicator(stage1.window.relevant_rows)
        users = np.flatnonzero((np.diff(labels.indptr) > 0) & (np.diff(train.indptr) > 0))
        stages = TwoStageRanking(stage1.items, CatalogueTopK(stage1.items), NO_VIDEOS, tables=stage1.tables)
        user_factors = stage1.model.user_factors

        def batch_of(chunk: np.ndarray) -> QueryBatch:
            return QueryBatch.of_users(user_factors, train, chunk, k=stages.pool, narrowing=Narrowing(NO_VIDEOS))

        ranker, account = learn(stages, batch_of, labels, users=users, seed=seed, min_positives=self.min_positives)
        return LearnedRanker(ranker, account)

    def describe(self, with_ranker: bool = False) -> dict:
        """The hold-out, as the manifest's evaluation entry records it (`with_ranker`: a second stage ships)."""
        return {
            "split": "time",
            "test_days": self.test_days,
            "cut": self.cut,
            "data_end": self.end,
            "ranker_window": [self.ranker_cut, self.cut] if with_ranker else None,
        }


def item_factors(
    model: AlternatingLeastSquares,
    features: FeatureSet,
    train: csr_matrix,
    *,
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
    return with_priors(items, users, channels, categories=categories, exists=exists)


def recent_clicks(features: FeatureSet, time: int) -> np.ndarray:
    """Per video, the distinct users who watched it in the RECENT_DAYS before `time`: the trending baseline."""
    events = features.pair_events
    recent = (events.timestamp >= time - RECENT_DAYS * DAY) & (events.timestamp < time)
    pairs = np.zeros(len(features.interactions), dtype=bool)
    pairs[events.pair[recent]] = True
    video = features.interactions["video_index"].to_numpy()
    return np.bincount(video[pairs], minlength=len(features.video_ids)).astype(np.float32)
