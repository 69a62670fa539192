"""The two stages: candidates from several sources, re-ranked by a learned ranker on what is known of each pair.

Stage 1 gathers, per user, the ALS top POOL of the catalogue (exact or through the ANN indexes), the recent
uploads of the channels the user watches, the recent uploads of the user's three favourite categories, and what
is trending. Stage 2 describes each (user, candidate) pair by FEATURES (the ALS score and rank, the user's
affinity to the video's channel and category, which sources proposed it, and the video's own figures as of the
model's data end: views, recent views, satisfying rates, age, duration, category) and orders the candidates by a
LightGBM lambdarank model's score.

One implementation serves everyone: training builds the ranker's examples with it, judges the two-stage model
with it and precomputes each known user's list with it; the server ranks fold-ins, candidates and other
requests that need scoring with it, in batches. So a precomputed answer is the one the server would compute.
Everything is vectorised over the batch: no per-candidate Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from vrmodels.model.catalogue import FILTERED_SCORE, CatalogueRanker
from vrmodels.model.ranker import Ranker
from vrmodels.model.videos import VIDEO_FEATURES, VideoTables, rows_of

POOL = 50  # ALS candidates per user (100 gave the same NDCG@10 on generated platforms, at 1.5× the ranking cost)
FAVOURITE_CATEGORIES = 3
SOURCES = ("als", "channel_fresh", "category_fresh", "trending")
FEATURES = (
    "als_score",
    "als_rank",
    "user_channel_affinity",
    "user_category_affinity",
    "from_channel_fresh",
    "from_category_fresh",
    "from_trending",
    *VIDEO_FEATURES,
)
CATEGORICAL = ("category",)


@dataclass
class Profiles:
    """A batch of users as the two stages see them."""

    vectors: np.ndarray
    """Users × factors: trained, or folded in from a history."""
    videos: csr_matrix
    """Users × videos: what each user watched (training and fresh history), with its confidence."""
    filtered: csr_matrix
    """Users × videos: never a candidate (watched, unless kept; excluded)."""
    restrict: Sequence[np.ndarray | None]
    """Per user: rank only these videos (a request's `candidates`, sorted), or None for the whole catalogue."""

    def __len__(self) -> int:
        return len(self.vectors)

    @classmethod
    def of_users(cls, user_factors: np.ndarray, user_items: csr_matrix, users: np.ndarray) -> Profiles:
        """Known users as training saw them: their own factors, their watched videos filtered."""
        watched = user_items[users]
        return cls(np.asarray(user_factors)[users], watched, watched, [None] * len(users))


@dataclass
class Candidates:
    """Flat (user, video) pairs of a batch, sorted by user then video, with where each came from."""

    user: np.ndarray  # int64 row of the batch
    video: np.ndarray  # int64
    als_rank: np.ndarray  # float32, NaN when ALS did not propose it
    sources: np.ndarray  # uint8 bit set over SOURCES


class TwoStage:
    def __init__(
        self,
        item_factors: np.ndarray,
        tables: VideoTables,
        catalogue: CatalogueRanker,
        ranker: Ranker | None = None,
        pool: int = POOL,
    ):
        self._items = item_factors
        self._tables = tables
        self._catalogue = catalogue
        self._ranker = ranker
        self._pool = pool
        self._available = tables.available()

    @property
    def pool(self) -> int:
        return self._pool

    def rank(self, profiles: Profiles, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per user, every candidate best first (at least k when the catalogue has them) and its ranker score.

        Stage 1 proposes `pool` videos whenever k fits in it, so an answer does not depend on k (a precomputed
        list is a prefix of what the server would rank); a larger k widens stage 1 to 2k."""
        if self._ranker is None:
            raise ValueError("ranking needs a ranker; candidates() and features() work without one")
        candidates = self.candidates(profiles, self._pool if k <= self._pool else 2 * k)
        scores = self._ranker.score(self.features(profiles, candidates))
        bounds = np.searchsorted(candidates.user, np.arange(len(profiles) + 1))
        order = _best_first(scores, bounds)
        videos, scores = candidates.video[order], scores[order].astype(np.float32)
        return (
            [videos[bounds[row] : bounds[row + 1]] for row in range(len(profiles))],
            [scores[bounds[row] : bounds[row + 1]] for row in range(len(profiles))],
        )

    def candidates(self, profiles: Profiles, pool: int | None = None) -> Candidates:
        """Every source's proposals for every user of the batch, merged, without filtered or unavailable videos."""
        pool = pool or self._pool
        parts = [self._from_als(profiles, pool)]
        channel_affinity, category_affinity = self.affinities(profiles)
        parts.append(self._from_table(channel_affinity, self._tables.channel_fresh, "channel_fresh"))
        favourites = _top_columns(category_affinity, FAVOURITE_CATEGORIES)
        parts.append(self._from_table(favourites, self._tables.category_fresh, "category_fresh"))
        trending = self._tables.trending.astype(np.int64)
        parts.append(
            (
                np.repeat(np.arange(len(profiles)), len(trending)),
                np.tile(trending, len(profiles)),
                np.full(len(profiles) * len(trending), np.nan, np.float32),
                np.full(len(profiles) * len(trending), _bit("trending"), np.uint8),
            )
        )
        user, video, rank, sources = (np.concatenate(column) for column in zip(*parts))
        key = user * self._tables.videos + video
        order = np.argsort(key, kind="stable")
        key, rank, sources = key[order], rank[order], sources[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
        merged = key[starts]
        with np.errstate(invalid="ignore"):
            rank = np.fmin.reduceat(rank, starts) if len(starts) else rank
        sources = np.bitwise_or.reduceat(sources, starts) if len(starts) else sources
        keep = self._allowed(profiles, merged)
        merged, rank, sources = merged[keep], rank[keep], sources[keep]
        return Candidates(merged // self._tables.videos, merged % self._tables.videos, rank, sources)

    def features(self, profiles: Profiles, candidates: Candidates) -> np.ndarray:
        """Candidates × FEATURES, float32 (NaN where a figure is not known)."""
        user, video = candidates.user, candidates.video
        channel_affinity, category_affinity = self.affinities(profiles)
        columns = np.empty((len(user), len(FEATURES)), dtype=np.float32)
        columns[:, 0] = _dots(self._items, np.asarray(profiles.vectors, dtype=np.float32), user, video)
        columns[:, 1] = candidates.als_rank
        columns[:, 2] = _lookup(channel_affinity, user, self._tables.channels[video])
        columns[:, 3] = _lookup(category_affinity, user, self._tables.categories[video])
        for offset, source in enumerate(SOURCES[1:]):
            columns[:, 4 + offset] = (candidates.sources & _bit(source)) > 0
        columns[:, 4 + len(SOURCES) - 1 :] = self._tables.features[video]
        return columns

    def affinities(self, profiles: Profiles) -> tuple[csr_matrix, csr_matrix]:
        """Users × channels and users × categories: each user's share of confidence per channel and category."""
        return (
            _shares(profiles.videos, self._tables.channels, len(self._tables.channel_fresh[0]) - 1),
            _shares(profiles.videos, self._tables.categories, len(self._tables.category_names)),
        )

    def _from_als(self, profiles: Profiles, pool: int) -> tuple[np.ndarray, ...]:
        """Stage 1: the ALS top `pool` of the catalogue (or of the user's restricted set)."""
        users, videos, ranks = [], [], []
        whole = [row for row, restricted in enumerate(profiles.restrict) if restricted is None]
        if whole:
            ids, scores = self._catalogue.top_k(profiles.vectors[whole], profiles.filtered[whole], pool)
            valid = scores > FILTERED_SCORE
            users.append(np.repeat(np.asarray(whole), valid.sum(axis=1)))
            videos.append(ids[valid].astype(np.int64))
            ranks.append(np.broadcast_to(np.arange(ids.shape[1], dtype=np.float32), ids.shape)[valid])
        for row, restricted in enumerate(profiles.restrict):
            if restricted is None or not len(restricted):
                continue
            scores = self._items[restricted] @ profiles.vectors[row]
            best = np.argsort(-scores, kind="stable")[:pool]
            users.append(np.full(len(best), row))
            videos.append(restricted[best].astype(np.int64))
            ranks.append(np.arange(len(best), dtype=np.float32))
        if not users:
            return (np.zeros(0, np.int64),) * 2 + (np.zeros(0, np.float32), np.zeros(0, np.uint8))
        user, video, rank = np.concatenate(users), np.concatenate(videos), np.concatenate(ranks)
        return user, video, rank, np.full(len(user), _bit("als"), np.uint8)

    def _from_table(self, affinity: csr_matrix, table: tuple[np.ndarray, np.ndarray], source: str) -> tuple:
        """Each user's rows of a (code → videos) table, for the codes the user has affinity to."""
        indptr = table[0]
        affinity = affinity.tocoo()
        lengths = (indptr[affinity.col + 1] - indptr[affinity.col]).astype(np.int64)
        user = np.repeat(affinity.row.astype(np.int64), lengths)
        video = rows_of(table, affinity.col.astype(np.int64)).astype(np.int64)
        return user, video, np.full(len(user), np.nan, np.float32), np.full(len(user), _bit(source), np.uint8)

    def _allowed(self, profiles: Profiles, keys: np.ndarray) -> np.ndarray:
        """Which (user × videos + video) keys may be proposed: not filtered, available, inside a restriction."""
        videos = self._tables.videos
        filtered = profiles.filtered.tocoo()
        keep = self._available[keys % videos] & ~_members(keys, filtered.row.astype(np.int64) * videos + filtered.col)
        restricted = [row for row, allowed in enumerate(profiles.restrict) if allowed is not None]
        if restricted:
            allowed_keys = np.concatenate(
                [row * videos + profiles.restrict[row].astype(np.int64) for row in restricted]
            )
            inside = np.isin(keys // videos, restricted)
            keep &= ~inside | np.isin(keys, allowed_keys)
        return keep


def _dots(items: np.ndarray, vectors: np.ndarray, user: np.ndarray, video: np.ndarray) -> np.ndarray:
    """vectors[user[i]] · items[video[i]] for pairs sorted by user: one product per user, never a pairs × factors
    copy of the users' vectors (that copy cost more than the rest of the features together)."""
    bounds = np.searchsorted(user, np.arange(len(vectors) + 1))
    dots = np.empty(len(user), dtype=np.float32)
    for row in np.flatnonzero(np.diff(bounds)):
        start, end = bounds[row], bounds[row + 1]
        dots[start:end] = items[video[start:end]] @ vectors[row]
    return dots


def _best_first(scores: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The order that sorts each user's block of pairs (rows bounds[u]:bounds[u + 1], by video) by descending score,
    ties by video. One stable sort of a users × longest-block grid: twice as fast as a lexsort over all pairs."""
    sizes = np.diff(bounds)
    width = int(sizes.max()) if len(scores) else 0
    user = np.repeat(np.arange(len(sizes)), sizes)
    grid = np.full((len(sizes), width), np.inf)
    grid[user, np.arange(len(scores)) - bounds[user]] = -scores
    order = np.argsort(grid, axis=1, kind="stable")
    return (bounds[:-1, None] + order)[np.arange(width) < sizes[:, None]]


def _members(values: np.ndarray, of: np.ndarray) -> np.ndarray:
    """Which of `values` are in `of` (integer keys), by one sorted search (np.isin sorts both)."""
    return _find(np.sort(of), values)[1]


def _find(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `wanted` sits in sorted `keys`, and whether it is there."""
    if not len(keys):
        return np.zeros(len(wanted), dtype=np.int64), np.zeros(len(wanted), dtype=bool)
    position = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return position, keys[position] == wanted


def _bit(source: str) -> int:
    return 1 << SOURCES.index(source)


def _shares(videos: csr_matrix, codes: np.ndarray, width: int) -> csr_matrix:
    """Users × codes: the share of each user's confidence that went to videos of each code (-1 codes ignored)."""
    videos = csr_matrix(videos)
    code = codes[videos.indices]
    known = code >= 0
    rows = np.repeat(np.arange(videos.shape[0]), np.diff(videos.indptr))[known]
    totals = csr_matrix((videos.data[known], (rows, code[known])), shape=(videos.shape[0], max(width, 1)))
    totals.sum_duplicates()
    sums = np.asarray(totals.sum(axis=1)).ravel()
    totals.data /= np.repeat(np.where(sums > 0, sums, 1.0), np.diff(totals.indptr)).astype(totals.data.dtype)
    return totals


def _top_columns(matrix: csr_matrix, count: int) -> csr_matrix:
    """Each row's `count` largest entries (ties: lower column first)."""
    coo = csr_matrix(matrix).tocoo()
    order = np.lexsort((coo.col, -coo.data, coo.row))
    row = coo.row[order]
    rank = np.arange(len(row)) - np.searchsorted(row, row)
    keep = order[rank < count]
    return csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=matrix.shape, dtype=np.float32)


def _lookup(matrix: csr_matrix, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """matrix[rows[i], columns[i]] for every i (0 where absent or the column is -1), by one sorted search."""
    coo = matrix.tocoo()
    width = matrix.shape[1]
    keys = coo.row.astype(np.int64) * width + coo.col
    order = np.argsort(keys)
    position, found = _find(keys[order], rows.astype(np.int64) * width + np.maximum(columns, 0))
    return np.where(found & (columns >= 0), coo.data[order][position] if len(keys) else 0.0, 0.0).astype(np.float32)
