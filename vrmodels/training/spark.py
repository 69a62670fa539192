"""Scale-out training on Spark MLlib ALS, writing the same model directory the server loads.

The implicit trainer's steps, on Spark where the data is large and on the driver where it must be:
1. Features, in Spark SQL (no Python UDFs): the validation rules of features/events.py (errors name the column
   and show a bad row), exact duplicates and rare users/videos dropped and counted, each event's signal and each
   pair's confidence from the same ConfidenceConfig (features/confidence.py), ids indexed in sorted order.
2. The per-user temporal split (window functions) and pyspark.ml ALS (implicitPrefs) on the training part.
3. The factors collected into the id order (users or videos Spark never saw get zero rows, counted), judged by
   vrmodels.training.evaluation.judge against the same baselines and quality gate as the implicit trainer.
4. A refit on every pair, and the model directory assembled by vrmodels.training.assemble, with the report,
   top-N lists and ANN indexes the implicit trainer writes. The server cannot tell which trainer ran.

Parameters do not carry over from implicit. Spark's implicit ALS weighs an observed pair by 1 + alpha × r (implicit:
alpha × r, so an observed pair can weigh less than an unwatched one) and scales regParam by each user's and each
video's number of pairs (ALS-WR; implicit's regularization is one constant). Spark's defaults here were
measured on MovieLens-100K and the bundled sample (docs/spark.md). The command line is vrmodels.train_spark.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from features.build_features import NO_EVENT_COLUMN
from features.columns import DataFileError
from features.confidence import ConfidenceConfig
from features.events import NUMERIC_COLUMNS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from features.options import option
from features.sittings import DEFAULT_GAP_MINUTES, START_EVENTS
from vrmodels.model.manifest import Manifest, SessionsEntry
from vrmodels.model.ranking.als import AlsRanking
from vrmodels.model.sessions import RECENT, SessionTables, WatchedNext
from vrmodels.training.evaluation import CURVE_MAX_K, SplitEvaluation, judge, quality_gate
from vrmodels.training.holdouts import TEST_FRACTION, USER_HOLDOUT
from vrmodels.training.model_dir import TrainedModel
from vrmodels.training.options import TrainingOptions
from vrmodels.training.relevance import SATISFYING_EVENTS, Relevance
from vrmodels.training.sessions import (
    DISTANCE_WEIGHTS,
    FOLLOWERS,
    PLAIN,
    normalised_table,
    sessions_entry,
)
from vrmodels.training.trainer import evaluation_entry

log = logging.getLogger(__name__)

PAIR_COLUMNS = (
    "user_index", "video_index", "confidence", "events", "last_timestamp",
    "max_completion", "satisfying_event", "max_rating", "held_out",
)  # fmt: skip


@dataclass(frozen=True)
class SparkParams:
    """pyspark.ml ALS's parameters; defaults measured for Spark, not copied from implicit (module docstring)."""

    rank: int = option(64, "latent factors per user and video")
    max_iter: int = option(15, "alternating least squares sweeps")
    reg_param: float = option(0.3, "regularization, scaled by each user's and video's pairs (ALS-WR)")
    alpha: float = option(1.0, "an observed pair weighs 1 + alpha × confidence")
    seed: int = option(42, "seed of the factors' initialisation and of the evaluated users' sample")
    checkpoint_interval: int = option(10, "iterations between ALS checkpoints (bounds the lineage)")

    def estimator(self):
        from pyspark.ml.recommendation import ALS

        return ALS(
            rank=self.rank,
            maxIter=self.max_iter,
            regParam=self.reg_param,
            alpha=self.alpha,
            seed=self.seed,
            checkpointInterval=self.checkpoint_interval,
            implicitPrefs=True,
            nonnegative=False,
            userCol="user_index",
            itemCol="video_index",
            ratingCol="confidence",
            coldStartStrategy="drop",
        )


@dataclass
class SparkFeatures:
    """The pair table on the driver (PAIR_COLUMNS), the id maps, and what was read, dropped and kept."""

    pairs: pd.DataFrame
    user_ids: list[str]
    video_ids: list[str]
    report: dict
    has_watch_time: bool

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.user_ids), len(self.video_ids)

    def matrix(self, rows: np.ndarray, weighted: bool = True) -> csr_matrix:
        """Users × videos from a mask of pairs: confidences (zero-confidence pairs left out), or ones."""
        frame = self.pairs[rows]
        if weighted:
            frame = frame[frame["confidence"].to_numpy() > 0]
        values = frame["confidence"].to_numpy(np.float32) if weighted else np.ones(len(frame), np.float32)
        return csr_matrix((values, (frame["user_index"].to_numpy(), frame["video_index"].to_numpy())), shape=self.shape)


@dataclass(frozen=True)
class SparkPairs:
    """The indexed pair table (a Spark DataFrame of PAIR_COLUMNS and more), the id maps and what was read."""

    pairs: object
    user_ids: list[str]
    video_ids: list[str]
    report: dict
    events: object
    """The kept events, indexed: user_index, video_index, timestamp, event, completion (for the sittings)."""


@dataclass
class SparkResult:
    user_factors: np.ndarray
    item_factors: np.ndarray
    features: SparkFeatures
    relevance: Relevance
    evaluation: SplitEvaluation
    params: SparkParams
    confidence: ConfidenceConfig
    sessions: SessionTables
    sessions_entry: SessionsEntry
    missing: dict = field(default_factory=dict)


def spark_session(master: str, app_name: str = "video-recommender-train"):
    """A session for this job; on a local master, shuffles sized for its cores rather than Spark's 200."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")  # ISO timestamps without a zone are UTC, as in features/
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master.startswith("local"):
        builder = builder.config("spark.sql.shuffle.partitions", str(4 * local_cores(master)))
    return builder.getOrCreate()


def local_cores(master: str) -> int:
    """local → 1, local[4] → 4, local[*] → every core."""
    inside = master.partition("[")[2].partition("]")[0].partition(",")[0]
    if inside == "*":
        return os.cpu_count() or 1
    return int(inside or 1)


def read_events(spark, path: str, input_format: str = "events"):
    """CSV (with a header, optionally compressed) or Parquet events, or MovieLens u.data; local, HDFS or s3a://."""
    if input_format == "movielens":
        raw = spark.read.csv(path, sep="\t", schema="user_id STRING, video_id STRING, rating DOUBLE, timestamp LONG")
        from pyspark.sql import functions as F

        return raw.withColumn("event", F.lit("rating"))
    if path.rstrip("/").endswith(".parquet"):
        return spark.read.parquet(path)
    return spark.read.csv(path, header=True, inferSchema=False)


def validate(events, source: str, confidence: ConfidenceConfig):
    """features/events.py's rules in one Spark pass; raises DataFileError naming the column and a bad row."""
    from pyspark.sql import functions as F

    missing = [column for column in REQUIRED_COLUMNS if column not in events.columns]
    if missing:
        raise DataFileError(
            source, f"missing required column(s) {', '.join(repr(c) for c in missing)}; found {events.columns}"
        )
    present = [column for column in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if column in events.columns]
    raw = events.select(*present)
    typed = {column: F.col(column).cast("string") for column in ("user_id", "video_id")}
    stamp = F.trim(F.col("timestamp").cast("string"))
    # try_cast: Spark 4 runs ANSI SQL, where a failed cast raises instead of giving NULL
    typed["timestamp"] = F.coalesce(stamp.try_cast("double").cast("long"), stamp.try_cast("timestamp").cast("long"))
    checks: list[tuple[str, str, object]] = [
        (column, "empty id", F.col(column).isNull() | (F.trim(F.col(column).cast("string")) == ""))
        for column in ("user_id", "video_id")
    ]
    checks.append(("timestamp", "unparseable timestamp; use epoch seconds or ISO-8601", typed["timestamp"].isNull()))
    if "event" in present:
        typed["event"] = F.lower(F.trim(F.col("event").cast("string")))
        checks.append(("event", "empty event", F.col("event").isNull()))
        known = F.array(*[F.lit(name) for name in confidence.event_weights])
        unknown = F.col("event").isNotNull() & ~F.array_contains(known, typed["event"])
        checks.append(("event", f"unknown event; known events: {', '.join(sorted(confidence.event_weights))}", unknown))
    for column in NUMERIC_COLUMNS:
        if column in present:
            text = F.trim(F.col(column).cast("string"))
            typed[column] = text.try_cast("double")
            checks.append((column, "is not a number", text.isNotNull() & (text != "") & typed[column].isNull()))
            checks.append((column, "negative value", typed[column] < 0))
    if "watch_seconds" in present:
        watched = typed["watch_seconds"].isNotNull()
        if "video_duration" not in present:
            if events.filter(F.col("watch_seconds").isNotNull()).limit(1).count():
                problem = "column 'watch_seconds' needs a 'video_duration' column (completion = watch / duration)"
                raise DataFileError(source, problem)
        else:
            duration = typed["video_duration"]
            checks.append(("video_duration", "missing where watch_seconds is given", watched & duration.isNull()))
            checks.append(
                ("video_duration", "must be positive where watch_seconds is given", watched & (duration == 0))
            )
    failed = raw.select(*[F.max(bad.cast("int")).alias(str(n)) for n, (_, _, bad) in enumerate(checks)]).first()
    for number, (column, problem, bad) in enumerate(checks):
        if failed[str(number)]:
            example = raw.filter(bad).limit(1).first().asDict()
            raise DataFileError(source, f"{problem} (for example {example})", column=column)
    return raw.select(*[typed.get(column, F.col(column)).alias(column) for column in present])


def signal_column(confidence: ConfidenceConfig, columns: list[str]):
    """features/confidence.py's per-event signal as one Spark SQL expression, from the same ConfidenceConfig."""
    from pyspark.sql import functions as F

    weights = F.create_map(*[item for name, w in confidence.event_weights.items() for item in (F.lit(name), F.lit(w))])
    weight = (
        weights[F.col("event")] if "event" in columns else F.lit(confidence.event_weights.get(NO_EVENT_COLUMN, 1.0))
    )
    completion = F.col("completion")
    skipped = completion.isNotNull() & (completion < F.lit(confidence.skip_below).cast("float"))
    signal = F.when(skipped, weight * F.lit(confidence.skip_weight)).otherwise(weight)
    watched = completion.isNotNull() & ~skipped
    signal = signal + F.when(watched, F.lit(confidence.completion_weight) * completion.cast("double")).otherwise(0.0)
    if confidence.rating_weight and "rating" in columns:
        signal = signal + F.lit(confidence.rating_weight) * F.coalesce(F.col("rating"), F.lit(0.0))
    return signal


def build_pairs(
    events,
    confidence: ConfidenceConfig,
    min_user_events: int = 1,
    *,
    min_video_events: int = 1,
    source: str = "<events>",
) -> SparkPairs:
    """Per pair: confidence and the facts the split and relevance need, indexed; with the id maps and the report."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    columns = events.columns
    if "watch_seconds" in columns and "video_duration" in columns:
        ratio = F.col("watch_seconds") / F.col("video_duration")
        completion = F.when(F.col("watch_seconds").isNotNull(), F.least(F.greatest(ratio, F.lit(0.0)), F.lit(1.0)))
        events = events.withColumn("completion", completion.cast("float"))
    else:
        events = events.withColumn("completion", F.lit(None).cast("float"))
    if "event" not in columns:
        events = events.withColumn("event", F.lit(NO_EVENT_COLUMN))
    events = events.cache()
    input_events = events.count()
    unique = events.dropDuplicates(["user_id", "video_id", "timestamp", "event"]).cache()
    kept_after_duplicates = unique.count()
    user_counts = unique.groupBy("user_id").agg(F.count("*").alias("user_events"))
    video_counts = unique.groupBy("video_id").agg(F.count("*").alias("video_events"))
    counted = unique.join(user_counts, "user_id").join(video_counts, "video_id")
    rare_user = F.col("user_events") < min_user_events
    rare_video = ~rare_user & (F.col("video_events") < min_video_events)
    drops = counted.agg(
        F.sum(rare_user.cast("long")).alias("users"), F.sum(rare_video.cast("long")).alias("videos")
    ).first()
    kept = counted.filter(~rare_user & ~rare_video).withColumn("signal", signal_column(confidence, columns))

    total = F.sum("signal")
    pairs = kept.groupBy("user_id", "video_id").agg(
        (F.log1p(total) if confidence.scaling == "log" else total).cast("float").alias("confidence"),
        F.count("*").cast("int").alias("events"),
        F.max("timestamp").alias("last_timestamp"),
        F.max("completion").alias("max_completion"),
        F.max(F.col("event").isin(*SATISFYING_EVENTS)).alias("satisfying_event"),
        F.max(F.col("rating") if "rating" in columns else F.lit(None).cast("double")).alias("max_rating"),
    )
    user_ids = [row[0] for row in pairs.select("user_id").distinct().orderBy("user_id").collect()]
    video_ids = [row[0] for row in pairs.select("video_id").distinct().orderBy("video_id").collect()]
    spark = events.sparkSession
    user_index = spark.createDataFrame([(u, i) for i, u in enumerate(user_ids)], "user_id STRING, user_index INT")
    video_index = spark.createDataFrame([(v, i) for i, v in enumerate(video_ids)], "video_id STRING, video_index INT")
    indexed = pairs.join(user_index, "user_id").join(video_index, "video_id")

    # vrmodels.training.split.temporal_split: each user's latest max(1, floor(n × fraction)) pairs when n ≥ 2.
    by_user = Window.partitionBy("user_index")
    position = F.row_number().over(by_user.orderBy("last_timestamp", "video_index")) - 1
    n = F.count("*").over(by_user)
    held = F.when(n >= 2, F.greatest(F.lit(1), F.floor(n * TEST_FRACTION))).otherwise(0)
    indexed = indexed.withColumn("held_out", position >= n - held).cache()
    events_indexed = (
        kept.join(user_index, "user_id")
        .join(video_index, "video_id")
        .select("user_index", "video_index", "timestamp", "event", "completion")
    )
    zero = indexed.filter(F.col("confidence") <= 0).count()
    report = {
        "source": source,
        "input_events": input_events,
        "dropped": {
            "duplicate_events": input_events - kept_after_duplicates,
            "events_of_users_under_min": int(drops["users"] or 0),
            "events_of_videos_under_min": int(drops["videos"] or 0),
            "zero_confidence_pairs": zero,
        },
        "kept_events": kept_after_duplicates - int(drops["users"] or 0) - int(drops["videos"] or 0),
        "users": len(user_ids),
        "videos": len(video_ids),
        "pairs": indexed.count(),
        "min_user_events": min_user_events,
        "min_video_events": min_video_events,
        "confidence": confidence.to_dict(),
        "trainer": "spark",
    }
    return SparkPairs(indexed, user_ids, video_ids, report, events_indexed)


def collect(built: SparkPairs) -> SparkFeatures:
    """The pair table on the driver (Arrow), as the evaluation and the model directory need it."""
    frame = built.pairs.select(*PAIR_COLUMNS).toPandas()
    frame = frame.sort_values(["user_index", "video_index"], kind="stable").reset_index(drop=True)
    has_watch_time = bool(frame["max_completion"].notna().any())
    frame["max_completion"] = frame["max_completion"].astype(np.float32)
    frame["max_rating"] = frame["max_rating"].astype(np.float32)
    return SparkFeatures(frame, built.user_ids, built.video_ids, built.report, has_watch_time)


def fit(pairs, params: SparkParams, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, dict]:
    """ALS on the pairs with positive confidence; factors in the id order, zero rows for ids Spark never saw."""
    from pyspark.sql import functions as F

    model = params.estimator().fit(
        pairs.filter(F.col("confidence") > 0).select("user_index", "video_index", "confidence")
    )
    factors, missing = [], {}
    for name, frame, rows in (("users", model.userFactors, shape[0]), ("videos", model.itemFactors, shape[1])):
        collected = frame.toPandas()
        array = np.zeros((rows, params.rank), dtype=np.float32)
        if len(collected):
            array[collected["id"].to_numpy()] = np.stack(collected["features"].to_numpy()).astype(np.float32)
        missing[f"{name}_without_factors"] = rows - len(collected)
        factors.append(array)
    return factors[0], factors[1], missing


def train_spark(
    spark,
    events_path: str,
    params: SparkParams = SparkParams(),
    *,
    confidence: ConfidenceConfig | None = None,
    options: TrainingOptions = TrainingOptions(),
    input_format: str = "events",
    min_user_events: int = 1,
    min_video_events: int = 1,
    session_gap_minutes: float = DEFAULT_GAP_MINUTES,
) -> SparkResult:
    """The steps of the module docstring; `options` of SPARK_OPTIONS apply (the per-user split is Spark's only)."""
    confidence = confidence or ConfidenceConfig()
    relevant_completion, relevant_min_rating = options.relevant_completion, options.relevant_min_rating
    events = validate(read_events(spark, events_path, input_format), events_path, confidence)
    built = build_pairs(events, confidence, min_user_events, min_video_events=min_video_events, source=events_path)
    pairs, features = built.pairs, collect(built)
    frame = features.pairs
    relevance = Relevance.choose(features.has_watch_time, relevant_completion, relevant_min_rating)
    relevant = relevance.mask_of(
        frame["max_completion"].to_numpy(), frame["satisfying_event"].to_numpy(bool), frame["max_rating"].to_numpy()
    )
    held_out = frame["held_out"].to_numpy(bool)
    log.info(
        "[relevance] %s: %d of %d held-out pairs count as hits",
        relevance.describe(), int((held_out & relevant).sum()), int(held_out.sum()),
    )  # fmt: skip
    log.info("[evaluate] Spark ALS on %d pairs, holding out %d", int((~held_out).sum()), int(held_out.sum()))
    from pyspark.sql import functions as F

    user_factors, item_factors, missing = fit(pairs.filter(~F.col("held_out")), params, features.shape)
    train = features.matrix(~held_out)
    evaluation = judge(
        train,
        features.matrix(held_out & relevant, weighted=False),
        user_factors,
        item_factors=item_factors,
        max_k=CURVE_MAX_K,
        seed=params.seed,
    )
    quality_gate(evaluation.metrics, relevance, allow_worse=options.allow_worse)
    log.info("[refit] Spark ALS on all %d pairs", len(frame))
    user_factors, item_factors, refit_missing = fit(pairs, params, features.shape)
    missing = {f"evaluation_{key}": value for key, value in missing.items()} | refit_missing
    log.info("[sessions] sittings split at %g minutes, the watched-next table built with Spark", session_gap_minutes)
    sessions, entry = session_tables(
        built.events, features, gap_seconds=session_gap_minutes * 60, relevance=relevance, confidence=confidence
    )
    return SparkResult(
        user_factors, item_factors, features, relevance, evaluation, params, confidence, sessions, entry, missing
    )


def watches(events, *, gap_seconds: float, satisfying_events: tuple[str, ...]):
    """features.sittings in Spark: each user's events cut into sittings where the gap exceeds `gap_seconds`, and
    their watches (a start event and what follows it of the same video in the same sitting), with each watch's
    best completion and whether a satisfying event followed it."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_user = Window.partitionBy("user_index").orderBy("timestamp")
    gap = F.col("timestamp") - F.lag("timestamp").over(by_user)
    sittings = events.withColumn("new", (gap.isNull() | (gap > gap_seconds)).cast("int")).withColumn(
        "sitting", F.sum("new").over(by_user.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    )
    # asked of the events, not of `sittings`: a filter cannot pass the window, which would sort the log each time
    starting = [name for name in START_EVENTS if events.filter(F.col("event") == name).limit(1).count()]
    is_start = F.col("event").isin(*starting) if starting else F.lit(True)
    sittings = sittings.withColumn("is_start", is_start.cast("int"))
    by_video = Window.partitionBy("user_index", "sitting", "video_index").orderBy("timestamp", F.desc("is_start"))
    grouped = sittings.withColumn(
        "watch", F.sum("is_start").over(by_video.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    ).filter(F.col("watch") > 0)
    return grouped.groupBy("user_index", "sitting", "video_index", "watch").agg(
        F.min(F.when(F.col("is_start") == 1, F.col("timestamp"))).alias("timestamp"),
        F.max("completion").alias("completion"),
        F.max(F.col("event").isin(*satisfying_events)).alias("satisfying_event"),
    )


def watched_next(watched, *, relevance: Relevance, confidence: ConfidenceConfig, videos: int) -> WatchedNext:
    """vrmodels.training.sessions.watched_next with Spark, from the `watches`: the weighed transitions within
    sittings at each distance summed by window functions, then shared and cut on the driver
    (vrmodels.training.sessions.normalised_table)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    completion = F.col("completion")
    if relevance.kind == "satisfying_watch":
        satisfying = (completion >= relevance.min_completion) | F.col("satisfying_event")
    else:
        satisfying = F.lit(relevance.kind == "any")
    skipped = completion < confidence.skip_below
    worth = F.when(satisfying, 1.0).when(skipped, confidence.skip_weight).otherwise(PLAIN)
    order = Window.partitionBy("user_index", "sitting").orderBy("timestamp", "video_index")
    watched = watched.withColumn("worth", worth)
    parts = []
    for distance, weight in enumerate(DISTANCE_WEIGHTS, start=1):
        later = watched.withColumn("target", F.lead("video_index", distance).over(order)).withColumn(
            "target_worth", F.lead("worth", distance).over(order)
        )
        parts.append(
            later.filter(F.col("target").isNotNull() & (F.col("target") != F.col("video_index"))).select(
                F.col("video_index").alias("source"), "target", (F.col("target_worth") * weight).alias("weight")
            )
        )
    summed = parts[0].unionByName(parts[1]) if len(parts) > 1 else parts[0]
    frame = summed.groupBy("source", "target").agg(F.sum("weight").alias("weight")).toPandas()
    return normalised_table(
        frame["source"].to_numpy(np.int64),
        frame["target"].to_numpy(np.int64),
        frame["weight"].to_numpy(np.float64),
        videos=videos,
        followers=FOLLOWERS,
    )


def last_sittings(watched, users: int):
    """vrmodels.training.sessions.last_sittings in Spark: each user's last sitting, its last RECENT videos."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest = Window.partitionBy("user_index").orderBy(F.desc("sitting"), F.desc("timestamp"), F.desc("video_index"))
    ranked = watched.withColumn("back", F.row_number().over(latest)).withColumn(
        "last_sitting", F.first("sitting").over(latest)
    )
    rows = ranked.filter((F.col("back") <= RECENT) & (F.col("sitting") == F.col("last_sitting"))).select(
        "user_index", "back", "video_index"
    )
    recent = np.full((users, RECENT), -1, dtype=np.int32)
    frame = rows.toPandas()
    recent[frame["user_index"].to_numpy(), RECENT - frame["back"].to_numpy()] = frame["video_index"].to_numpy()
    return recent


def session_tables(
    events, features: SparkFeatures, *, gap_seconds: float, relevance: Relevance, confidence: ConfidenceConfig
) -> tuple[SessionTables, SessionsEntry]:
    """The session tables of the whole log (its indexed `events`), built with Spark, and the manifest's entry (the
    up-next blend at its default: the Spark trainer holds no sittings out to tune it on)."""
    frame = features.pairs
    data_end = int(frame["last_timestamp"].max()) + 1 if len(frame) else 0
    watched = watches(events, gap_seconds=gap_seconds, satisfying_events=relevance.events).cache()
    table = watched_next(watched, relevance=relevance, confidence=confidence, videos=len(features.video_ids))
    kept = frame["confidence"].to_numpy() > 0
    tables = SessionTables(
        next=table,
        user_recent=last_sittings(watched, len(features.user_ids)),
        user_items_seen=(data_end - frame["last_timestamp"].to_numpy()[kept]).astype(np.float32),
    )
    return tables, sessions_entry(gap_minutes=gap_seconds / 60, data_end=data_end)


def trained_model(result: SparkResult) -> TrainedModel:
    """What ships, as every trainer hands it over (vrmodels.training.model_dir)."""
    features = result.features
    manifest = Manifest(
        kind=AlsRanking.kind,
        algorithm="pyspark.ml.recommendation.ALS",
        parameters=asdict(result.params),
        confidence=result.confidence.to_dict(),
        data={"features": features.report | {"spark": result.missing}},
        evaluation=evaluation_entry(result.relevance, result.evaluation, USER_HOLDOUT),
        metrics=result.evaluation.metrics,
        sessions=result.sessions_entry,
    )
    return TrainedModel(
        user_factors=result.user_factors,
        item_factors=result.item_factors,
        user_items=features.matrix(np.ones(len(features.pairs), dtype=bool)),
        user_ids=features.user_ids,
        video_ids=features.video_ids,
        manifest=manifest,
        sessions=result.sessions,
    )
