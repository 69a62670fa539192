"""Model directories with random factors, for load tests, scale benchmarks and tests of serving mechanics.

They have the shape of a trained model (factors, watched videos, popularity, optional top-N lists) but no
meaning: use them to measure speed and memory, never quality. Factors are drawn around topic centroids with
unit noise and log-normal norms, the structure trained ALS factors have: an IVF index finds their neighbours
as well as it finds those of factors trained on MovieLens-100K at the same size (recall@10 0.17/0.32/0.54 at
nprobe 1/2/4, trained 0.22/0.35/0.54), where isotropic Gaussian factors, ANN's worst case, give 0.10/0.16/0.26.
The number of topics grows like √videos (16 at MovieLens' 1,682 films, which have 19 genres).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from features.sittings import DEFAULT_GAP_MINUTES
from vrmodels.model.artifacts import ModelArtifacts, write_model_dir
from vrmodels.model.manifest import Manifest
from vrmodels.model.sessions import RECENT, SessionTables, WatchedNext
from vrmodels.training.aids import with_serving_aids
from vrmodels.training.sessions import sessions_entry

DATA_END = 1_740_000_000  # the random sessions' 'now' (seen times are up to 30 days before it)


def ids(prefix: str, count: int) -> list[str]:
    """`u000000`..`u099999`: zero-padded to the width of the largest index (at least 3 digits)."""
    width = max(3, len(str(count - 1)))
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def topic_factors(rng: np.random.Generator, users: int, videos: int, factors: int) -> tuple[np.ndarray, np.ndarray]:
    """User and video factors around shared topic centroids (see the module docstring), scaled like ALS's."""
    topics = max(16, round(np.sqrt(videos) / 2.5))
    centroids = rng.normal(size=(topics, factors)).astype(np.float32)

    def around_topics(count: int) -> np.ndarray:
        rows = np.empty((count, factors), dtype=np.float32)
        for start in range(0, count, 100_000):  # in slices: bounded temporaries at a million rows
            end = min(start + 100_000, count)
            noise = rng.standard_normal((end - start, factors), dtype=np.float32)
            rows[start:end] = centroids[rng.integers(0, topics, end - start)] + noise
        return rows

    item_factors = around_topics(videos) * (0.1 * rng.lognormal(0, 0.69, (videos, 1))).astype(np.float32)
    return around_topics(users) * np.float32(0.1), item_factors


def random_model(
    directory: Path,
    users: int,
    videos: int,
    factors: int,
    watched: int = 10,
    topn: int = 0,
    ann_mode: str = "off",
    seed: int = 0,
    followers: int = 0,
) -> Path:
    """`followers`: with session tables, each video followed by that many random videos (random shares), each user's
    last sitting their last watched videos (0: no session tables, a format 5 shape)."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(users), watched)
    user_items = csr_matrix(
        (np.ones(len(rows), np.float32), (rows, rng.integers(0, videos, size=len(rows)))), shape=(users, videos)
    )
    user_items.sum_duplicates()
    user_factors, item_factors = topic_factors(rng, users, videos, factors)
    artifacts = ModelArtifacts(
        user_factors=user_factors,
        item_factors=item_factors,
        user_items=user_items,
        popularity=np.bincount(user_items.indices, minlength=videos).astype(np.float32),
        user_ids=ids("u", users),
        video_ids=ids("v", videos),
        manifest=Manifest(
            model_version=f"random-{users}x{videos}x{factors}",
            parameters={"alpha": 1.0},
            sessions=sessions_entry(gap_minutes=DEFAULT_GAP_MINUTES, data_end=DATA_END, followers=followers)
            if followers
            else None,
        ),
        sessions=random_sessions(rng, user_items, videos, followers) if followers else None,
    )
    return write_model_dir(with_serving_aids(artifacts, topn=topn, ann=ann_mode), directory)


def random_sessions(rng: np.random.Generator, user_items: csr_matrix, videos: int, followers: int) -> SessionTables:
    """Session tables of the shape training writes (vrmodels.model.sessions), with no meaning."""
    targets = np.sort(rng.integers(0, videos, size=(videos, followers)), axis=1)
    shares = rng.random((videos, followers)).astype(np.float32)
    shares /= shares.sum(axis=1, keepdims=True)
    recent = np.full((user_items.shape[0], RECENT), -1, dtype=np.int32)
    last = user_items.indices[np.maximum(user_items.indptr[1:] - 1, 0)]
    recent[:, -1] = np.where(np.diff(user_items.indptr) > 0, last, -1)
    return SessionTables(
        next=WatchedNext(
            np.arange(videos + 1, dtype=np.int64) * followers,
            targets.ravel().astype(np.int32),
            shares.ravel(),
            rng.random(videos).astype(np.float32) * 10,
        ),
        user_recent=recent,
        user_items_seen=rng.random(user_items.nnz).astype(np.float32) * 30 * 24 * 3600,
    )
