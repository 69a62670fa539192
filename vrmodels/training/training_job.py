"""SageMaker training-job contract, run by `serve.py train` (what `docker run IMAGE train` starts).

Reads every CSV/CSV.gz/Parquet file (or MovieLens `u.data`) of channel `<root>/input/data/<channel>/`, the
video catalogue from channel `<root>/input/data/<videos_channel>/` when the job has one (or MovieLens `u.item`),
hyperparameters from `<root>/input/config/hyperparameters.json` (SageMaker sends every value as a string),
builds features, trains with the quality gate, and writes the model files straight into `<root>/model`,
which SageMaker tars into `model.tar.gz`. On failure the reason goes to `<root>/output/failure` (SageMaker
shows its first 1024 characters) and the exit status is non-zero. `<root>` is `$VR_OPT_ML` or `/opt/ml`.

Hyperparameters (all optional) are the options of JobInputs below, of the ALS parameters
(vrmodels.training.als.TrainParams), of the training options (vrmodels.training.options.TrainingOptions) and of
the confidence (features.confidence.ConfidenceConfig; event_weights as a JSON object), by the same names and
with the same defaults as the command lines' flags.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.build_features import CATALOGUE_FORMATS, READERS, build_features
from features.catalogue import read_catalogue
from features.confidence import ConfidenceConfig
from features.events import read_events, read_movielens
from features.options import option
from features.sittings import DEFAULT_GAP_MINUTES
from vrmodels.model.artifacts import write_model_dir
from vrmodels.model.manifest import MANIFEST_FILE, Manifest
from vrmodels.model.opt_ml import opt_ml_root
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training.als import TrainParams
from vrmodels.training.logs import log_to_stdout
from vrmodels.training.model_dir import to_artifacts
from vrmodels.training.options import HyperparameterError, TrainingOptions, from_hyperparameters
from vrmodels.training.registry import metric_lines
from vrmodels.training.trainer import train

log = logging.getLogger(__name__)

EVENT_SUFFIXES = (".csv", ".gz", ".parquet")


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


@dataclass(frozen=True)
class JobInputs:
    """Where the job's data comes from: hyperparameters of their own, beside the training options."""

    channel: str = option("training", "the input channel of the events")
    videos_channel: str = option("videos", "the input channel of the video catalogue (optional)")
    input_format: str = option("events", "events (CSV/Parquet) or movielens (u.data, u.item)", choices=READERS)
    min_user_events: int = option(1, "users with fewer events are dropped (and counted)")
    min_video_events: int = option(1, "videos with fewer events are dropped (and counted)")
    session_gap: float = option(DEFAULT_GAP_MINUTES, "minutes without an event that end a sitting")


def run(root: Path) -> None:
    values = hyperparameters(root)
    try:
        inputs = JobInputs(**from_hyperparameters(values, JobInputs))
        params = TrainParams(**from_hyperparameters(values, TrainParams))
        options = TrainingOptions(**from_hyperparameters(values, TrainingOptions))
        confidence = ConfidenceConfig(**from_hyperparameters(values, ConfidenceConfig))
    except HyperparameterError as exc:
        raise TrainingJobError(str(exc)) from None
    channel = root / "input" / "data" / inputs.channel
    events = read_channel(channel, inputs.input_format)
    videos = read_videos_channel(root / "input" / "data" / inputs.videos_channel, inputs.input_format)
    features = build_features(
        events,
        confidence,
        min_user_events=inputs.min_user_events,
        min_video_events=inputs.min_video_events,
        source=str(channel),
        videos=videos,
        session_gap_minutes=inputs.session_gap,
    )
    log.info(json.dumps({"features": features.report}))
    result = train(features, params, options)
    artifacts = to_artifacts(result.trained, topn=options.topn, ann=options.ann)
    directory = write_model_dir(artifacts, root / "model")
    log.info(json.dumps({"model_dir": str(directory), "metrics": result.metrics}))
    for line in metric_lines(Manifest.read(directory / MANIFEST_FILE)):  # SageMaker's training metrics
        log.info(line)


def main() -> int:
    limit_blas_threads()
    log_to_stdout()
    root = opt_ml_root()
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
