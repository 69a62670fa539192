"""The two ways a model is judged before it ships: held out per user, or in time as a nightly retrain lives.

- `UserSplit`: each user's latest 20% of videos held out; ALS against most-popular and most-watched.
- `TimeSplit` (the default when the catalogue says when videos were published): everything before a cut
  `test_days` before the data end trains, the satisfying first watches after it judge, of videos that existed at
  the cut; trending (views in the last days before the cut) joins the baselines. With a catalogue, videos with
  little history take factors from their metadata (vrmodels.training.coldstart), and the sequence-aware second
  stage is learned on the window before the cut from a stage 1 fitted before that window, then judged at the cut:
  at home (the next `test_days`), in session and up next (each judged user's first sitting after the cut, its
  first watches given: vrmodels.training.in_session), against popularity, trending, watched-next alone, the
  channel's next upload, factor similarity and the order-blind ALS fold-in.

Each `judge` returns a `Judgement`: the metrics, the kind that ships, and, for a time split with a second stage,
what the shipped ranker is learned from (`TimeSplit.shipped_ranker`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix

from features.feature_set import FeatureSet
from features.sittings import Watches
from vrmodels.model.artifacts import ModelArtifacts
from vrmodels.model.indices import NO_VIDEOS
from vrmodels.model.lightgbm_ranker import LightGBMRanker
from vrmodels.model.manifest import Manifest, SessionsEntry
from vrmodels.model.narrowing import Narrowing
from vrmodels.model.popularity import clicks, engagement
from vrmodels.model.queries import Query
from vrmodels.model.ranking.als import AlsRanking
from vrmodels.model.ranking.base import OFFLINE_CHUNK, QueryBatch
from vrmodels.model.ranking.sequential import SequentialRanking
from vrmodels.model.sessions import SessionTables
from vrmodels.model.topk import CatalogueTopK
from vrmodels.model.videos import RECENT_DAYS, VideoTables
from vrmodels.training.als import TrainParams, fit_als
from vrmodels.training.coldstart import with_priors
from vrmodels.training.evaluation import (
    CURVE_MAX_K,
    K,
    SplitEvaluation,
    catalogue_lists,
    evaluate_split,
    evaluated_users,
    padded_lists,
    popularity_lists,
    score_lists,
)
from vrmodels.training.in_session import (
    GIVEN,
    MAX_QUERIES,
    QueryResolution,
    SittingQueries,
    given_filters,
    same_channel_lists,
    sitting_queries,
    tune_blend,
    up_next_lists,
    watched_next_lists,
)
from vrmodels.training.learn_ranker import CHUNK, MAX_USERS, TooLittleToLearn, examples, learn, user_chunks
from vrmodels.training.relevance import Relevance
from vrmodels.training.sessions import DEFAULT_UP_NEXT_BLEND, before, session_tables, watched_next
from vrmodels.training.split import DAY, Window, holdout, train_matrix, window
from vrmodels.training.tables import codes, video_tables

log = logging.getLogger(__name__)

TEST_FRACTION = 0.2
ANONYMOUS_SHARE = 0.3  # of the ranker's in-session examples, those asked with a history alone (no user)
HISTORY_ONLY = "sequential_history_only"  # the judged model asked with a history and no user
LEARN_GIVEN = 3  # a ranker learns from sittings with 1 to this many watches given
LEARN_QUERIES = 5_000  # in-session queries a ranker learns from at most (beside at most MAX_USERS home ones)
USER_HOLDOUT = {"split": "per-user latest by time", "test_fraction": TEST_FRACTION}  # the manifest's record of it


@dataclass(frozen=True)
class LearnedRanker:
    ranker: LightGBMRanker
    account: dict
    """What it learned from (the manifest's `ranker` entry)."""


@dataclass(frozen=True)
class Stage1:
    """ALS fitted before a time split's cut, with the tables as of the cut: what the judged model ranks with, and
    what a ranker learns from on the window after the cut."""

    window: Window
    train: csr_matrix
    model: AlternatingLeastSquares
    items: np.ndarray
    tables: VideoTables | None
    sessions: SessionTables
    entry: SessionsEntry

    def artifacts(self, features: FeatureSet, *, kind: str, ranker: LightGBMRanker | None = None) -> ModelArtifacts:
        """This stage as a model in memory (what the server would load), for resolving queries as it would."""
        return ModelArtifacts(
            user_factors=np.asarray(self.model.user_factors),
            item_factors=self.items,
            user_items=self.train,
            popularity=engagement(self.train),
            user_ids=features.user_ids,
            video_ids=features.video_ids,
            manifest=Manifest(
                kind=kind,
                confidence=features.confidence_config.to_dict(),
                catalogue=self.tables.manifest_entry() if self.tables is not None else None,
                sessions=self.entry,
            ),
            tables=self.tables,
            ranker=ranker,
            sessions=self.sessions,
        )


@dataclass(frozen=True)
class Judgement:
    evaluation: SplitEvaluation
    kind: str
    """The kind that ships (a vrmodels.model.ranking kind)."""
    judged_ranker: LearnedRanker | None = None
    """The second stage the evaluation judged (learned on the window before the cut)."""
    stage1: Stage1 | None = None
    judgements: dict[str, dict] = field(default_factory=dict)
    """In session and up next: per model and baseline, metrics at K (a time split's only)."""

    def tuned(self, entry: SessionsEntry) -> SessionsEntry:
        """`entry` with the up-next blend this judgement tuned (unchanged when it tuned none)."""
        if self.stage1 is None:
            return entry
        return entry.model_copy(
            update={
                "up_next_blend": self.stage1.entry.up_next_blend,
                "up_next_by_blend": self.stage1.entry.up_next_by_blend,
            }
        )


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
        self._watches: Watches | None = None

    def watches(self, relevance: Relevance) -> Watches:
        """Every watch of the log, sitting by sitting (computed once: a sort of every event)."""
        if self._watches is None:
            self._watches = self.features.watches(relevance.events)
        return self._watches

    def tuning_data(self, relevance: Relevance) -> tuple[FeatureSet, np.ndarray]:
        """The features before the cut and their rows (tuning never sees the judged days)."""
        judged = window(self.features, relevance, self.cut, self.end)
        return judged.before, judged.train_rows

    def judge(self, relevance: Relevance, params: TrainParams, show_progress: bool = False) -> Judgement:
        judged = self._stage1(relevance, params, cut=self.cut, end=self.end, show_progress=show_progress)
        log.info(
            "[relevance] %s: %d of %d pairs first watched in the %d days after the cut count as hits",
            relevance.describe(), int(judged.window.relevant_rows.sum()), int(judged.window.test_rows.sum()),
            self.test_days,
        )  # fmt: skip
        train, model, items, tables = judged.train, judged.model, judged.items, judged.tables
        held = self.features.indicator(judged.window.relevant_rows)
        users = evaluated_users(held, params.seed, among=np.diff(train.indptr) > 0)
        allowed, filters = judged.window.known_videos, train[users]
        trending = recent_clicks(self.features, self.cut)
        lists = {
            AlsRanking.kind: catalogue_lists(
                np.asarray(model.user_factors)[users], items, filters, k=CURVE_MAX_K, allowed=allowed
            ),
            "most_popular": popularity_lists(clicks(train), filters, CURVE_MAX_K, allowed=allowed),
            "most_watched": popularity_lists(engagement(train), filters, CURVE_MAX_K, allowed=allowed),
            "trending": popularity_lists(trending, filters, CURVE_MAX_K, allowed=allowed),
        }
        blend, blends = self._tune_blend(relevance, judged)
        tuned = {"up_next_blend": blend, "up_next_by_blend": {f"{key:g}": value for key, value in blends.items()}}
        judged = replace(judged, entry=judged.entry.model_copy(update=tuned))
        learned = None
        if self.use_ranker:
            try:
                learning = self._stage1(relevance, params, cut=self.ranker_cut, end=self.cut)
                learned = self._learn(learning, relevance, params.seed)
            except TooLittleToLearn as reason:
                log.warning("[ranker] none: %s; ALS alone ships (--ranker on learns one anyway)", reason)
        kind = SequentialRanking.kind if learned is not None else AlsRanking.kind
        artifacts = judged.artifacts(self.features, kind=kind, ranker=learned.ranker if learned else None)
        if learned is not None:
            ranking = SequentialRanking.from_artifacts(artifacts, CatalogueTopK(items), NO_VIDEOS)
            batch = QueryBatch.of_users(
                model.user_factors, train, users, k=CURVE_MAX_K, narrowing=Narrowing(NO_VIDEOS),
                sessions=judged.sessions, now=self.cut,
            )  # fmt: skip
            lists[SequentialRanking.kind] = padded_lists(ranking.rank(batch, chunk=OFFLINE_CHUNK), CURVE_MAX_K)
        fresh = None
        if tables is not None:
            with np.errstate(invalid="ignore"):
                fresh = allowed & (tables.published >= self.cut - RECENT_DAYS * DAY)
        evaluation = score_lists(lists, held[users], clicks(train), max_k=CURVE_MAX_K, fresh=fresh)
        judgements = self._in_session(judged, artifacts, relevance, trending=trending, seed=params.seed)
        return Judgement(evaluation, kind, learned if learned is not None else None, judged, judgements)

    def shipped_ranker(self, judgement: Judgement, relevance: Relevance, seed: int) -> LearnedRanker:
        """The ranker that ships: learned on the judged window, from the stage 1 fitted before it; the judged ranker
        itself when that window is too thin to learn from."""
        stage1, judged = judgement.stage1, judgement.judged_ranker
        assert stage1 is not None and judged is not None, "only a judgement with a second stage ships a ranker"
        judged_on = {"judged_on": {"from": self.ranker_cut, "to": self.cut}}
        try:
            learned = self._learn(stage1, relevance, seed)
        except TooLittleToLearn as reason:
            log.warning("[ranker] the last window is too thin (%s): the judged ranker ships", reason)
            window_of = {"window": {"from": self.ranker_cut, "to": self.cut}}
            return LearnedRanker(judged.ranker, judged.account | window_of | judged_on)
        return LearnedRanker(
            learned.ranker, learned.account | {"window": {"from": self.cut, "to": self.end}} | judged_on
        )

    def learn_ranker(self, relevance: Relevance, params: TrainParams, *, cut: int, end: int) -> LearnedRanker:
        """A ranker learned on [cut, end) from a stage 1 fitted before `cut`."""
        return self._learn(self._stage1(relevance, params, cut=cut, end=end), relevance, params.seed)

    def _stage1(
        self, relevance: Relevance, params: TrainParams, *, cut: int, end: int, show_progress: bool = False
    ) -> Stage1:
        """ALS fitted on what happened before `cut`, with the catalogue and session tables as of then; judged (or
        learned from) on [cut, end)."""
        learning = window(self.features, relevance, cut, end)
        train = train_matrix(learning)
        log.info("[stage 1] fitted on %d pairs before %d", train.nnz, cut)
        model = fit_als(train, params, show_progress)
        tables = video_tables(self.features, relevance, cut) if self.has_tables else None
        items = item_factors(model, self.features, train, tables=tables, exists=learning.known_videos)
        sessions, entry = session_tables(
            learning.before, relevance=relevance, time=cut, rows=learning.train_rows, watches=self.watches(relevance)
        )
        return Stage1(learning, train, model, items, tables, sessions, entry)

    def _learn(self, stage1: Stage1, relevance: Relevance, seed: int) -> LearnedRanker:
        """The sequence-aware ranker, learned on stage 1's window from its home queries (every user with a
        satisfying first watch in it) and its in-session ones (each user's first sitting in it)."""
        labels = self.features.indicator(stage1.window.relevant_rows)
        train = stage1.train
        users = np.flatnonzero((np.diff(labels.indptr) > 0) & (np.diff(train.indptr) > 0))
        if len(users) > MAX_USERS:
            users = np.sort(np.random.default_rng(seed).choice(users, MAX_USERS, replace=False))
        artifacts = stage1.artifacts(self.features, kind=SequentialRanking.kind)
        stages = SequentialRanking(
            stage1.items, CatalogueTopK(stage1.items), NO_VIDEOS, tables=stage1.tables, sessions=stage1.sessions
        )

        def at_home(chunk: np.ndarray) -> QueryBatch:
            return QueryBatch.of_users(
                stage1.model.user_factors, train, chunk, k=stages.pool, narrowing=Narrowing(NO_VIDEOS),
                sessions=stage1.sessions, now=stage1.window.cut,
            )  # fmt: skip

        chunks = list(user_chunks(at_home, labels, users))
        queries = self._sitting_queries(stage1, relevance, seed=seed, learning=True)
        if len(queries):
            anonymous = np.random.default_rng(seed).random(len(queries)) < ANONYMOUS_SHARE
            asked = queries.queries(self.features.user_ids, self.features.video_ids, anonymous=anonymous)
            for start in range(0, len(asked), CHUNK):
                batch, ranked = QueryResolution(artifacts).batch(asked[start : start + CHUNK])
                chunks.append((batch, queries.targets[start : start + CHUNK][ranked]))
        data = examples(stages, chunks)
        ranker, account = learn(stages, data, seed=seed, min_positives=self.min_positives)
        return LearnedRanker(ranker, account | {"in_session_queries": len(queries)})

    def _sitting_queries(
        self, stage1: Stage1, relevance: Relevance, *, seed: int, learning: bool = False
    ) -> SittingQueries:
        """The in-session queries of stage 1's window, of the users it knows: to judge, each one's first sitting
        in the window with GIVEN watches given; to learn from, every sitting, with 1 to LEARN_GIVEN given."""
        known = np.diff(stage1.train.indptr) > 0
        return sitting_queries(
            self.watches(relevance), start=stage1.window.cut, end=stage1.window.end,
            relevance=relevance, videos=len(self.features.video_ids), durations=self._durations(), among=known,
            given=tuple(range(1, LEARN_GIVEN + 1)) if learning else (GIVEN,), every_sitting=learning,
            limit=LEARN_QUERIES if learning else MAX_QUERIES, seed=seed,
        )  # fmt: skip

    def _tune_blend(self, relevance: Relevance, judged: Stage1) -> tuple[float, dict]:
        """The up-next blend tuned on the sittings of the `test_days` before the cut, against a watched-next table
        of what came before them (never of the judged days, nor of the sittings it is tuned on)."""
        start = self.cut - self.test_days * DAY
        watches = self.watches(relevance)
        table = watched_next(
            before(watches, start), len(self.features.video_ids), relevance=relevance,
            confidence=self.features.confidence_config,
        )  # fmt: skip
        known = np.diff(judged.train.indptr) > 0
        queries = sitting_queries(
            watches, start=start, end=self.cut, relevance=relevance, videos=len(self.features.video_ids),
            durations=None, among=known,
        )  # fmt: skip
        if not len(queries):
            return DEFAULT_UP_NEXT_BLEND, {}
        return tune_blend(judged.items, table, queries, k=K)

    def _in_session(
        self, judged: Stage1, artifacts: ModelArtifacts, relevance: Relevance, *, trending: np.ndarray, seed: int
    ) -> dict[str, dict]:
        """The in-session and up-next judgements of the judged model and their baselines, on each judged user's
        first sitting after the cut: its first GIVEN watches given, the satisfying watches of the rest to find."""
        queries = self._sitting_queries(judged, relevance, seed=seed)
        if not len(queries):
            return {"in_session": {}, "up_next": {}}
        train, items, sessions, tables = judged.train, judged.items, judged.sessions, judged.tables
        filters = given_filters(queries, train)
        allowed = judged.window.known_videos
        in_session = {
            "watched_next": padded_lists(
                watched_next_lists(sessions.next, queries, filters, k=CURVE_MAX_K), CURVE_MAX_K
            ),
            "most_popular": popularity_lists(clicks(train), filters, CURVE_MAX_K, allowed=allowed),
            "trending": popularity_lists(trending, filters, CURVE_MAX_K, allowed=allowed),
        }
        order_blind = replace(
            artifacts, sessions=None, manifest=artifacts.manifest.model_copy(update={"sessions": None})
        )
        blind, ranked = QueryResolution(order_blind).batch(
            queries.queries(self.features.user_ids, self.features.video_ids)
        )
        in_session["order_blind"] = padded_lists(
            AlsRanking(items, CatalogueTopK(items), NO_VIDEOS).rank(blind), CURVE_MAX_K
        )
        up_next = {
            "factor_similarity": padded_lists(
                up_next_lists(items, None, queries.last, k=CURVE_MAX_K, blend=0.0), CURVE_MAX_K
            ),
            "watched_next": padded_lists(
                watched_next_lists(sessions.next, queries, filters, k=CURVE_MAX_K, recent=1), CURVE_MAX_K
            ),
            "blended": padded_lists(
                up_next_lists(items, sessions.next, queries.last, k=CURVE_MAX_K, blend=judged.entry.up_next_blend),
                CURVE_MAX_K,
            ),
        }
        if tables is not None:
            same_channel = padded_lists(same_channel_lists(tables, queries.last, filters, k=CURVE_MAX_K), CURVE_MAX_K)
            in_session["same_channel_next"] = up_next["same_channel_next"] = same_channel
        if artifacts.ranker is not None:
            stage = QueryResolution(artifacts)
            ranking = SequentialRanking.from_artifacts(artifacts, CatalogueTopK(items), NO_VIDEOS)
            for name, anonymous in ((SequentialRanking.kind, None), (HISTORY_ONLY, np.ones(len(queries), dtype=bool))):
                batch, _ = stage.batch(
                    queries.queries(self.features.user_ids, self.features.video_ids, anonymous=anonymous)
                )
                in_session[name] = padded_lists(ranking.rank(batch, chunk=OFFLINE_CHUNK), CURVE_MAX_K)
            up_next["personal"] = in_session[SequentialRanking.kind]  # up next for the viewer: the same query
            after = [Query(None, CURVE_MAX_K, history=[self.features.video_ids[video]]) for video in queries.last]
            batch, _ = stage.batch(after)  # up next for anyone: a sitting of that one watch (vrmodels.model.recommend)
            up_next[SequentialRanking.kind] = padded_lists(ranking.rank(batch, chunk=OFFLINE_CHUNK), CURVE_MAX_K)
        del ranked
        targets = queries.targets
        return {
            "in_session": score_lists(in_session, targets, clicks(train), max_k=K).metrics,
            "up_next": score_lists(up_next, targets, clicks(train), max_k=K).metrics,
        }

    def _durations(self) -> np.ndarray | None:
        videos = self.features.videos
        return None if videos is None else videos["duration_seconds"].to_numpy(np.float64)

    def describe(self, with_ranker: bool = False) -> dict:
        """The hold-out, as the manifest's evaluation entry records it (`with_ranker`: a second stage ships)."""
        return {
            "split": "time",
            "test_days": self.test_days,
            "cut": self.cut,
            "data_end": self.end,
            "ranker_window": [self.ranker_cut, self.cut] if with_ranker else None,
            "in_session": {
                "given": GIVEN,
                "judged": "the satisfying watches of the rest of each judged user's first sitting after the cut",
            },
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
