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
) -> ModelArtifacts:
    """The content of a model directory; `manifest` holds what the trainer knows (parameters, evaluation)."""
    digest = hashlib.sha256(user_items.data.tobytes() + user_items.indices.tobytes()).hexdigest()[:8]
    lists, indexes, serving = serving_aids(user_factors, item_factors, user_items, topn_size, ann_mode)
    manifest = {
        "model_version": f"als-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{digest}",
        **manifest,
        "data": {"users": len(user_ids), "videos": len(video_ids), "pairs": int(user_items.nnz), **manifest["data"]},
        "serving": serving,
    }
    return ModelArtifacts(
        user_factors=user_factors,
        item_factors=item_factors,
        user_items=user_items,
        popularity=engagement(user_items),
        user_ids=user_ids,
        video_ids=video_ids,
        manifest=manifest,
        reports=report.render(manifest),
        topn=lists,
        ann=indexes,
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
