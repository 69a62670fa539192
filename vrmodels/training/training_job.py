"""SageMaker training-job contract, run by `serve.py train` (what `docker run IMAGE train` starts).

Reads every CSV/CSV.gz/Parquet file (or MovieLens `u.data`) of channel `<root>/input/data/<channel>/`, the
video catalogue from channel `<root>/input/data/<videos_channel>/` when the job has one (or MovieLens `u.item`),
hyperparameters from `<root>/input/config/hyperparameters.json` (SageMaker sends every value as a string),
builds features, trains with the quality gate, and writes the model files straight into `<root>/model`,
which SageMaker tars into `model.tar.gz`. On failure the reason goes to `<root>/output/failure` (SageMaker
shows its first 1024 characters) and the exit status is non-zero. `<root>` is `$VR_OPT_ML` or `/opt/ml`.

Hyperparameters (all optional): factors, regularization, alpha, iterations, seed, tune, tune_trials,
allow_worse, channel (default "training"), input_format ("events" or "movielens"), min_user_events,
min_video_events, scaling, completion_weight, skip_below, skip_weight, rating_weight, relevant_completion,
relevant_min_rating, topn (precomputed top-N per user, default 100; 0 for none), ann (auto, on or off),
videos_channel (default "videos"), split (auto, user or time), test_days (default 7), ranker (auto, on or off).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import fields
from pathlib import Path

import pandas as pd

from features.build_features import CATALOGUE_FORMATS, build_features
from features.catalogue import read_catalogue
from features.confidence import ConfidenceConfig
from features.events import read_events, read_movielens
from vrmodels.model.artifacts import write_model_dir
from vrmodels.model.booleans import parse_bool
from vrmodels.model.threads import limit_blas_threads
from vrmodels.model.topn import DEFAULT_TOPN
from vrmodels.training.als import TrainParams
from vrmodels.training.relevance import DEFAULT_MIN_COMPLETION
from vrmodels.training.trainer import DEFAULT_TEST_DAYS, to_artifacts, train
from vrmodels.training.tuning import DEFAULT_TUNE_TRIALS

log = logging.getLogger(__name__)

EVENT_SUFFIXES = (".csv", ".gz", ".parquet")
CONFIDENCE_HYPERPARAMETERS = ("completion_weight", "skip_below", "skip_weight", "rating_weight", "scaling")


class TrainingJobError(ValueError):
    """Bad input to the job: its message is what SageMaker shows as the failure reason."""


def hyperparameters(root: Path) -> dict[str, str]:
    path = root / "input" / "config" / "hyperparameters.json"
    if not path.exists():
        return {}
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TrainingJobError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(values, dict):
        raise TrainingJobError(f"{path}: must be a JSON object of name → string value")
    return {str(key): str(value) for key, value in values.items()}


def read_channel(directory: Path, input_format: str) -> pd.DataFrame:
    if not directory.is_dir():
        raise TrainingJobError(f"{directory}: channel directory missing; give the job an input channel")
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))
    if input_format == "movielens":
        frames = [read_movielens(path) for path in files]
    else:
        frames = [read_events(path) for path in files if path.name.endswith(EVENT_SUFFIXES)]
    if not frames:
        raise TrainingJobError(f"{directory}: no event files (expected {', '.join(EVENT_SUFFIXES)})")
    return pd.concat(frames, ignore_index=True)  # each file was validated, with its own name and rows


def read_videos_channel(directory: Path, input_format: str) -> pd.DataFrame | None:
    """The catalogue from every file of its channel (None when the job has no such channel)."""
    if not directory.is_dir():
        return None
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))
    frames = [read_catalogue(path, CATALOGUE_FORMATS[input_format]) for path in files]
    if not frames:
        raise TrainingJobError(f"{directory}: the catalogue channel holds no file")
    catalogue = pd.concat(frames, ignore_index=True)
    twice = catalogue["video_id"].duplicated()
    if twice.any():
        raise TrainingJobError(f"{directory}: video_id {catalogue['video_id'][twice].iloc[0]!r} is in two files")
    catalogue.attrs["ignored_columns"] = sorted({name for frame in frames for name in frame.attrs["ignored_columns"]})
    return catalogue


def run(root: Path) -> None:
    values = hyperparameters(root)
    parsed = _typed(values)
    params = TrainParams(**{f.name: parsed[f.name] for f in fields(TrainParams) if f.name in parsed})
    channel = root / "input" / "data" / values.get("channel", "training")
    input_format = values.get("input_format", "events")
    events = read_channel(channel, input_format)
    videos = read_videos_channel(root / "input" / "data" / values.get("videos_channel", "videos"), input_format)
    confidence = ConfidenceConfig(**{key: parsed[key] for key in CONFIDENCE_HYPERPARAMETERS if key in parsed})
    features = build_features(
        events,
        confidence,
        min_user_events=parsed.get("min_user_events", 1),
        min_video_events=parsed.get("min_video_events", 1),
        source=str(channel),
        videos=videos,
    )
    log.info(json.dumps({"features": features.report}))
    result = train(
        features,
        params,
        tune_trials=parsed.get("tune_trials", DEFAULT_TUNE_TRIALS) if parsed.get("tune", False) else 0,
        allow_worse=parsed.get("allow_worse", False),
        relevant_completion=parsed.get("relevant_completion", DEFAULT_MIN_COMPLETION),
        relevant_min_rating=parsed.get("relevant_min_rating"),
        split=parsed.get("split", "auto"),
        test_days=parsed.get("test_days", DEFAULT_TEST_DAYS),
        ranker=parsed.get("ranker", "auto"),
    )
    artifacts = to_artifacts(result, parsed.get("topn", DEFAULT_TOPN), parsed.get("ann", "auto"))
    directory = write_model_dir(artifacts, root / "model")
    log.info(json.dumps({"model_dir": str(directory), "metrics": result.metrics}))


_TYPES = {
    "factors": int,
    "iterations": int,
    "seed": int,
    "tune_trials": int,
    "topn": int,
    "test_days": int,
    "min_user_events": int,
    "min_video_events": int,
    "regularization": float,
    "alpha": float,
    "completion_weight": float,
    "skip_below": float,
    "skip_weight": float,
    "rating_weight": float,
    "relevant_completion": float,
    "relevant_min_rating": float,
    "scaling": str,
    "ann": str,
    "split": str,
    "ranker": str,
    "tune": "bool",
    "allow_worse": "bool",
}


def _typed(values: dict[str, str]) -> dict:
    typed = {}
    for name, kind in _TYPES.items():
        if name not in values:
            continue
        raw = values[name].strip()
        try:
            typed[name] = parse_bool(raw) if kind == "bool" else kind(raw)
        except ValueError:
            expected = "true or false" if kind == "bool" else kind.__name__
            raise TrainingJobError(f"hyperparameter {name}={raw!r}: expected {expected}") from None
    return typed


def main() -> int:
    limit_blas_threads()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    root = Path(os.environ.get("VR_OPT_ML", "/opt/ml"))
    try:
        run(root)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.exception("training job failed")
        failure = root / "output" / "failure"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(reason + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
