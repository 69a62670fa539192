"""Model directories with random factors, for load tests, scale benchmarks and tests of serving mechanics.

They have the shape of a trained model (factors, watched videos, popularity, optional top-N lists) but no
meaning: use them to measure speed and memory, never quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from vrmodels.artifacts import ModelArtifacts, write_model_dir
from vrmodels.topn import build_topn


def ids(prefix: str, count: int) -> list[str]:
    """`u000000`..`u099999`: zero-padded to the width of the largest index (at least 3 digits)."""
    width = max(3, len(str(count - 1)))
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def random_model(
    directory: Path, users: int, videos: int, factors: int, watched: int = 10, topn: int = 0, seed: int = 0
) -> Path:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(users), watched)
    user_items = csr_matrix(
        (np.ones(len(rows), np.float32), (rows, rng.integers(0, videos, size=len(rows)))), shape=(users, videos)
    )
    user_items.sum_duplicates()
    user_factors = rng.normal(0, 0.1, (users, factors)).astype(np.float32)
    item_factors = rng.normal(0, 0.1, (videos, factors)).astype(np.float32)
    return write_model_dir(
        ModelArtifacts(
            user_factors=user_factors,
            item_factors=item_factors,
            user_items=user_items,
            popularity=np.bincount(user_items.indices, minlength=videos).astype(np.float32),
            user_ids=ids("u", users),
            video_ids=ids("v", videos),
            manifest={"model_version": f"random-{users}x{videos}x{factors}", "parameters": {"alpha": 1.0}},
            topn=build_topn(user_factors, item_factors, user_items, topn) if topn else None,
        ),
        directory,
    )
