"""The one way any trainer's result becomes a model directory: a `TrainedModel` in, serving aids built, report
rendered, written versioned.

The local trainer (vrmodels.training.trainer) and the Spark trainer (vrmodels.training.spark) each produce a
`TrainedModel`; everything after that is shared, so the server cannot tell which trainer ran.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from vrmodels.model.artifacts import ModelArtifacts, write_model_dir
from vrmodels.model.lightgbm_ranker import LightGBMRanker
from vrmodels.model.manifest import Manifest
from vrmodels.model.popularity import engagement
from vrmodels.model.sessions import SessionTables
from vrmodels.model.topn import DEFAULT_TOPN
from vrmodels.model.videos import VideoTables
from vrmodels.training import report
from vrmodels.training.aids import with_serving_aids

LATEST = "latest"


@dataclass(frozen=True)
class TrainedModel:
    """What a trainer ships: factors fitted on every event, the ids, what the manifest says, and the optional parts."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_items: csr_matrix
    """Users × videos confidences: what each user watched (filters answers, drives fold-in)."""
    user_ids: Sequence[str]
    video_ids: Sequence[str]
    manifest: Manifest
    """What the trainer knows: kind, algorithm, parameters, confidence, data report, evaluation, metrics."""
    tables: VideoTables | None = None
    ranker: LightGBMRanker | None = None
    popularity: np.ndarray | None = None
    """The fallback ranking (default: engagement, vrmodels.model.popularity)."""
    sessions: SessionTables | None = None
    """The watched-next table and the users' last sittings (vrmodels.model.sessions)."""


def to_artifacts(trained: TrainedModel, *, topn: int = DEFAULT_TOPN, ann: str = "auto") -> ModelArtifacts:
    """The content of the model directory: the trained parts, a version named by what it holds, the serving aids
    (`topn` lists, `ann` indexes: vrmodels.training.aids), the catalogue's entry and the evaluation report."""
    user_items = trained.user_items
    digest = hashlib.sha256(user_items.data.tobytes() + user_items.indices.tobytes()).hexdigest()[:8]
    version = f"{trained.manifest.kind.replace('_', '-')}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{digest}"
    counts = {"users": len(trained.user_ids), "videos": len(trained.video_ids), "pairs": int(user_items.nnz)}
    manifest = trained.manifest.model_copy(
        update={
            "model_version": version,
            "data": counts | trained.manifest.data,
            "catalogue": trained.tables.manifest_entry() if trained.tables is not None else None,
        }
    )
    artifacts = with_serving_aids(
        ModelArtifacts(
            user_factors=trained.user_factors,
            item_factors=trained.item_factors,
            user_items=user_items,
            popularity=engagement(user_items) if trained.popularity is None else trained.popularity,
            user_ids=trained.user_ids,
            video_ids=trained.video_ids,
            manifest=manifest,
            tables=trained.tables,
            ranker=trained.ranker,
            sessions=trained.sessions,
        ),
        topn=topn,
        ann=ann,
    )
    artifacts.reports = report.render(artifacts.manifest)
    return artifacts


def save_versioned(artifacts: ModelArtifacts, models_root: Path) -> Path:
    """Write `<models_root>/<version>/` and repoint the `latest` symlink at it."""
    directory = write_model_dir(artifacts, models_root / artifacts.manifest.model_version)
    link = models_root / LATEST
    temporary = models_root / f".{LATEST}.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(directory.name)
    temporary.replace(link)
    return directory
