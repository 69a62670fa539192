"""Serving aids: what training builds so that the server need not score the whole catalogue per request.

- ANN indexes (vrmodels.model.ann): two faiss HNSW graphs (M=32), chosen by measurement at a million videos
  whose factors have the structure trained ALS factors have (bench.synthetic): recall@10 0.995 at 0.6 ms per
  query, where IVF-Flat reached 0.83 at nprobe 256 (inner products over factors of varied norms defeat coarse
  cells). `--ann auto` builds them from AUTO_MIN_VIDEOS videos on; below that exact top-k is as fast.
- Precomputed top-N lists (vrmodels.model.topn), ranked by the model's own ranking (vrmodels.model.ranking), through
  the indexes just built, exactly as the server ranks a known user's request (with the scores when the ranking
  keeps them), so a list holds the server's own answer.
- For a model that ranks up next (a sitting of one watch through both stages: a tenth of the request's time when
  looked up instead, docs/benchmarks.md), each video's up next for anyone, ranked by the server's own Recommender.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from vrmodels.model.ann import AnnIndexes, faiss_module
from vrmodels.model.artifacts import ModelArtifacts
from vrmodels.model.indices import NO_VIDEOS
from vrmodels.model.manifest import ServingEntry
from vrmodels.model.narrowing import Narrowing
from vrmodels.model.queries import SimilarQuery
from vrmodels.model.ranking import RANKINGS
from vrmodels.model.ranking.base import OFFLINE_CHUNK, QueryBatch, Ranking
from vrmodels.model.recommend import Recommender, after_watching
from vrmodels.model.threads import limit_blas_threads
from vrmodels.model.topk import CatalogueTopK

log = logging.getLogger(__name__)

AUTO_MIN_VIDEOS = 100_000  # `--ann auto` builds from this catalogue size on
MIN_VIDEOS = 1_000  # below this, `--ann on` says so and keeps exact scoring: a pool would be most of the catalogue
HNSW_M = 32
EF_CONSTRUCTION = 80
ANN_MODES = ("auto", "on", "off")


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


def precomputed_lists(ranking: Ranking, artifacts: ModelArtifacts, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Users × n: each known user's answer to "my n best unwatched videos", ranked by `ranking` exactly as the
    server would rank it (-1 padded where fewer remain), and their scores when the ranking keeps them."""
    user_items, users = artifacts.user_items, artifacts.user_items.shape[0]
    lists = np.full((users, n), -1, dtype=np.int32)
    scores = np.full((users, n), np.nan, dtype=np.float32) if ranking.stores_scores else None
    plain = Narrowing(ranking.unavailable)
    entry = artifacts.manifest.sessions
    at_home = {"sessions": artifacts.sessions, "now": entry.data_end} if artifacts.sessions and entry else {}
    for start in range(0, users, OFFLINE_CHUNK):
        chunk = np.arange(start, min(start + OFFLINE_CHUNK, users))
        batch = QueryBatch.of_users(artifacts.user_factors, user_items, chunk, k=n, narrowing=plain, **at_home)
        for user, (ids, values) in zip(chunk, ranking.rank(batch, chunk=OFFLINE_CHUNK)):
            lists[user, : len(ids)] = ids
            if scores is not None:
                scores[user, : len(ids)] = values
    return lists, scores


def up_next_lists(artifacts: ModelArtifacts, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Videos × n: each video's answer to `{"video_id", "k": n}` (up next for anyone) and its scores, ranked by the
    Recommender the server runs (-1 padded where fewer remain)."""
    recommender = Recommender(artifacts)
    video_ids = artifacts.videos.all_ids()
    lists = np.full((len(video_ids), n), -1, dtype=np.int32)
    scores = np.full((len(video_ids), n), np.nan, dtype=np.float32)
    for start in range(0, len(video_ids), OFFLINE_CHUNK):
        chunk = video_ids[start : start + OFFLINE_CHUNK]
        resolved = [recommender.resolver.resolve(after_watching(SimilarQuery(video_id, n))) for video_id in chunk]
        ranked = recommender.ranked(resolved, chunk=OFFLINE_CHUNK)  # type: ignore[arg-type]  (a history resolves)
        for video, (ids, values) in enumerate(ranked, start=start):
            lists[video, : len(ids)] = ids
            scores[video, : len(ids)] = values
    return lists, scores


def with_serving_aids(artifacts: ModelArtifacts, *, topn: int, ann: str) -> ModelArtifacts:
    """`artifacts` with ANN indexes (`ann`: auto, on, off) and each user's top-`topn` list ranked through them by
    the model's own ranking, and the manifest's `serving` entry saying what was built and why."""
    item_factors = artifacts.item_factors
    build, reason = should_build_ann(ann, item_factors.shape[0])
    log.info(reason)
    indexes = build_ann(item_factors) if build else None
    unavailable = artifacts.tables.unavailable() if artifacts.tables is not None else NO_VIDEOS
    with_indexes = replace(artifacts, ann=indexes)
    kind = RANKINGS[artifacts.manifest.kind]
    ranking = kind.from_artifacts(with_indexes, CatalogueTopK(np.asarray(item_factors), indexes), unavailable)
    width = min(ranking.precomputed_width(topn), item_factors.shape[0])
    described = {"mode": ann, "built": build, "reason": reason}
    if build:
        described |= {"kind": "faiss.IndexHNSWFlat", "m": HNSW_M, "ef_construction": EF_CONSTRUCTION}
    lists, scores = precomputed_lists(ranking, with_indexes, width) if width else (None, None)
    up_next, up_next_scores = up_next_lists(with_indexes, width) if width and ranking.ranks_up_next else (None, None)
    entry = ServingEntry(topn=width, up_next=0 if up_next is None else width, ann=described, **ranking.aids_entry())
    return replace(
        with_indexes,
        topn=lists,
        topn_scores=scores,
        up_next=up_next,
        up_next_scores=up_next_scores,
        manifest=artifacts.manifest.model_copy(update={"serving": entry}),
    )
