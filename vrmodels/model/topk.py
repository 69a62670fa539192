"""Top-k over the whole catalogue for many query vectors at once: exact, or through an ANN candidate pool.

Without ANN indexes this is implicit's top-k (every video scored). With them, each query fetches a pool of
max(pool, 2k) candidates from the HNSW graph, the pool is re-scored exactly (a dot product per candidate),
watched and excluded videos are removed, and the best k are kept; a query whose pool the filters leave with
fewer than k videos (a heavy watcher, a long exclude list) is scored exactly instead. Every ranking's first
step (vrmodels.model.ranking), the precomputed lists built through them and the evaluation's lists
(vrmodels.training.evaluation) go through it, so a precomputed or judged answer is the one the server would
compute.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from implicit.cpu.topk import topk
from scipy.sparse import csr_matrix

from vrmodels.model.ann import AnnIndexes, faiss_module

FILTERED_SCORE = -1e38  # implicit marks filtered items with -finfo.max; anything below this is filtered
DEFAULT_POOL = 200  # candidates per query: recall@10 0.995 at a million videos (docs/large-catalogues.md)


class CatalogueTopK:
    def __init__(
        self,
        item_factors: np.ndarray,
        ann: AnnIndexes | None = None,
        pool: int = DEFAULT_POOL,
        ef_search: int = DEFAULT_POOL,
        num_threads: int = 0,
        column_major_copy: bool = True,
    ):
        self._items = item_factors
        # What exact top-k scores: implicit multiplies the queries by `items.T`, which OpenBLAS does 1.3-1.5× faster
        # for the small batches requests make when `items.T` is C-contiguous (docs/benchmarks.md). The copy costs
        # the factors' size once; the server makes it in the master, so every worker shares its pages. Not with ANN
        # indexes (exact scoring is then the fallback of a short pool), nor where `column_major_copy` is False.
        copy = column_major_copy and ann is None
        self._scored = np.asfortranarray(item_factors, dtype=np.float32) if copy else item_factors
        self._ann = ann
        self._pool = pool
        self._ef_search = ef_search
        self._num_threads = num_threads
        self._all_norms: np.ndarray | None = None  # exact similar videos only: computed on first use

    @property
    def approximate(self) -> bool:
        return self._ann is not None

    @property
    def videos(self) -> int:
        return len(self._items)

    def top_k(self, vectors: np.ndarray, filters: csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Best k video indices and scores per query row, none of its row in `filters`; FILTERED_SCORE pads."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        k = min(k, self.videos)
        if self._ann is None:
            return self._exact(vectors, filters, k)
        pool = min(self.videos, max(self._pool, 2 * k))
        candidates = self._search(self._ann.inner_product, vectors, pool)
        ids, scores = _padded(len(vectors), k)
        short: list[int] = []
        for row, (vector, found) in enumerate(zip(vectors, candidates)):
            start, end = filters.indptr[row], filters.indptr[row + 1]
            found = found[found >= 0]
            found = found[~np.isin(found, filters.indices[start:end], assume_unique=True)]
            if len(found) < k and pool < self.videos:
                short.append(row)  # the pool ran dry: the answer may lie outside it
                continue
            _keep_best(found, self._items[found] @ vector, ids[row], scores[row])
        if short:
            ids[short], scores[short] = self._exact(vectors[short], filters[short], k)
        return ids, scores

    def similar(self, videos: np.ndarray, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The k videos closest by cosine to each of `videos` (itself left out), best first."""
        n = min(k + 1, self.videos)
        queries = np.ascontiguousarray(self._items[videos], dtype=np.float32)
        queries /= _norms(queries)[:, None]
        if self._ann is None:
            if self._all_norms is None:
                self._all_norms = _norms(self._items)
            ids, scores = topk(self._scored, queries, n, item_norms=self._all_norms, num_threads=self._num_threads)
        else:
            pool = min(self.videos, max(self._pool, n))
            candidates = self._search(self._ann.cosine, queries, pool)
            ids, scores = _padded(len(videos), n)
            for row, (query, found) in enumerate(zip(queries, candidates)):
                found = found[found >= 0]
                vectors = self._items[found]
                _keep_best(found, (vectors @ query) / _norms(vectors), ids[row], scores[row])
        keep = ids != np.asarray(videos)[:, None]
        ranked_ids = [row_ids[row_keep][:k] for row_ids, row_keep in zip(ids, keep)]
        ranked_scores = [row_scores[row_keep][:k] for row_scores, row_keep in zip(scores, keep)]
        return ranked_ids, ranked_scores

    def _exact(self, vectors: np.ndarray, filters: csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        return filtered_topk(self._scored, vectors, k, filters=filters, num_threads=self._num_threads)

    def _search(self, index: object, queries: np.ndarray, pool: int) -> np.ndarray:
        """Candidate ids (-1 where the graph found fewer). Search breadth is set per call, so the shared index object
        is never changed; OpenMP's thread count is per thread, so it is set on the thread that searches."""
        faiss = faiss_module()
        if self._num_threads:
            faiss.omp_set_num_threads(self._num_threads)
        parameters = faiss.SearchParametersHNSW(efSearch=max(self._ef_search, pool))
        return index.search(queries, pool, params=parameters)[1]


def filtered_topk(
    items: np.ndarray, queries: np.ndarray, k: int, *, filters: csr_matrix, num_threads: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """implicit's top-k of `queries @ items.T`, none of a query's row of `filters` (queries × items) kept."""
    return topk(items, queries, k, filter_query_items=_FilterRows(filters), num_threads=num_threads)


class _FilterRows:
    """What implicit's top-k reads of its query filter, `filter[row].indices`, as a slice of the CSR's indices.
    scipy's row indexing builds a 1 × videos matrix for each row, which cost more than the top-k itself offline
    (40 of 390 s of a 5M-event training's profile, docs/training.md) and ~40 µs a served query."""

    def __init__(self, matrix: csr_matrix):
        self._indptr, self._indices = matrix.indptr, matrix.indices

    def __getitem__(self, row: int) -> _FilterRow:
        return _FilterRow(self._indices[self._indptr[row] : self._indptr[row + 1]])


class _FilterRow(NamedTuple):
    indices: np.ndarray


def _padded(rows: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids and scores for `rows` answers of n, padded as implicit's top-k pads (score -finfo.max)."""
    return np.zeros((rows, n), dtype=np.int32), np.full((rows, n), -np.finfo(np.float32).max, dtype=np.float32)


def _keep_best(found: np.ndarray, found_scores: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> None:
    """Write the best len(ids) of a re-scored pool into one answer row, best first (ties: pool order)."""
    best = np.argsort(-found_scores, kind="stable")[: len(ids)]
    ids[: len(best)], scores[: len(best)] = found[best], found_scores[best]


def _norms(vectors: np.ndarray) -> np.ndarray:
    """Row lengths, never zero (a zero vector is similar to nothing rather than a division by zero)."""
    norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
    return np.where(norms > 0, norms, 1e-10).astype(np.float32)
