"""A model directory from any trainer's fitted parts: version, data counts, serving aids, report; then saved."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from vrmodels.model.artifacts import ModelArtifacts, write_model_dir
from vrmodels.model.popularity import engagement
from vrmodels.model.ranker import Ranker
from vrmodels.model.videos import VideoTables
from vrmodels.training import report
from vrmodels.training.aids import serving_aids


def assemble(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    user_items: csr_matrix,
    user_ids: Sequence[str],
    video_ids: Sequence[str],
    manifest: dict,
    topn_size: int,
    ann_mode: str,
    tables: VideoTables | None = None,
    ranker: Ranker | None = None,
    popularity: np.ndarray | None = None,
) -> ModelArtifacts:
    """The content of a model directory; `manifest` holds what the trainer knows (parameters, evaluation); the
    catalogue tables and the ranker, when given, are written too and shape the precomputed lists. `popularity`
    is the fallback ranking (default: engagement, vrmodels.model.popularity)."""
    digest = hashlib.sha256(user_items.data.tobytes() + user_items.indices.tobytes()).hexdigest()[:8]
    aids = serving_aids(user_factors, item_factors, user_items, topn_size, ann_mode, tables, ranker)
    manifest = {
        "model_version": f"als-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{digest}",
        **manifest,
        "data": {"users": len(user_ids), "videos": len(video_ids), "pairs": int(user_items.nnz), **manifest["data"]},
        "serving": aids.manifest,
    }
    if tables is not None:
        manifest["catalogue"] = tables.manifest()
    return ModelArtifacts(
        user_factors=user_factors,
        item_factors=item_factors,
        user_items=user_items,
        popularity=engagement(user_items) if popularity is None else popularity,
        user_ids=user_ids,
        video_ids=video_ids,
        manifest=manifest,
        reports=report.render(manifest),
        topn=aids.topn,
        ann=aids.ann,
        tables=tables,
        ranker=ranker,
        topn_scores=aids.topn_scores,
    )


def save_versioned(artifacts: ModelArtifacts, models_root: Path) -> Path:
    """Write `<models_root>/<version>/` and repoint the `latest` symlink at it."""
    directory = write_model_dir(artifacts, models_root / artifacts.manifest["model_version"])
    link = models_root / "latest"
    temporary = models_root / ".latest.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(directory.name)
    temporary.replace(link)
    return directory
