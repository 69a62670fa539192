"""The two stages: candidates from several sources, re-ranked by a learned ranker on what is known of each pair.

Stage 1 gathers, per query, the ALS top POOL of the catalogue (exact or through the ANN indexes; 2k when a query
asks for more than POOL), the recent uploads of the channels the user watches, the recent uploads of the user's
three favourite categories, and what is trending. Stage 2 describes each (user, candidate) pair by FEATURES (the
ALS score and rank, the user's affinity to the video's channel and category, which sources proposed it, and the
video's own figures as of the model's data end: views, recent views, satisfying rates, age, duration, category)
and orders the candidates by a LightGBM lambdarank model's score. A narrowed query whose candidates leave fewer
than k videos is ranked again among everything it allows.

One implementation serves everyone: training builds the ranker's examples with it (`candidates`, `features`),
judges the two-stage model with it and precomputes each known user's list with it; the server ranks fold-ins,
candidates and other requests that need scoring with it, in batches. Each query's answer depends on it alone,
never on what else shares its batch. Everything is vectorised over the batch: no per-candidate Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from vrmodels.model.artifacts import ModelArtifactError, ModelArtifacts
from vrmodels.model.indices import entry_rows, find_sorted
from vrmodels.model.lightgbm_ranker import LightGBMRanker, RankerError
from vrmodels.model.narrowing import Narrowing
from vrmodels.model.ranking.base import SCORING_CHUNK, QueryBatch, Ranked, Ranking, matrix_rows, session_options
from vrmodels.model.sessions import SessionTables
from vrmodels.model.topk import FILTERED_SCORE, CatalogueTopK
from vrmodels.model.videos import VIDEO_FEATURES, VideoTables, rows_of

POOL = 50  # ALS candidates per query (100 gave the same NDCG@10 on generated platforms, at 1.5× the ranking cost)
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


@dataclass(frozen=True)
class Shares:
    """Queries × codes (channels, categories): each query's share of its confidence that went to each code, as
    sorted keys row × width + code. Plain arrays: they are built at every ranking call, where at one query a call
    scipy's sparse constructors and checks cost more than the arithmetic."""

    keys: np.ndarray  # int64, sorted, unique
    values: np.ndarray  # float32
    width: int

    @classmethod
    def of(cls, videos: csr_matrix, codes: np.ndarray, width: int) -> Shares:
        """The shares of each row of `videos` (queries × videos, confidences) per code of its videos (-1 ignored)."""
        width = max(width, 1)
        code = codes[videos.indices]
        known = code >= 0
        rows = entry_rows(videos)[known]
        keys, inverse = np.unique(rows * width + code[known], return_inverse=True)
        summed = np.bincount(inverse, weights=videos.data[known], minlength=len(keys))
        row = keys // width
        totals = np.bincount(row, weights=summed, minlength=videos.shape[0])[row]
        return cls(keys, (summed / np.where(totals > 0, totals, 1.0)).astype(np.float32), width)

    @property
    def rows(self) -> np.ndarray:
        return self.keys // self.width

    @property
    def codes(self) -> np.ndarray:
        return self.keys % self.width

    def at(self, rows: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The share of (rows[i], codes[i]) for every i (0 where absent or the code is -1), by one sorted search."""
        position, found = find_sorted(self.keys, rows.astype(np.int64) * self.width + np.maximum(codes, 0))
        values = self.values[position] if len(self.keys) else np.zeros(len(rows), np.float32)
        return np.where(found & (codes >= 0), values, 0.0).astype(np.float32)

    def top(self, count: int) -> Shares:
        """Each row's `count` largest shares (ties: the lower code first)."""
        rows = self.rows
        order = np.lexsort((-self.values, rows))  # stable: equal shares stay in code order
        rank = np.arange(len(order)) - np.searchsorted(rows[order], rows[order])
        keep = np.sort(order[rank < count])
        return Shares(self.keys[keep], self.values[keep], self.width)


@dataclass
class Candidates:
    """Flat (query, video) pairs of a batch, sorted by query then video, with where each came from."""

    user: np.ndarray  # int64 row of the batch
    video: np.ndarray  # int64
    als_rank: np.ndarray  # float32, NaN when ALS did not propose it
    sources: np.ndarray  # uint8 bit set over SOURCES
    affinities: tuple[Shares, Shares]
    """The batch's users × channels and users × categories shares (TwoStageRanking.affinities): the proposals
    and the features both read them, and at one query a call building them costs more than ranking."""


class TwoStageRanking(Ranking):
    kind = "two_stage"
    label = "the two-stage model"
    learned = True
    stores_scores = True  # a ranker's score cannot be recomputed by a dot product
    features_names: tuple[str, ...] = FEATURES
    """What its ranker reads of each (query, candidate) pair, in order."""

    def __init__(
        self,
        item_factors: np.ndarray,
        topk: CatalogueTopK,
        unavailable: np.ndarray,
        *,
        tables: VideoTables,
        ranker: LightGBMRanker | None = None,
        pool: int = POOL,
        sessions: SessionTables | None = None,
        up_next_blend: float = 0.0,
    ):
        """`ranker` None: candidates() and features() only (training learns the ranker from them)."""
        super().__init__(item_factors, topk, unavailable, sessions=sessions, up_next_blend=up_next_blend)
        self.tables = tables
        self.ranker = ranker
        self.pool = pool
        self._available = tables.available()

    @classmethod
    def from_artifacts(cls, artifacts: ModelArtifacts, topk: CatalogueTopK, unavailable: np.ndarray) -> TwoStageRanking:
        if artifacts.ranker is None or artifacts.tables is None:
            raise ModelArtifactError(
                f"{artifacts.manifest.model_version}: a {cls.kind} model needs its ranker and catalogue tables"
            )
        try:
            artifacts.ranker.expect_features(cls.features_names, artifacts.directory or Path("."))
        except RankerError as exc:
            raise ModelArtifactError(str(exc)) from None
        pool = (artifacts.manifest.serving.two_stage or {}).get("pool", POOL)
        return cls(
            np.asarray(artifacts.item_factors), topk, unavailable, tables=artifacts.tables, ranker=artifacts.ranker,
            pool=pool, **session_options(artifacts),
        )  # fmt: skip

    def precomputed_width(self, n: int) -> int:
        """A list as long as stage 1's pool at most: a longer one would rank a wider pool for every known user (the
        server ranks a larger k on demand)."""
        return min(n, self.pool)

    def aids_entry(self) -> dict:
        return {"two_stage": {"pool": self.pool}}

    def rank(self, batch: QueryBatch, *, chunk: int = SCORING_CHUNK) -> list[Ranked]:
        answers: list[Ranked | None] = [None] * len(batch)
        short = []
        for rows, ranked in self._ranked_chunks(batch, range(len(batch)), chunk):
            for row, (videos, scores) in zip(rows, ranked):
                positions, complete = self._pick(batch.narrowings[row], videos, int(batch.k[row]))
                if complete or batch.candidates[row] is not None:
                    answers[row] = (videos[positions], scores[positions])
                else:
                    short.append(row)
        if short:  # ranked again among everything each allows
            allowed = [
                np.setdiff1d(
                    batch.narrowings[row].allowed_videos(len(self.items)), batch.watched_of(row), assume_unique=True
                )
                for row in short
            ]
            retry = batch.rows(short).among(allowed)
            for rows, ranked in self._ranked_chunks(retry, range(len(retry)), chunk):
                for row, (videos, scores) in zip(rows, ranked):
                    positions, _ = retry.narrowings[row].pick(videos, int(retry.k[row]))
                    answers[short[row]] = (videos[positions], scores[positions])
        return answers  # type: ignore[return-value]

    def _pick(self, narrowing: Narrowing, videos: np.ndarray, k: int) -> tuple[np.ndarray | slice, bool]:
        """Narrowing.pick, skipped when the narrowing excludes nothing the candidates may hold (candidates never
        hold unavailable videos): the first k."""
        plain = narrowing.allowed is None and narrowing.max_per_channel is None
        if plain and (narrowing.excluded is self.unavailable or not len(narrowing.excluded)):
            return slice(0, k), len(videos) >= k
        return narrowing.pick(videos, k)

    def _ranked_chunks(self, batch: QueryBatch, rows: range, size: int):
        """(rows, every candidate of each best first with its ranker score), `size` queries at a time."""
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            part = batch if len(chunk) == len(batch) else batch.rows(slice(chunk.start, chunk.stop))
            yield chunk, self._ordered(part)

    def _ordered(self, batch: QueryBatch) -> list[Ranked]:
        """Per query, every candidate best first by the ranker, and its score."""
        if self.ranker is None:
            raise ValueError("ranking needs a ranker; candidates() and features() work without one")
        candidates = self.candidates(batch)
        scores = self.ranker.score(self.features(batch, candidates))
        bounds = np.searchsorted(candidates.user, np.arange(len(batch) + 1))
        order = _best_first(scores, bounds)
        videos, scores = candidates.video[order], scores[order].astype(np.float32)
        return [
            (videos[bounds[row] : bounds[row + 1]], scores[bounds[row] : bounds[row + 1]]) for row in range(len(batch))
        ]

    def pools(self, batch: QueryBatch) -> np.ndarray:
        """Stage 1's ALS candidates per query: the pool, or 2k when a query asks for more (so an answer does not
        depend on k while k fits in the pool: a precomputed list is a prefix of what the server would rank)."""
        return np.where(batch.k <= self.pool, self.pool, 2 * batch.k)

    def candidates(self, batch: QueryBatch) -> Candidates:
        """Every source's proposals for every query of the batch, merged, without watched or unavailable videos."""
        affinities = self.affinities(batch)
        proposals = self.proposals(batch, affinities)
        user, video, rank, sources = (np.concatenate(column) for column in zip(*proposals))
        key = user * self.tables.videos + video
        order = np.argsort(key, kind="stable")
        key, rank, sources = key[order], rank[order], sources[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
        merged = key[starts]
        with np.errstate(invalid="ignore"):
            rank = np.fmin.reduceat(rank, starts) if len(starts) else rank
        sources = np.bitwise_or.reduceat(sources, starts) if len(starts) else sources
        keep = self._allowed(batch, merged)
        merged, rank, sources = merged[keep], rank[keep], sources[keep]
        return Candidates(
            merged // self.tables.videos, merged % self.tables.videos, rank, sources, affinities=affinities
        )

    def proposals(self, batch: QueryBatch, affinities: tuple[Shares, Shares]) -> list[tuple[np.ndarray, ...]]:
        """Each source's (query row, video, ALS rank, source bits), before they are merged."""
        parts = [self._from_als(batch, self.pools(batch))]
        channel_affinity, category_affinity = affinities
        parts.append(self._from_table(channel_affinity, self.tables.channel_fresh, "channel_fresh"))
        favourites = category_affinity.top(FAVOURITE_CATEGORIES)
        parts.append(self._from_table(favourites, self.tables.category_fresh, "category_fresh"))
        trending = self.tables.trending.astype(np.int64)
        parts.append(
            (
                np.repeat(np.arange(len(batch)), len(trending)),
                np.tile(trending, len(batch)),
                np.full(len(batch) * len(trending), np.nan, np.float32),
                np.full(len(batch) * len(trending), _bit("trending"), np.uint8),
            )
        )
        return parts

    def features(self, batch: QueryBatch, candidates: Candidates) -> np.ndarray:
        """Candidates × features_names, float32 (NaN where a figure is not known): FEATURES filled here, the
        columns a subclass adds after them left NaN for it to fill (one allocation, never a copy per part)."""
        user, video = candidates.user, candidates.video
        channel_affinity, category_affinity = candidates.affinities
        columns = np.full((len(user), len(self.features_names)), np.nan, dtype=np.float32)
        columns[:, 0] = _dots(self.items, np.asarray(batch.vectors, dtype=np.float32), user, video)
        columns[:, 1] = candidates.als_rank
        columns[:, 2] = channel_affinity.at(user, self.tables.channels[video])
        columns[:, 3] = category_affinity.at(user, self.tables.categories[video])
        for offset, source in enumerate(SOURCES[1:]):
            columns[:, 4 + offset] = (candidates.sources & _bit(source)) > 0
        columns[:, 4 + len(SOURCES) - 1 : len(FEATURES)] = self.tables.features[video]
        return columns

    def affinities(self, batch: QueryBatch) -> tuple[Shares, Shares]:
        """Users × channels and users × categories: each user's share of confidence per channel and category."""
        return (
            Shares.of(batch.videos, self.tables.channels, len(self.tables.channel_fresh[0]) - 1),
            Shares.of(batch.videos, self.tables.categories, len(self.tables.category_names)),
        )

    def _from_als(self, batch: QueryBatch, pools: np.ndarray) -> tuple[np.ndarray, ...]:
        """Stage 1: each query's ALS top `pools[row]` of the catalogue (or of its candidates)."""
        users, videos, ranks = [], [], []
        whole = np.asarray([row for row, among in enumerate(batch.candidates) if among is None], dtype=np.int64)
        for pool in np.unique(pools[whole]):  # one top-k per pool size: a row's pool never depends on its batch
            rows = whole[pools[whole] == pool]
            ids, scores = self.topk.top_k(batch.vectors[rows], matrix_rows(batch.watched, rows), int(pool))
            valid = scores > FILTERED_SCORE
            users.append(np.repeat(rows, valid.sum(axis=1)))
            videos.append(ids[valid].astype(np.int64))
            ranks.append(np.broadcast_to(np.arange(ids.shape[1], dtype=np.float32), ids.shape)[valid])
        for row, among in enumerate(batch.candidates):
            if among is None or not len(among):
                continue
            scores = self.items[among] @ batch.vectors[row]
            best = np.argsort(-scores, kind="stable")[: pools[row]]
            users.append(np.full(len(best), row))
            videos.append(among[best].astype(np.int64))
            ranks.append(np.arange(len(best), dtype=np.float32))
        if not users:
            return (np.zeros(0, np.int64),) * 2 + (np.zeros(0, np.float32), np.zeros(0, np.uint8))
        user, video, rank = np.concatenate(users), np.concatenate(videos), np.concatenate(ranks)
        return user, video, rank, np.full(len(user), _bit("als"), np.uint8)

    def _from_table(self, affinity: Shares, table: tuple[np.ndarray, np.ndarray], source: str) -> tuple:
        """Each user's rows of a (code → videos) table, for the codes the user has affinity to."""
        indptr, codes = table[0], affinity.codes
        lengths = (indptr[codes + 1] - indptr[codes]).astype(np.int64)
        user = np.repeat(affinity.rows, lengths)
        video = rows_of(table, codes).astype(np.int64)
        return user, video, np.full(len(user), np.nan, np.float32), np.full(len(user), _bit(source), np.uint8)

    def _allowed(self, batch: QueryBatch, keys: np.ndarray) -> np.ndarray:
        """Which (query × videos + video) keys may be proposed: not watched, available, among its candidates."""
        videos, watched = self.tables.videos, batch.watched
        keep = self._available[keys % videos] & ~_members(keys, entry_rows(watched) * videos + watched.indices)
        restricted = [row for row, among in enumerate(batch.candidates) if among is not None]
        if restricted:
            allowed_keys = np.concatenate(
                [row * videos + batch.candidates[row].astype(np.int64) for row in restricted]  # type: ignore[union-attr]
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
    return find_sorted(np.sort(of), values)[1]


def _bit(source: str) -> int:
    return 1 << SOURCES.index(source)
