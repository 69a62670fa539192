"""The sequence-aware two stages: the two stages (vrmodels.model.ranking.twostage), told where the viewer is.

A query comes with its sitting (vrmodels.model.ranking.base.Sitting): the videos of the sitting in progress, or
of the user's last sitting when none is, and when it is asked. Stage 1 adds a source: the videos watched next
after the sitting's last RECENT videos, the NEXT_CANDIDATES heaviest of each (vrmodels.model.sessions). Stage 2
reads SEQUENCE_FEATURES beside the two stages' own: the watched-next share of the candidate after the last 1, 2
and 3 videos, how much the last video's row has to say, whether the candidate shares the last video's channel
and category, how long after the last video it was published when it is of the same channel (the next episode
of a series), how far into the sitting the viewer is (0: not in one), and how long since the viewer last
watched the candidate's channel. The ranker learns from home queries (no sitting in progress) and in-session
ones (a sitting's first watches given, the rest of it to find), so these features weigh where a sitting is in
progress and not where it is not. Up next after a video, for anyone, is a sitting of that one watch ranked the
same way.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from vrmodels.model.artifacts import ModelArtifactError, ModelArtifacts
from vrmodels.model.indices import entry_rows, find_sorted
from vrmodels.model.ranking.base import QueryBatch, Sitting
from vrmodels.model.ranking.twostage import FEATURES, SOURCES, Candidates, Shares, TwoStageRanking
from vrmodels.model.sessions import RECENT, WatchedNext
from vrmodels.model.topk import CatalogueTopK

WATCHED_NEXT_BIT = 1 << len(SOURCES)  # the source bit of a candidate watched next after the sitting's videos
NEXT_CANDIDATES = 20  # candidates from each of the sitting's last videos: its heaviest followers
SEQUENCE_FEATURES = (
    "next_after_last",
    "next_after_last_2",
    "next_after_last_3",
    "last_video_support",
    "same_channel_as_last",
    "same_category_as_last",
    "hours_published_after_last",
    "position_in_sitting",
    "minutes_since_channel",
    "from_watched_next",
)


class SequentialRanking(TwoStageRanking):
    kind = "sequential"
    label = "the sequence-aware two-stage model"
    features_names = (*FEATURES, *SEQUENCE_FEATURES)
    ranks_up_next = True  # learned from sittings of one to three watches: it knows what follows one

    @classmethod
    def from_artifacts(
        cls, artifacts: ModelArtifacts, topk: CatalogueTopK, unavailable: np.ndarray
    ) -> SequentialRanking:
        if artifacts.sessions is None:
            raise ModelArtifactError(f"{artifacts.directory}: a {cls.kind} model needs its session tables (next_*.npy)")
        return super().from_artifacts(artifacts, topk, unavailable)  # type: ignore[return-value]

    def proposals(self, batch: QueryBatch, affinities: tuple[Shares, Shares]) -> list[tuple[np.ndarray, ...]]:
        parts = super().proposals(batch, affinities)
        if batch.sitting is not None and self.sessions is not None:
            recent = batch.sitting.recent
            of, video, _ = self.sessions.next.followers(recent.ravel(), limit=NEXT_CANDIDATES)
            row = of // RECENT
            parts.append(
                (row, video, np.full(len(row), np.nan, np.float32), np.full(len(row), WATCHED_NEXT_BIT, np.uint8))
            )
        return parts

    def features(self, batch: QueryBatch, candidates: Candidates) -> np.ndarray:
        """Candidates × (FEATURES + SEQUENCE_FEATURES), float32 (NaN where a figure is not known)."""
        matrix = super().features(batch, candidates)
        columns = matrix[:, len(FEATURES) :]  # a view: filled in place
        columns[:, -1] = (candidates.sources & WATCHED_NEXT_BIT) > 0
        sitting = batch.sitting
        if sitting is not None and self.sessions is not None and len(candidates.user):
            user, video = candidates.user, candidates.video
            table, tables = self.sessions.next, self.tables
            recent = sitting.recent[user]
            share = np.zeros(len(user), dtype=np.float32)
            for back, weights in enumerate(_shares_after(table, sitting.recent, user, video), start=1):
                share += weights
                columns[:, back - 1] = share
            last = recent[:, -1]
            known = last >= 0
            previous = np.maximum(last, 0)
            columns[known, 3] = np.log1p(table.support[previous[known]])
            same_channel = (tables.channels[video] == tables.channels[previous]) & (tables.channels[video] >= 0)
            same_category = (tables.categories[video] == tables.categories[previous]) & (tables.categories[video] >= 0)
            columns[known, 4] = same_channel[known]
            columns[known, 5] = same_category[known]
            after = known & same_channel
            columns[after, 6] = (tables.published[video[after]] - tables.published[previous[after]]) / 3600
            columns[:, 7] = sitting.position[user]
            columns[:, 8] = _minutes_since_channel(batch.videos, sitting, tables.channels, user, video)
        return matrix


def _shares_after(table: WatchedNext, recent: np.ndarray, user: np.ndarray, video: np.ndarray) -> list[np.ndarray]:
    """Per (query, candidate) pair, its watched-next share after the query's last video, second last, third last
    (0 where it is no follower): the followers of every query's recent videos, matched to the pairs by one sorted
    search per position (never a search within every row for every pair)."""
    of, followers, weights = table.followers(recent.ravel())
    videos = max(table.size, int(video.max(initial=0)) + 1)
    wanted = user.astype(np.int64) * videos + video
    answers = []
    for back in range(1, RECENT + 1):
        at = (of % RECENT) == RECENT - back
        keys = (of[at] // RECENT) * videos + followers[at]
        order = np.argsort(keys)
        keys, shares = keys[order], weights[at][order]
        position, hit = find_sorted(keys, wanted)
        found = np.zeros(len(wanted), dtype=np.float32)
        found[hit] = shares[position[hit]]
        answers.append(found)
    return answers


def _minutes_since_channel(
    videos: csr_matrix, sitting: Sitting, channels: np.ndarray, user: np.ndarray, video: np.ndarray
) -> np.ndarray:
    """Per (query, candidate) pair: minutes from the query's viewer's last watch of the candidate's channel to the
    query's time (NaN when never, or the channel is not known); `videos`: the batch's, whose entries `sitting.seen`
    follows."""
    rows = entry_rows(videos)
    channel = channels[videos.indices]
    width = int(channels.max(initial=0)) + 1
    known = channel >= 0
    keys = rows[known] * width + channel[known]
    times = sitting.seen[known]
    order = np.lexsort((times, keys))
    keys, times = keys[order], times[order]
    last = np.r_[keys[1:] != keys[:-1], True] if len(keys) else np.zeros(0, dtype=bool)
    keys, times = keys[last], times[last]  # each (query, channel): its latest watch
    wanted = user.astype(np.int64) * width + np.maximum(channels[video], 0)
    minutes = np.full(len(user), np.nan, dtype=np.float32)
    if len(keys):
        position = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        found = (keys[position] == wanted) & (channels[video] >= 0)
        minutes[found] = (sitting.now[user[found]] - times[position[found]]) / 60
    return minutes
