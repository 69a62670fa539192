"""Approximate top-k over large catalogues: two faiss HNSW graphs, memory-mapped at serving.

- `ann_inner_product.faiss`, over the raw factors: candidates for a user (known, folded in, or in a batch).
- `ann_cosine.faiss`, over unit-normalised factors: candidates for similar videos, ranked by cosine. An
  inner-product pool misses them (recall@10 0.10 at 200 candidates: it favours videos with large norms).
Both are read with IO_FLAG_MMAP_IFC: the vectors and the graph stay file-backed pages that every worker
shares, like the factors. The server re-ranks each candidate pool by exact score (vrmodels.model.catalogue);
training builds them (vrmodels.training.aids).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from vrmodels.model.threads import limit_blas_threads

INNER_PRODUCT_FILE = "ann_inner_product.faiss"
COSINE_FILE = "ann_cosine.faiss"
FILES = (INNER_PRODUCT_FILE, COSINE_FILE)


class AnnIndexError(ValueError):
    """An index that does not match the model's factors."""


@dataclass
class AnnIndexes:
    inner_product: object  # faiss.Index
    cosine: object

    def save(self, directory: Path) -> tuple[str, ...]:
        faiss = faiss_module()
        for index, name in zip((self.inner_product, self.cosine), FILES):
            faiss.write_index(index, str(directory / name))
        return FILES

    @classmethod
    def load(cls, directory: Path, videos: int, factors: int, *, mmap: bool = True) -> AnnIndexes:
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
    (vrmodels.model.threads). Once per process: threadpoolctl reads the process's memory maps on every call.
    faiss's loader reports at INFO each SIMD module it looks for and does not find ("Could not load library with
    AVX2 support"); the wheel dispatches to AVX2/AVX-512 within its one module, so those lines are kept out of the
    logs."""
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import faiss

    limit_blas_threads()
    return faiss
