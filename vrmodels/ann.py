"""Approximate top-k over large catalogues with faiss: built with the model, memory-mapped at serving.

Two HNSW graphs (faiss IndexHNSWFlat, M=32), chosen by measurement at a million videos whose factors have the
structure trained ALS factors have (vrmodels.synthetic): recall@10 0.995 at 0.6 ms per query, where IVF-Flat
reached 0.83 at nprobe 256 (inner products over factors of varied norms defeat coarse cells).
- `ann_inner_product.faiss`, over the raw factors: candidates for a user (known, folded in, or in a batch).
- `ann_cosine.faiss`, over unit-normalised factors: candidates for similar videos, ranked by cosine. An
  inner-product pool misses them (recall@10 0.10 at 200 candidates: it favours videos with large norms).
Both are read with IO_FLAG_MMAP_IFC: the vectors and the graph stay file-backed pages that every worker
shares, like the factors. The server re-ranks each candidate pool by exact score (see vrmodels.catalogue).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

INNER_PRODUCT_FILE = "ann_inner_product.faiss"
COSINE_FILE = "ann_cosine.faiss"
FILES = (INNER_PRODUCT_FILE, COSINE_FILE)
AUTO_MIN_VIDEOS = 100_000  # `--ann auto` builds from this catalogue size on
MIN_VIDEOS = 1_000  # below this, `--ann on` says so and keeps exact scoring: a pool would be most of the catalogue
HNSW_M = 32
EF_CONSTRUCTION = 80
MODES = ("auto", "on", "off")


class AnnIndexError(ValueError):
    """An index that does not match the model's factors."""


@dataclass
class AnnIndexes:
    inner_product: object  # faiss.Index
    cosine: object

    @classmethod
    def build(cls, item_factors: np.ndarray) -> AnnIndexes:
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
        threadpool_limits(1, "blas")  # faiss's OpenBLAS is an OpenMP build: it followed the build's thread count
        return cls(*indexes)

    def save(self, directory: Path) -> tuple[str, ...]:
        faiss = faiss_module()

        for index, name in zip((self.inner_product, self.cosine), FILES):
            faiss.write_index(index, str(directory / name))
        return FILES

    @classmethod
    def load(cls, directory: Path, videos: int, factors: int, mmap: bool = True) -> AnnIndexes:
        """Memory-mapped (shared between processes) and checked against the model's item factors."""
        faiss = faiss_module()

        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
        indexes = []
        for name in FILES:
            path = directory / name
            try:
                index = faiss.read_index(str(path), flags)
            except RuntimeError as exc:
                raise AnnIndexError(f"{path}: not a faiss index ({str(exc).splitlines()[0]})") from None
            if index.ntotal != videos or index.d != factors or index.metric_type != faiss.METRIC_INNER_PRODUCT:
                raise AnnIndexError(
                    f"{path}: indexes {index.ntotal} vectors of {index.d} dimensions, the model has {videos} videos "
                    f"of {factors} factors (an index from another model?)"
                )
            indexes.append(index)
        return cls(*indexes)


@cache
def faiss_module():
    """faiss, imported on first use: it loads its own OpenBLAS, which must stay at one thread like NumPy's
    (vrmodels/__init__.py: a threaded BLAS under implicit's fold-in solver is ~50× slower). Once per process:
    threadpoolctl reads the process's memory maps on every call."""
    import faiss

    threadpool_limits(1, "blas")
    return faiss


def should_build(mode: str, videos: int) -> tuple[bool, str]:
    """Whether `--ann mode` builds indexes for this catalogue, and the sentence that says why."""
    if mode not in MODES:
        raise ValueError(f"--ann must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "off":
        return False, "ANN off: every request is scored exactly"
    if mode == "auto" and videos < AUTO_MIN_VIDEOS:
        return False, f"ANN off: {videos} videos, exact scoring is fast below {AUTO_MIN_VIDEOS} (--ann on to build)"
    if videos < MIN_VIDEOS:
        return False, f"ANN skipped: {videos} videos are too few for an index (from {MIN_VIDEOS}); scoring stays exact"
    return True, f"ANN on: HNSW indexes over {videos} videos (M={HNSW_M})"
