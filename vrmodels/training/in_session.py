"""In-session queries, as a nightly model meets them: a sitting's first watches given, the rest of it to find.

From the sittings of a time window (features.sittings), each user's first sitting with more than GIVEN watches
becomes a query: its first GIVEN watches (video, time, seconds watched) are the history, in order, and the
satisfying watches of the rest of the sitting (not among the given videos) are what a good answer holds. The
training judges a model on them (in session: `{"user_id", "history"}`; up next: `{"video_id": the last given}`)
and the sequence-aware ranker learns from them; `QueryResolution` asks them of a model the way the server would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from features.sittings import Watches
from vrmodels.model.artifacts import ModelArtifacts
from vrmodels.model.queries import Query, Watch
from vrmodels.model.ranking.base import UP_NEXT_POOL, QueryBatch, blended, up_next, up_next_pool
from vrmodels.model.resolve import FoldIn, ResolvedQuery, Resolver, batch_of
from vrmodels.model.sessions import RECENT, WatchedNext
from vrmodels.model.topk import CatalogueTopK
from vrmodels.model.videos import VideoTables
from vrmodels.training.evaluation import RankedLists, padded_lists
from vrmodels.training.relevance import Relevance

GIVEN = 2  # watches of a sitting given as the history
MAX_QUERIES = 5_000  # judged or learned from: enough sittings to judge by (±0.005 NDCG), cheap to ask


@dataclass(frozen=True)
class SittingQueries:
    users: np.ndarray
    """The user index of each query."""
    given: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    """Per query: the given watches' video indices, start times and seconds watched (NaN unknown), in order."""
    targets: csr_matrix
    """Queries × videos: 1 for each satisfying watch of the rest of the sitting."""

    def __len__(self) -> int:
        return len(self.users)

    @property
    def last(self) -> np.ndarray:
        """Per query: the last video given (what up next follows)."""
        return np.asarray([videos[-1] for videos, _, _ in self.given], dtype=np.int64)

    def subset(self, rows: np.ndarray) -> SittingQueries:
        return SittingQueries(self.users[rows], [self.given[row] for row in rows], self.targets[rows])

    def queries(self, user_ids: list[str], video_ids: list[str], *, anonymous: np.ndarray | None = None) -> list[Query]:
        """As the server receives them: `{"user_id", "history", "k": 50}` (no user where `anonymous`)."""
        asked = []
        for row, (videos, times, seconds) in enumerate(self.given):
            history = [
                Watch(video_ids[video], float(time), None if np.isnan(watched) else float(watched))
                for video, time, watched in zip(videos, times, seconds)
            ]
            user = None if anonymous is not None and anonymous[row] else user_ids[self.users[row]]
            asked.append(Query(user, 50, history=history))
        return asked


def sitting_queries(
    watches: Watches,
    *,
    start: int,
    end: int,
    relevance: Relevance,
    videos: int,
    durations: np.ndarray | None,
    among: np.ndarray | None = None,
    given: tuple[int, ...] = (GIVEN,),
    every_sitting: bool = False,
    limit: int = MAX_QUERIES,
    seed: int = 0,
) -> SittingQueries:
    """The queries of the sittings that start in [start, end) (of users in `among`, when given): each user's first
    sitting with a watch to find beyond the first `given[0]`, its first `given[0]` watches given (what the
    training judges); or, with `every_sitting`, every such sitting, once for each number of watches of `given` it
    has a watch beyond (what a ranker learns from). At most `limit`, a seeded sample. Nothing at or after `end`
    is read: a sitting that goes on past it ends there."""
    early = watches.timestamp < end
    watches = Watches(*(getattr(watches, name)[early] for name in Watches.__dataclass_fields__))
    position = watches.position()
    inside = (watches.timestamp >= start) & (watches.timestamp < end)
    sittings = watches.sitting[inside & (position == 0)]
    sizes = np.bincount(watches.sitting, minlength=int(watches.sitting.max(initial=-1)) + 1)
    sittings = sittings[sizes[sittings] > min(given)]
    owners = watches.user[np.searchsorted(watches.sitting, sittings)]
    if among is not None:
        sittings, owners = sittings[among[owners]], owners[among[owners]]
    if not every_sitting:
        _, first_of_user = np.unique(owners, return_index=True)  # sittings are numbered in time order per user
        sittings = sittings[np.sort(first_of_user)]
    asked = [(sitting, count) for count in given for sitting in sittings[sizes[sittings] > count]]
    if len(asked) > limit:
        picked = np.sort(np.random.default_rng(seed).choice(len(asked), limit, replace=False))
        asked = [asked[index] for index in picked]
    satisfying = relevance.mask_of(watches.completion, watches.satisfying_event, np.full(len(watches), np.nan))
    heads, users, rows, columns = [], [], [], []
    for row, (sitting, count) in enumerate(asked):
        begin = np.searchsorted(watches.sitting, sitting)
        head = slice(begin, begin + count)
        head_videos = watches.video[head]
        seconds = watches.completion[head] * durations[head_videos] if durations is not None else np.full(count, np.nan)
        heads.append((head_videos, watches.timestamp[head].astype(np.float64), seconds.astype(np.float64)))
        users.append(watches.user[begin])
        rest = np.arange(begin + count, begin + sizes[sitting])
        found = np.setdiff1d(watches.video[rest[satisfying[rest]]], head_videos)
        rows += [row] * len(found)
        columns += found.tolist()
    targets = csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=(len(asked), videos))
    return SittingQueries(np.asarray(users, dtype=np.int64), heads, targets)


class QueryResolution:
    """A model as training holds it (in memory), asked queries the way the server resolves them
    (vrmodels.model.resolve)."""

    def __init__(self, artifacts: ModelArtifacts):
        self.artifacts = artifacts
        self.resolver = Resolver(artifacts)
        self._fold_in = FoldIn(artifacts, num_threads=0)

    def batch(self, queries: list[Query]) -> tuple[QueryBatch, np.ndarray]:
        """The queries resolved, folded in and laid out for a ranking; and which of them were (the others need no
        ranking: the popular fallback)."""
        resolved = [self.resolver.resolve(query) for query in queries]
        ranked = np.asarray([isinstance(query, ResolvedQuery) for query in resolved], dtype=bool)
        kept = [query for query in resolved if isinstance(query, ResolvedQuery)]
        videos = len(self.artifacts.videos)
        sittings = self.resolver.sessions is not None
        return batch_of(kept, videos, fold_in=self._fold_in, sittings=sittings), ranked


def given_filters(queries: SittingQueries, watched: csr_matrix) -> csr_matrix:
    """Queries × videos: what no answer to a query may hold (the user's watched videos and the given ones)."""
    rows = np.repeat(np.arange(len(queries)), [len(videos) for videos, _, _ in queries.given])
    given = np.concatenate([videos for videos, _, _ in queries.given]) if len(queries) else np.zeros(0, np.int64)
    extra = csr_matrix((np.ones(len(rows), np.float32), (rows, given)), shape=(len(queries), watched.shape[1]))
    return ((watched[queries.users] + extra) > 0).astype(np.float32).tocsr()


def watched_next_lists(
    table: WatchedNext, queries: SittingQueries, filters: csr_matrix, *, k: int, recent: int = RECENT
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The watched-next baseline: each query's candidates by their summed share after its last `recent` given
    videos, heaviest first, none of its `filters` row."""
    answers = []
    for row, (videos, _, _) in enumerate(queries.given):
        _, followers, shares = table.followers(np.asarray(videos[-recent:]))
        keys, summed = np.unique(followers, return_inverse=True)
        scores = np.bincount(summed, weights=shares, minlength=len(keys))
        blocked = filters.indices[filters.indptr[row] : filters.indptr[row + 1]]
        keep = ~np.isin(keys, blocked)
        keys, scores = keys[keep], scores[keep]
        order = np.lexsort((keys, -scores))[:k]
        answers.append((keys[order], scores[order].astype(np.float32)))
    return answers


def same_channel_lists(
    tables: VideoTables, last: np.ndarray, filters: csr_matrix, *, k: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The "next of the same channel" baseline: after each `last` video, its channel's later uploads oldest first
    (the next episodes), then its earlier ones newest first; none of the `filters` row, none unavailable."""
    available = tables.available()
    members = np.flatnonzero(available & (tables.channels >= 0))
    by_channel = members[np.lexsort((tables.published[members], tables.channels[members]))]
    channel_of = tables.channels[by_channel]
    answers = []
    for row, video in enumerate(last):
        channel = tables.channels[video]
        if channel < 0:
            answers.append((np.zeros(0, np.int64), np.zeros(0, np.float32)))
            continue
        own = by_channel[np.searchsorted(channel_of, channel) : np.searchsorted(channel_of, channel, side="right")]
        later = own[tables.published[own] > tables.published[video]]
        earlier = own[tables.published[own] <= tables.published[video]][::-1]
        ordered = np.r_[later, earlier]
        blocked = filters.indices[filters.indptr[row] : filters.indptr[row + 1]]
        ordered = ordered[~np.isin(ordered, blocked) & (ordered != video)][:k]
        answers.append((ordered.astype(np.int64), -np.arange(len(ordered), dtype=np.float32)))
    return answers


def up_next_lists(
    items: np.ndarray,
    table: WatchedNext | None,
    last: np.ndarray,
    *,
    k: int,
    blend: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up next after each `last` video, as the server answers `{"video_id"}` for a model without a sequence-aware
    ranker (vrmodels.model.ranking.base.up_next): `blend` 0 is factor similarity alone."""
    ids, scores = similar_to(items, last, k)
    answers = []
    for video, row_ids, row_scores in zip(last, ids, scores):
        if table is not None and blend > 0:
            row_ids, row_scores = up_next(items, table, int(video), (row_ids, row_scores), blend=blend)
        answers.append((row_ids[:k], row_scores[:k]))
    return answers


def similar_to(items: np.ndarray, videos: np.ndarray, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The k + UP_NEXT_POOL videos most similar to each of `videos` by the cosine of their factors."""
    return CatalogueTopK(np.ascontiguousarray(items, dtype=np.float32)).similar(np.asarray(videos), k + UP_NEXT_POOL)


BLENDS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))


def tune_blend(items: np.ndarray, table: WatchedNext, queries: SittingQueries, *, k: int) -> tuple[float, dict]:
    """The up-next blend whose answers after each query's last given video find most of the rest of its sitting
    (NDCG@k over BLENDS); and the NDCG of each blend."""
    scores = {}
    pools = [
        up_next_pool(items, table, int(video), similar)
        for video, *similar in zip(queries.last, *similar_to(items, queries.last, k))
    ]  # the same pools whatever the blend: built once
    for blend in BLENDS:
        ids, values = padded_lists([blended(pool, blend=float(blend)) for pool in pools], k)
        scores[float(blend)] = RankedLists(ids, values, queries.targets).metrics(k)["ndcg"]
    best = max(scores, key=lambda blend: (scores[blend], -abs(blend - 0.5)))
    return best, scores
