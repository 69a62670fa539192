"""The SageMaker training-job contract of `serve.py train`, run in-process on a temporary /opt/ml root."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import pytest

from tests.server import PROJECT_ROOT
from vrmodels.model.artifacts import load_model_dir
from vrmodels.training.registry import figures, metric_definitions
from vrmodels.training.registry import main as registry_main
from vrmodels.training.training_job import main


@pytest.fixture
def opt_ml(tmp_path, monkeypatch, sample_events):
    (tmp_path / "input" / "data" / "training").mkdir(parents=True)
    (tmp_path / "input" / "config").mkdir(parents=True)
    (tmp_path / "model").mkdir()  # SageMaker creates it, empty
    sample_events.to_csv(tmp_path / "input" / "data" / "training" / "events.csv", index=False)
    monkeypatch.setenv("VR_OPT_ML", str(tmp_path))
    return tmp_path


SMALL = {"factors": "16", "regularization": "5", "iterations": "10"}  # fast, and good enough for the gate


def set_hyperparameters(opt_ml, values: dict[str, str]) -> None:
    (opt_ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps(values))


def test_string_hyperparameters_train_a_model_into_opt_ml_model(opt_ml):
    set_hyperparameters(opt_ml, {"factors": "16", "iterations": "8", "regularization": "5", "seed": "9"})
    assert main() == 0
    manifest = load_model_dir(opt_ml / "model").manifest
    assert manifest.parameters == {"factors": 16, "regularization": 5.0, "alpha": 5.0, "iterations": 8, "seed": 9}
    assert not (opt_ml / "output" / "failure").exists()


def test_bad_hyperparameter_writes_the_failure_reason(opt_ml):
    set_hyperparameters(opt_ml, {"factors": "lots"})
    assert main() == 1
    assert (
        opt_ml / "output" / "failure"
    ).read_text() == "TrainingJobError: hyperparameter factors='lots': expected int\n"
    assert not any((opt_ml / "model").iterdir())


def test_bad_event_file_failure_names_file_row_and_column(opt_ml):
    broken = opt_ml / "input" / "data" / "training" / "events.csv"
    broken.write_text("user_id,video_id,timestamp\nu1,v1,100\nu2,v2,later\n")
    assert main() == 1
    assert (
        "events.csv, row 2, column 'timestamp': unparseable timestamp 'later'"
        in (opt_ml / "output" / "failure").read_text()
    )


def test_missing_channel_is_reported(opt_ml):
    set_hyperparameters(opt_ml, {"channel": "train-events"})
    assert main() == 1
    assert "train-events: channel directory missing" in (opt_ml / "output" / "failure").read_text()


def test_serve_py_train_runs_the_job_without_library_chatter(opt_ml, tmp_path):
    """On a fresh machine matplotlib builds its font cache when the report's chart is drawn, and says so at INFO."""
    pytest.importorskip("matplotlib", reason="the chart needs the offline extras (requirements-offline.txt)")
    set_hyperparameters(opt_ml, SMALL)
    result = subprocess.run(
        [sys.executable, "serve.py", "train"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={"VR_OPT_ML": str(opt_ml), "PATH": "/usr/bin:/bin", "MPLCONFIGDIR": str(tmp_path / "no-font-cache")},
    )
    assert result.returncode == 0, result.stderr
    assert (opt_ml / "model" / "manifest.json").is_file()
    assert (tmp_path / "no-font-cache").is_dir()  # the chart was drawn and built the cache here
    assert "fontManager" not in result.stdout + result.stderr


def test_every_file_of_the_channel_is_read(opt_ml, sample_events):
    channel = opt_ml / "input" / "data" / "training"
    (channel / "events.csv").unlink()
    half = len(sample_events) // 2
    sample_events.iloc[:half].to_csv(channel / "part-1.csv", index=False)
    sample_events.iloc[half:].to_parquet(channel / "part-2.parquet")
    set_hyperparameters(opt_ml, SMALL)
    assert main() == 0
    report = load_model_dir(opt_ml / "model").manifest.data["features"]
    assert report["input_events"] == len(sample_events)


def test_confidence_and_relevance_hyperparameters_reach_the_model(opt_ml):
    set_hyperparameters(
        opt_ml,
        {**SMALL, "skip_below": "0.5", "skip_weight": "0.1", "relevant_completion": "0.9"},
    )
    assert main() == 0
    manifest = load_model_dir(opt_ml / "model").manifest
    assert (manifest.confidence["skip_below"], manifest.confidence["skip_weight"]) == (0.5, 0.1)
    assert manifest.evaluation.relevance["min_completion"] == 0.9


def test_a_relevance_threshold_outside_0_to_1_fails_the_job_with_the_reason(opt_ml):
    set_hyperparameters(opt_ml, {"relevant_completion": "80"})
    assert main() == 1
    assert "relevant completion must be between 0 and 1, got 80.0" in (opt_ml / "output" / "failure").read_text()
    assert not any((opt_ml / "model").iterdir())


def test_a_videos_channel_trains_the_catalogue_aware_model(opt_ml):
    """The catalogue arrives as its own channel; a time split judges the two stages."""
    from features.sample_events import generate_platform

    platform = generate_platform(users=800, videos=400, seed=5)
    channel = opt_ml / "input" / "data" / "training"
    (channel / "events.csv").unlink()
    platform.events.to_csv(channel / "events.csv", index=False)
    (opt_ml / "input" / "data" / "videos").mkdir()
    platform.videos.to_parquet(opt_ml / "input" / "data" / "videos" / "videos.parquet")
    set_hyperparameters(opt_ml, {**SMALL, "ranker": "on", "test_days": "7", "allow_worse": "true"})
    assert main() == 0
    manifest = load_model_dir(opt_ml / "model").manifest
    assert manifest.kind == "sequential" and manifest.evaluation.split == "time"
    assert manifest.data["features"]["catalogue"]["videos"] == 400


def test_every_declared_option_is_a_hyperparameter_of_the_same_name_and_type():
    """One declaration: whatever the command lines offer, the job reads, typed as declared."""
    from features.confidence import ConfidenceConfig
    from features.options import declared
    from vrmodels.training.als import TrainParams
    from vrmodels.training.options import TrainingOptions, from_hyperparameters
    from vrmodels.training.training_job import JobInputs

    strings = {
        "factors": "8", "regularization": "2.5", "alpha": "3", "iterations": "4", "seed": "5",
        "split": "time", "test_days": "3", "ranker": "off", "tune": "yes", "tune_trials": "6",
        "relevant_completion": "0.7", "relevant_min_rating": "4", "allow_worse": "1", "topn": "7", "ann": "off",
        "scaling": "linear", "completion_weight": "0.5", "skip_below": "0.6", "skip_weight": "0.1",
        "rating_weight": "0.2", "event_weights": '{"view": 2.0}',
        "channel": "events", "videos_channel": "catalogue", "input_format": "movielens",
        "min_user_events": "2", "min_video_events": "3", "session_gap": "20",
    }  # fmt: skip
    typed = {}
    declarations = (TrainParams, TrainingOptions, ConfidenceConfig, JobInputs)
    for declaration in declarations:
        typed |= from_hyperparameters(strings, declaration)
        declaration(**from_hyperparameters(strings, declaration))
    assert set(typed) == set(strings) == {item.name for cls in declarations for item, _ in declared(cls)}
    assert (typed["tune"], typed["relevant_min_rating"], typed["event_weights"]) == (True, 4.0, {"view": 2.0})
    assert typed["factors"] == 8 and typed["ann"] == "off" and typed["input_format"] == "movielens"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [("tune", "maybe", "true or false"), ("ann", "sometimes", "one of auto, on, off"), ("test_days", "7.5", "int")],
)
def test_a_hyperparameter_that_does_not_parse_is_named(name, value, expected):
    from vrmodels.training.options import HyperparameterError, TrainingOptions, from_hyperparameters

    with pytest.raises(HyperparameterError, match=f"hyperparameter {name}={value!r}: expected {expected}"):
        from_hyperparameters({name: value}, TrainingOptions)


def test_the_job_logs_its_evaluation_as_the_training_metrics_sagemaker_reads(opt_ml, caplog):
    """SageMaker turns log lines into training metrics with MetricDefinitions' regular expressions."""
    caplog.set_level(logging.INFO)
    set_hyperparameters(opt_ml, SMALL)
    assert main() == 0
    output = "\n".join(caplog.messages)
    read = {
        definition["Name"]: float(found.group(1))
        for definition in metric_definitions()
        if (found := re.search(definition["Regex"], output))
    }
    assert read == pytest.approx(figures(load_model_dir(opt_ml / "model").manifest), abs=1e-6)
    assert {"ndcg_home", "best_baseline_ndcg_home"} <= set(read)


def archive_of(directory, target, *, members: tuple[str, ...] | None = None):
    """model.tar.gz as SageMaker packs /opt/ml/model: the files at the archive's root."""
    import tarfile

    with tarfile.open(target, "w:gz") as archive:
        for path in sorted(directory.iterdir()):
            if members is None or path.name in members:
                archive.add(path, arcname=path.name)
    return target


def test_the_evaluation_report_is_read_from_a_training_job_s_archive(model_dir, tmp_path):
    out = tmp_path / "evaluation"
    assert registry_main([str(archive_of(model_dir, tmp_path / "model.tar.gz")), "--out", str(out)]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    manifest = load_model_dir(model_dir).manifest
    assert report["model_version"] == manifest.model_version
    assert report["figures"] == pytest.approx(figures(manifest))


def test_an_archive_without_a_manifest_or_not_an_archive_is_named(model_dir, tmp_path, capsys):
    bare = archive_of(model_dir, tmp_path / "bare.tar.gz", members=("user_factors.npy",))
    assert registry_main([str(bare)]) == 2
    assert f"{bare}: no manifest.json at its root" in capsys.readouterr().err
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tar")
    assert registry_main([str(broken)]) == 2
    assert f"{broken}: not a readable model archive" in capsys.readouterr().err
