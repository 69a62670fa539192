"""The Spark trainer: the same confidences, split and checks as the implicit trainer, and a model the server serves.

Spark runs in local[2]. A Java 17 runtime is installed when missing (tests/engine/ensure_java.sh); the tests skip,
saying why, only when it cannot be.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from features.build_features import build_features
from features.columns import DataFileError
from features.confidence import ConfidenceConfig
from features.events import validate_events
from features.sample_events import generate_events
from tests.aws import cli_env, client, reset
from tests.server import PROJECT_ROOT, start_server
from vrmodels.model.artifacts import load_model_dir
from vrmodels.training.split import temporal_split

pytestmark = pytest.mark.spark
pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -r requirements-spark.txt)")

from vrmodels.training import spark as train_spark  # noqa: E402  (needs pyspark, checked just above)

HEADER = "user_id,video_id,timestamp,event,watch_seconds,video_duration\n"
SMALL = train_spark.SparkParams(rank=16, max_iter=8, reg_param=0.3, alpha=1.0, seed=3)


@pytest.fixture(scope="module")
def spark():
    installed = subprocess.run(
        ["bash", str(PROJECT_ROOT / "tests" / "engine" / "ensure_java.sh")], capture_output=True, text=True
    )
    if installed.returncode != 0:
        pytest.skip(f"no Java runtime for Spark: {installed.stderr.strip()}")
    session = train_spark.spark_session("local[2]", "vr-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def events_file(tmp_path_factory) -> Path:
    """A watch log with an exact duplicate and a user under the minimum, as CSV."""
    frame = generate_events(users=300, videos=60, mean_events=15, seed=13)
    frame = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)  # an exact duplicate event
    path = tmp_path_factory.mktemp("spark") / "events.csv"
    frame.to_csv(path, index=False)
    return path


def spark_pairs(spark, path: Path, confidence: ConfidenceConfig, **options) -> train_spark.SparkFeatures:
    events = train_spark.validate(train_spark.read_events(spark, str(path)), str(path), confidence)
    return train_spark.collect(train_spark.build_pairs(events, confidence, source=str(path), **options))


@pytest.mark.parametrize(
    "confidence",
    [ConfidenceConfig(), ConfidenceConfig(skip_below=0.3, skip_weight=0.5, completion_weight=1.5, scaling="linear")],
    ids=["defaults", "other parameters"],
)
def test_both_trainers_build_the_same_pairs_and_confidences(spark, events_file, confidence):
    expected = build_features(
        pd.read_csv(events_file).pipe(validate_events, str(events_file)), confidence, min_user_events=3
    )
    built = spark_pairs(spark, events_file, confidence, min_user_events=3)
    assert built.user_ids == expected.user_ids and built.video_ids == expected.video_ids
    ours = expected.interactions.sort_values(["user_index", "video_index"]).reset_index(drop=True)
    theirs = built.pairs
    for column in ("user_index", "video_index", "events", "last_timestamp"):
        np.testing.assert_array_equal(theirs[column].to_numpy(), ours[column].to_numpy())
    np.testing.assert_allclose(theirs["confidence"], ours["confidence"], rtol=1e-6)
    assert built.report["dropped"] == expected.report["dropped"]
    assert built.report["dropped"]["duplicate_events"] == 1 and built.report["dropped"]["events_of_users_under_min"] > 0


def test_the_split_is_the_implicit_trainers_split(spark, events_file):
    built = spark_pairs(spark, events_file, ConfidenceConfig())
    np.testing.assert_array_equal(built.pairs["held_out"].to_numpy(), temporal_split(built.pairs))


@pytest.mark.parametrize(("master", "cores"), [("local", 1), ("local[3]", 3), ("local[2,4]", 2), ("local[*]", None)])
def test_a_local_master_gets_shuffles_sized_for_its_cores(master, cores):
    assert train_spark.local_cores(master) == (cores or os.cpu_count())


def test_rating_data_gets_the_same_confidences(spark, tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t10\t5\t100\n1\t11\t2\t101\n2\t10\t3\t102\n2\t12\t4\t103\n2\t13\t1\t104\n")
    confidence = ConfidenceConfig(rating_weight=0.25)
    from features.build_features import build_features_from_file

    expected = build_features_from_file(path, "movielens", confidence=confidence).interactions
    events = train_spark.validate(train_spark.read_events(spark, str(path), "movielens"), str(path), confidence)
    built = train_spark.collect(train_spark.build_pairs(events, confidence))
    ours = expected.sort_values(["user_index", "video_index"])
    np.testing.assert_allclose(built.pairs["confidence"], ours["confidence"], rtol=1e-6)
    assert not built.has_watch_time


def test_the_watched_next_table_spark_builds_is_the_local_one(spark, tmp_path):
    """A small platform's log with its sittings, series and skips: the same followers, the same shares."""
    from features.sample_events import generate_platform
    from vrmodels.training.relevance import Relevance
    from vrmodels.training.sessions import last_sittings
    from vrmodels.training.sessions import watched_next as local_watched_next

    platform = generate_platform(users=150, videos=120, seed=4)
    path = tmp_path / "events.csv"
    platform.events.to_csv(path, index=False)
    confidence = ConfidenceConfig()
    features = build_features(validate_events(platform.events, str(path)), confidence)
    relevance = Relevance.for_events(features.pair_events)
    watches = features.watches(relevance.events)
    local = local_watched_next(watches, len(features.video_ids), relevance=relevance, confidence=confidence)
    events = train_spark.validate(train_spark.read_events(spark, str(path)), str(path), confidence)
    built = train_spark.build_pairs(events, confidence)
    assert built.video_ids == features.video_ids
    spark_watches = train_spark.watches(built.events, gap_seconds=30 * 60, satisfying_events=relevance.events)
    ours = train_spark.watched_next(
        spark_watches, relevance=relevance, confidence=confidence, videos=len(built.video_ids)
    )
    assert local.indptr[-1] > 100  # a table with something in it
    np.testing.assert_array_equal(ours.indptr, local.indptr)
    np.testing.assert_array_equal(ours.videos, local.videos)
    np.testing.assert_allclose(ours.weights, local.weights, rtol=1e-6)
    np.testing.assert_allclose(ours.support, local.support, rtol=1e-6)
    np.testing.assert_array_equal(
        train_spark.last_sittings(spark_watches, len(built.user_ids)), last_sittings(watches, len(features.user_ids))
    )


@pytest.mark.parametrize(
    ("rows", "header", "column", "problem"),
    [
        ("u1,v1\n", "user_id,video_id\n", None, "missing required column(s) 'timestamp'"),
        ("u1,,100,view,10,60\n", HEADER, "video_id", "empty id"),
        ("u1,v1,yesterday,view,10,60\n", HEADER, "timestamp", "unparseable timestamp"),
        ("u1,v1,100,dislike,,\n", HEADER, "event", "unknown event; known events: complete, like, rating, share, view"),
        ("u1,v1,100,view,10,-60\n", HEADER, "video_duration", "negative value"),
        ("u1,v1,100,view,10,\n", HEADER, "video_duration", "missing where watch_seconds is given"),
        ("u1,v1,100,view,ten,60\n", HEADER, "watch_seconds", "is not a number"),
    ],
)
def test_bad_events_are_refused_naming_the_column_and_a_bad_row(spark, tmp_path, rows, header, column, problem):
    path = tmp_path / "events.csv"
    path.write_text(header + "u0,v0,99,view,30,60\n" * (header == HEADER) + rows)
    with pytest.raises(DataFileError) as refused:
        train_spark.validate(train_spark.read_events(spark, str(path)), str(path), ConfidenceConfig())
    message = str(refused.value)
    assert problem in message and str(path) in message
    if column:
        assert f"column '{column}'" in message and "for example {" in message and "'u1'" in message


def test_our_parameters_reach_sparks_estimator():
    estimator = train_spark.SparkParams(rank=24, max_iter=7, reg_param=0.05, alpha=5.0, seed=9).estimator()
    assert (estimator.getRank(), estimator.getMaxIter(), estimator.getRegParam(), estimator.getAlpha()) == (
        24,
        7,
        0.05,
        5.0,
    )
    assert estimator.getImplicitPrefs() and estimator.getRatingCol() == "confidence" and estimator.getSeed() == 9


def test_a_spark_model_directory_loads_like_any_other(spark_model_dir):
    artifacts = load_model_dir(spark_model_dir)
    assert artifacts.manifest.algorithm == "pyspark.ml.recommendation.ALS"
    assert artifacts.manifest.metrics["als"]["ndcg"] > artifacts.manifest.metrics["most_watched"]["ndcg"]
    assert artifacts.topn is not None and artifacts.user_factors.shape == (400, 16)
    assert set(artifacts.manifest.data["features"]["spark"]) == {
        "evaluation_users_without_factors", "evaluation_videos_without_factors", "users_without_factors",
        "videos_without_factors",
    }  # fmt: skip
    assert (spark_model_dir / "evaluation.html").exists()


def test_the_server_serves_a_spark_model_through_the_whole_contract(spark_model_dir, tmp_path):
    server = start_server(tmp_path / "log", {"VR_MODEL_DIR": str(spark_model_dir), "VR_OPT_ML": str(tmp_path)})
    try:
        post = lambda payload: httpx.post(f"{server.url}/invocations", json=payload, timeout=30)  # noqa: E731
        known = post({"user_id": "u001", "k": 3}).json()
        assert known["userId"] == "u001" and len(known["recommendations"]) == 3 and "fallback" not in known
        assert post({"user_id": "stranger", "k": 2}).json()["fallback"] is True
        assert len(post({"history": ["v005", "v006"], "k": 4}).json()["recommendations"]) == 4
        assert len(post({"video_id": "v005", "k": 3}).json()["similar"]) == 3
        batch = post({"instances": [{"user_id": "u002", "k": 1}, {"video_id": "ghost"}]}).json()["predictions"]
        assert batch[0]["userId"] == "u002" and batch[1]["error"]["status"] == 404
        assert post({"user_id": "u001", "k": 0}).status_code == 422
    finally:
        server.stop()


def test_videos_spark_never_saw_in_training_get_zero_rows_and_are_counted(spark, tmp_path):
    """v-late appears only in the held-out part: Spark has no factor for it in the evaluation fit."""
    rows = [(f"u{u:02d}", f"v{u % 7}", 100 + u, "view", 60, 60) for u in range(40)]
    rows += [(f"u{u:02d}", f"v{(u + 3) % 7}", 200 + u, "view", 60, 60) for u in range(40)]
    rows += [("u00", "v-late", 999, "view", 60, 60)]
    path = tmp_path / "events.csv"
    pd.DataFrame(rows, columns=HEADER.strip().split(",")).to_csv(path, index=False)
    events = train_spark.validate(train_spark.read_events(spark, str(path)), str(path), ConfidenceConfig())
    built = train_spark.build_pairs(events, ConfidenceConfig())
    users, videos = built.user_ids, built.video_ids
    _, item_factors, missing = train_spark.fit(built.pairs.filter("NOT held_out"), SMALL, (len(users), len(videos)))
    assert missing["videos_without_factors"] == 1
    assert not item_factors[videos.index("v-late")].any() and item_factors.shape == (len(videos), 16)


# --- deploy/spark_job.sh: spark-submit to a master, or an EMR step; the model lands in S3 (moto) ---------------


@pytest.fixture
def job_env(moto_url, tmp_path):
    reset(moto_url)
    client(moto_url, "s3").create_bucket(Bucket="vr-models")
    return cli_env(moto_url, tmp_path)


def spark_job(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(PROJECT_ROOT / "deploy" / "spark_job.sh"), *args], env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def spark_job_run(spark, moto_url, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """deploy/spark_job.sh on a local master: Spark trains on a small realistic log (400 users, 80 videos) and uploads
    the model to S3 (moto); what it said, and the model directory downloaded and unpacked as SageMaker would.
    (`spark`: a Java runtime is there, or the tests skipped.)"""
    root = tmp_path_factory.mktemp("spark-job")
    events = root / "events.csv"
    generate_events(users=400, videos=80, mean_events=20, seed=11).to_csv(events, index=False)
    reset(moto_url)
    client(moto_url, "s3").create_bucket(Bucket="vr-models")
    small = ["--rank", "16", "--max-iter", "8", "--reg-param", "0.3", "--alpha", "1", "--seed", "3", "--ann", "off"]
    done = spark_job(
        "--master", "local[2]", "--events", str(events), "--output", "s3://vr-models/spark/", "--", *small,
        env=cli_env(moto_url, root),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    archive = root / "model.tar.gz"
    client(moto_url, "s3").download_file("vr-models", "spark/model.tar.gz", str(archive))
    with tarfile.open(archive) as tar:
        tar.extractall(root / "model", filter="data")
    return done, root / "model"


@pytest.fixture(scope="module")
def spark_model_dir(spark_job_run) -> Path:
    return spark_job_run[1]


def test_spark_job_on_a_local_master_uploads_a_model_the_server_loads(spark_job_run):
    done, model = spark_job_run
    assert "uploaded s3://vr-models/spark/model.tar.gz" in done.stdout
    artifacts = load_model_dir(model)
    assert artifacts.manifest.algorithm == "pyspark.ml.recommendation.ALS"
    assert artifacts.manifest.parameters["rank"] == 16 and artifacts.user_factors.shape[1] == 16


def test_spark_job_adds_an_emr_step_running_our_code_from_s3(job_env, moto_url):
    emr = client(moto_url, "emr")
    cluster = emr.run_job_flow(
        Name="vr", ReleaseLabel="emr-7.5.0", Instances={"InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]  # fmt: skip
    done = spark_job(
        "--emr-cluster-id", cluster, "--code-s3", "s3://vr-models/code/", "--events", "s3a://vr-events/2026-11/",
        "--output", "s3://vr-models/spark/", "--", "--min-user-events", "2", env=job_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    step = emr.describe_step(ClusterId=cluster, StepId=done.stdout.strip())["Step"]
    arguments = step["Config"]["Args"]
    assert arguments[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    assert "s3://vr-models/code/vr.zip" in arguments and "s3://vr-models/code/train_spark.py" in arguments
    assert arguments[arguments.index("--events") + 1] == "s3a://vr-events/2026-11/"
    assert arguments[arguments.index("--upload") + 1] == "s3://vr-models/spark/"
    assert arguments[arguments.index("--min-user-events") + 1] == "2" and arguments[-2:] == ["--master", "yarn"]
    code = {item["Key"] for item in client(moto_url, "s3").list_objects_v2(Bucket="vr-models")["Contents"]}
    assert code == {"code/vr.zip", "code/train_spark.py"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--events", "e", "--output", "vr-models/spark/", "--master", "local[2]"], "--output must be s3://"),
        (["--events", "e", "--output", "s3://b/p/"], "give --master URL"),
        (["--events", "e", "--output", "s3://b/p/", "--master", "local", "--emr-cluster-id", "j-1"], "not both"),
        (["--events", "e", "--output", "s3://b/p/", "--emr-cluster-id", "j-1"], "--code-s3 s3://bucket/prefix/ is"),
    ],
)
def test_spark_job_refuses_bad_options_saying_what_to_fix(tmp_path, args, message):
    done = spark_job(*args, env=cli_env("http://127.0.0.1:9", tmp_path))
    assert done.returncode == 1 and message in done.stderr
