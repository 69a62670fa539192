"""Serving aids: what training builds so that the server need not score the whole catalogue per request.

- ANN indexes (vrmodels.model.ann): two faiss HNSW graphs (M=32), chosen by measurement at a million videos
  whose factors have the structure trained ALS factors have (bench.synthetic): recall@10 0.995 at 0.6 ms per
  query, where IVF-Flat reached 0.83 at nprobe 256 (inner products over factors of varied norms defeat coarse
  cells). `--ann auto` builds them from AUTO_MIN_VIDEOS videos on; below that exact top-k is as fast.
- Precomputed top-N lists (vrmodels.model.topn), ranked through the very CatalogueRanker the server will use
  (exact, or through the indexes just built), or by the two stages when the model has a ranker (with each
  video's ranker score), so a list holds the server's own answer.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

from vrmodels.model.ann import AnnIndexes, faiss_module
from vrmodels.model.catalogue import FILTERED_SCORE, CatalogueRanker
from vrmodels.model.ranker import Ranker
from vrmodels.model.threads import limit_blas_threads
from vrmodels.model.twostage import POOL, Profiles, TwoStage
from vrmodels.model.videos import VideoTables

log = logging.getLogger(__name__)

AUTO_MIN_VIDEOS = 100_000  # `--ann auto` builds from this catalogue size on
MIN_VIDEOS = 1_000  # below this, `--ann on` says so and keeps exact scoring: a pool would be most of the catalogue
HNSW_M = 32
EF_CONSTRUCTION = 80
ANN_MODES = ("auto", "on", "off")
_CHUNK_USERS = 4096


def should_build_ann(mode: str, videos: int) -> tuple[bool, str]:
    """Whether `--ann mode` builds indexes for this catalogue, and the sentence that says why."""
    if mode not in ANN_MODES:
        raise ValueError(f"--ann must be one of {', '.join(ANN_MODES)}, got {mode!r}")
    if mode == "off":
        return False, "ANN off: every request is scored exactly"
    if mode == "auto" and videos < AUTO_MIN_VIDEOS:
        return False, f"ANN off: {videos} videos, exact scoring is fast below {AUTO_MIN_VIDEOS} (--ann on to build)"
    if videos < MIN_VIDEOS:
        return False, f"ANN skipped: {videos} videos are too few for an index (from {MIN_VIDEOS}); scoring stays exact"
    return True, f"ANN on: HNSW indexes over {videos} videos (M={HNSW_M})"


def build_ann(item_factors: np.ndarray) -> AnnIndexes:
    """The two graphs of vrmodels.model.ann: inner product over the factors, and over unit-normalised ones."""
    faiss = faiss_module()
    factors = np.ascontiguousarray(item_factors, dtype=np.float32)
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    indexes = []
    with threadpool_limits(os.cpu_count() or 1, "openmp"):  # every core for the build only
        for vectors in (factors, factors / np.where(norms > 0, norms, 1.0)):
            index = faiss.IndexHNSWFlat(factors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = EF_CONSTRUCTION
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            indexes.append(index)
    limit_blas_threads()  # faiss's OpenBLAS is an OpenMP build: it followed the build's thread count
    return AnnIndexes(*indexes)


def build_topn(
    ranker: CatalogueRanker,
    user_factors: np.ndarray,
    user_items: csr_matrix,
    n: int,
    unavailable: np.ndarray | None = None,
) -> np.ndarray:
    """Users × min(n, videos) best unwatched video indices, best first, -1 where fewer remain; `unavailable`
    videos (not published yet at the data end) are in no list."""
    users = user_items.shape[0]
    n = min(n, ranker.videos)
    lists = np.full((users, n), -1, dtype=np.int32)
    for start in range(0, users, _CHUNK_USERS):
        end = min(start + _CHUNK_USERS, users)
        filters = user_items[start:end]
        if unavailable is not None and len(unavailable):
            rows = np.repeat(np.arange(end - start), len(unavailable))
            blocked = csr_matrix(
                (np.ones(len(rows), np.float32), (rows, np.tile(unavailable, end - start))), filters.shape
            )
            filters = (filters + blocked).tocsr()
        ids, scores = ranker.top_k(user_factors[start:end], filters, n)
        lists[start:end] = np.where(scores > FILTERED_SCORE, ids, -1)
    return lists


def build_two_stage_topn(two_stage: TwoStage, user_factors: np.ndarray, user_items: csr_matrix, n: int) -> tuple:
    """Users × n best unwatched video indices by the two stages (-1 padded) and their ranker scores (NaN)."""
    users = user_items.shape[0]
    lists = np.full((users, n), -1, dtype=np.int32)
    scores = np.full((users, n), np.nan, dtype=np.float32)
    for start in range(0, users, _CHUNK_USERS):
        chunk = np.arange(start, min(start + _CHUNK_USERS, users))
        for row, (ids, values) in enumerate(
            zip(*two_stage.rank(Profiles.of_users(user_factors, user_items, chunk), n))
        ):
            lists[start + row, : min(n, len(ids))], scores[start + row, : min(n, len(ids))] = ids[:n], values[:n]
    return lists, scores


@dataclass
class ServingAids:
    topn: np.ndarray | None
    topn_scores: np.ndarray | None
    ann: AnnIndexes | None
    manifest: dict
    """What was built and why (the manifest's `serving` entry)."""


def serving_aids(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    user_items: csr_matrix,
    topn_size: int,
    ann_mode: str,
    tables: VideoTables | None = None,
    ranker: Ranker | None = None,
) -> ServingAids:
    """ANN indexes (`ann_mode`: auto, on, off), then each user's top-N ranked through them, by the two stages when
    there is a ranker."""
    build, reason = should_build_ann(ann_mode, item_factors.shape[0])
    log.info(reason)
    indexes = build_ann(item_factors) if build else None
    catalogue = CatalogueRanker(item_factors, indexes)
    two_stage = ranker is not None and tables is not None
    # A two-stage list is as long as stage 1's pool: a longer one would rank a wider pool for every user (the
    # server ranks larger k on demand, widening the pool to 2k).
    width = min(topn_size, POOL) if two_stage else topn_size
    entry: dict = {"topn": width, "ann": {"mode": ann_mode, "built": build, "reason": reason}}
    if build:
        entry["ann"] |= {"kind": "faiss.IndexHNSWFlat", "m": HNSW_M, "ef_construction": EF_CONSTRUCTION}
    lists = scores = None
    if two_stage:
        entry["two_stage"] = {"pool": POOL}
        if width:
            ranking = TwoStage(item_factors, tables, catalogue, ranker, POOL)  # type: ignore[arg-type]
            lists, scores = build_two_stage_topn(ranking, user_factors, user_items, width)
    elif topn_size:
        unavailable = np.flatnonzero(~tables.available()) if tables is not None else None
        lists = build_topn(catalogue, user_factors, user_items, topn_size, unavailable)
    return ServingAids(lists, scores, indexes, entry)
