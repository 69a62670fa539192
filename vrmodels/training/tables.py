"""The catalogue tables (vrmodels.model.videos) of a feature set as of a time: what was known then, and no more.

Views count distinct users who had watched a video before `time`; recent views those who watched it in the
RECENT_DAYS before; a satisfying rate is the share of its viewers whose watches before `time` were satisfying
(by the trainer's relevance), smoothed towards the platform's rate by SMOOTHING viewers. A video's publication
time is the catalogue's, else its first watch (the best a log without a catalogue can say); videos that did not
exist yet at `time` are unavailable in the tables of that time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.confidence import event_signal
from features.feature_set import FeatureSet
from vrmodels.model.videos import FRESH_DAYS, RECENT_DAYS, VIDEO_FEATURES, VideoTables
from vrmodels.training.relevance import Relevance
from vrmodels.training.split import DAY

SMOOTHING = 5.0
TRENDING = 20  # candidates: 50 each cost 15% more ranking time for 1% of NDCG@10 (docs/training.md)
CATEGORY_FRESH = 20
FALLBACK_HALF_LIFE_DAYS = 7.0


def codes(features: FeatureSet) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per video: its channel code and category code (-1 where not known), and the category names by code."""
    if features.videos is None:
        videos = len(features.video_ids)
        return np.full(videos, -1, np.int32), np.full(videos, -1, np.int32), []
    channels, _ = pd.factorize(features.videos["channel_id"], sort=True, use_na_sentinel=True)
    categories, names = pd.factorize(features.videos["category"], sort=True, use_na_sentinel=True)
    return channels.astype(np.int32), categories.astype(np.int32), [str(name) for name in names]


def video_tables(features: FeatureSet, relevance: Relevance, time: int) -> VideoTables:
    interactions, events = features.interactions, features.pair_events
    count = len(features.video_ids)
    video = interactions["video_index"].to_numpy()
    first = interactions["first_timestamp"].to_numpy()
    seen = first < time
    views = np.bincount(video[seen], minlength=count).astype(np.float64)
    satisfying_pairs = seen & relevance.mask(events.subset(events.timestamp < time))
    satisfying = np.bincount(video[satisfying_pairs], minlength=count).astype(np.float64)
    recent_events = (events.timestamp >= time - RECENT_DAYS * DAY) & (events.timestamp < time)
    recent_pairs = np.zeros(len(interactions), dtype=bool)
    recent_pairs[events.pair[recent_events]] = True
    recent = np.bincount(video[recent_pairs], minlength=count).astype(np.float64)

    channels, categories, names = codes(features)
    published = _published(features, video, first, count)
    platform_rate = satisfying.sum() / max(views.sum(), 1.0)
    rate = (satisfying + SMOOTHING * platform_rate) / (views + SMOOTHING)
    channel_count = int(channels.max(initial=-1)) + 1
    known_channel = channels >= 0
    channel_views = np.bincount(channels[known_channel], views[known_channel], minlength=channel_count)
    channel_satisfying = np.bincount(channels[known_channel], satisfying[known_channel], minlength=channel_count)
    channel_rate = np.full(count, np.nan)
    channel_rate[known_channel] = ((channel_satisfying + SMOOTHING * platform_rate) / (channel_views + SMOOTHING))[
        channels[known_channel]
    ]
    duration = np.full(count, np.nan)
    if features.videos is not None:
        duration = features.videos["duration_seconds"].to_numpy(np.float64)
    columns = {
        "log_views": np.log1p(views),
        "log_views_recent": np.log1p(recent),
        "satisfying_rate": rate,
        "channel_satisfying_rate": channel_rate,
        "age_days": (time - published) / DAY,
        "log_duration": np.log(duration),
        "category": np.where(categories >= 0, categories, np.nan),
    }
    table = np.column_stack([columns[name] for name in VIDEO_FEATURES]).astype(np.float32)

    with np.errstate(invalid="ignore"):
        available = ~(published >= time)
        fresh_channel = available & (published > time - FRESH_DAYS * DAY) & known_channel
        fresh_category = available & (published > time - RECENT_DAYS * DAY) & (categories >= 0)
    trending = np.flatnonzero(available & (recent > 0))
    trending = trending[np.lexsort((trending, -recent[trending] * rate[trending]))][:TRENDING]
    return VideoTables(
        channels=channels,
        categories=categories,
        published=published,
        features=table,
        trending=trending.astype(np.int32),
        channel_fresh=_grouped(np.flatnonzero(fresh_channel), channels, channel_count, -published, None),
        category_fresh=_grouped(np.flatnonzero(fresh_category), categories, len(names), -recent * rate, CATEGORY_FRESH),
        category_names=names,
        data_end=int(time),
    )


def _published(features: FeatureSet, video: np.ndarray, first: np.ndarray, count: int) -> np.ndarray:
    """The catalogue's publication time, else the video's first watch in the whole log, else NaN."""
    first_watch = np.full(count, np.inf)
    np.minimum.at(first_watch, video, first.astype(np.float64))
    first_watch[np.isinf(first_watch)] = np.nan
    if features.videos is None:
        return first_watch
    catalogue = features.videos["published_at"].to_numpy(np.float64)
    return np.where(np.isnan(catalogue), first_watch, catalogue)


def _grouped(
    members: np.ndarray, keys: np.ndarray, width: int, order: np.ndarray, cap: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, videos): per key, its members sorted by `order` ascending (then index), at most `cap` each."""
    members = members[np.lexsort((members, order[members], keys[members]))]
    group = keys[members]
    if cap is not None:
        position = np.arange(len(members)) - np.searchsorted(group, group)
        members, group = members[position < cap], group[position < cap]
    indptr = np.zeros(width + 1, dtype=np.int64)
    np.cumsum(np.bincount(group, minlength=width), out=indptr[1:])
    return indptr, members.astype(np.int32)


def recent_engagement(features: FeatureSet, time: int) -> np.ndarray:
    """Per video, its viewers' confidence, each event weighed down by half every FALLBACK_HALF_LIFE_DAYS before
    `time`: the fallback ranking for users the model cannot personalise, on a platform where what is watched
    through this week matters more than what was watched through last year."""
    events = features.pair_events.subset(features.pair_events.timestamp < time)
    decay = np.exp2(-(time - events.timestamp) / (FALLBACK_HALF_LIFE_DAYS * DAY)).astype(np.float32)
    config = features.confidence_config
    signal = event_signal(
        events.event_names, events.event_codes, events.completion, ratings=events.rating, config=config
    )
    video = features.interactions["video_index"].to_numpy()[events.pair]
    return np.bincount(video, weights=signal * decay, minlength=len(features.video_ids)).astype(np.float32)
