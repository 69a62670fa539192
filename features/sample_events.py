"""Deterministic synthetic video platforms that behave like real ones: the bundled sample and benchmark logs.

The platform: channels in categories upload videos every day (a back catalogue exists before the log starts),
some of them as series whose episodes come out in order; users follow a few channels, have tastes over
categories, and spend part of their time on what is new. They watch in sittings: a sitting starts with a click
and goes on through "up next" and autoplay, to the next episode of the series in progress, another video of the
same channel, or the same topic; a sitting has a mood (a category) that can differ from the viewer's usual taste.
What makes the log realistic, and hard for a click counter:
- a sitting's first click comes from a source: a followed channel's recent uploads, fresh uploads of the mood's
  category, what is trending platform-wide, a clickbait thumbnail, or browsing the mood's catalogue;
- each later watch of a sitting follows the one before (the next episode, the channel, the topic) or, now and
  then, a new click;
- a video's pull decays with its age: most of its views come in its first days;
- a click becomes a watch whose completion depends on the user's taste for the category, whether they follow the
  channel, and the video's quality: many clicks end in an early skip (under 15% watched);
- `complete`, `like` and `share` events follow satisfying watches, more often the stronger the affinity;
- popular clickbait is clicked by everyone, whatever their taste, and rarely finished;
- satisfied users sometimes come back and watch a video again (replays).

Events: `user_id, video_id, timestamp, event, watch_seconds, video_duration` (a `view` carries how long the video
was watched; `complete`, `like` and `share` rows follow it with empty watch columns). Catalogue:
`video_id, channel_id, category, duration_seconds, published_at` (ISO-8601) and a `title` no trainer reads
(`series S, episode E` for an episode).

    python -m features.sample_events --out data/sample/events.csv.gz --videos-out data/sample/videos.csv.gz
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

START = 1_735_689_600  # 2025-01-01T00:00:00Z: the log's first second
DAY = 24 * 3600
EARLY_SKIP = 0.15  # an early skip watches at most this share of the video
CATEGORY_NAMES = (
    "music", "gaming", "news", "comedy", "sports", "education", "cooking", "travel", "tech", "film",
    "fitness", "science", "fashion", "pets", "autos", "diy", "history", "kids", "finance", "art",
)  # fmt: skip
SOURCES = ("follow", "fresh", "trending", "clickbait", "browse")
SERIES_SHARE = 0.5  # of a channel's uploads, those that are episodes of one of its series
WATCHES_PER_SITTING = 3.5  # mean; geometric beyond the first
MAX_SITTING = 12
# What follows a watch in a sitting: the next episode (when the video has one out), another video of the channel,
# the sitting's topic, or a new click; without a next episode its chance goes to the others in proportion.
FOLLOWS = {"next_episode": 0.55, "channel": 0.2, "topic": 0.15, "click": 0.10}
MOOD_OFF_TASTE = 0.3  # chance a sitting's mood is not drawn from the viewer's taste
SITTING_APART = 2 * 3600  # seconds at least between the starts of a user's sittings


@dataclass
class Platform:
    events: pd.DataFrame
    videos: pd.DataFrame


def generate_platform(
    users: int = 3000,
    videos: int = 1200,
    channels: int | None = None,
    categories: int | None = None,
    days: int = 60,
    mean_events: float = 20.0,
    back_catalogue: float = 0.3,
    clickbait_share: float = 0.015,
    seed: int = 7,
) -> Platform:
    """About `mean_events` clicks per user over `days` days; `back_catalogue` of the videos predate the log."""
    rng = np.random.default_rng(seed)
    channels = channels or max(3, round(videos / 20))
    categories = categories or max(3, min(20, round(channels / 4)))
    catalogue = _catalogue(rng, videos, channels, categories, days, back_catalogue, clickbait_share)
    people = _users(rng, users, catalogue, days, mean_events)
    clicks = _clicks(rng, people, catalogue, days)
    return Platform(_events(rng, clicks, people, catalogue), _catalogue_frame(catalogue))


def generate_events(**options: object) -> pd.DataFrame:
    """The events of `generate_platform(**options)`, for callers without a catalogue."""
    return generate_platform(**options).events  # type: ignore[arg-type]


def _catalogue(
    rng: np.random.Generator,
    videos: int,
    channels: int,
    categories: int,
    days: int,
    back_catalogue: float,
    clickbait_share: float,
) -> dict[str, np.ndarray]:
    channel_category = np.r_[np.arange(categories), rng.integers(0, categories, max(0, channels - categories))]
    channel_category = rng.permutation(channel_category)[:channels]
    channel_popularity = (1.0 / np.arange(1, channels + 1) ** 0.9)[rng.permutation(channels)]
    channel_quality = rng.beta(4, 2, channels)
    # Each channel uploads in proportion to its activity; back-catalogue videos predate the log by up to 180 days.
    channel = rng.choice(channels, size=videos, p=_normalised(channel_popularity**0.5 + 0.2))
    old = rng.random(videos) < back_catalogue
    published = np.where(
        old,
        START - rng.integers(DAY, 180 * DAY, videos),
        START + rng.integers(0, days * DAY, videos),
    )
    appeal = channel_popularity[channel] * rng.lognormal(0, 0.6, videos)
    clickbait = np.zeros(videos, dtype=bool)
    clickbait[np.argsort(-appeal)[: max(3, int(videos * clickbait_share))]] = True  # among the most appealing
    quality = np.clip(channel_quality[channel] + rng.normal(0, 0.1, videos), 0.05, 1.0)
    quality = np.where(clickbait, rng.uniform(0.0, 0.15, videos), quality)
    category = channel_category[channel]
    duration = np.clip(np.round(rng.lognormal(np.log(300 + 60 * (category % 5)), 0.9, videos)), 20, 3 * 3600)
    series, episode, next_episode = _series(rng, channel, published, clickbait)
    return {
        "channel": channel,
        "category": category,
        "published": published,
        "appeal": appeal,
        "clickbait": clickbait,
        "quality": quality,
        "duration": duration,
        "channel_category": channel_category,
        "channel_popularity": channel_popularity,
        "categories": np.asarray(categories),
        "series": series,
        "episode": episode,
        "next_episode": next_episode,
    }


def _series(
    rng: np.random.Generator, channel: np.ndarray, published: np.ndarray, clickbait: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per video: its series (-1 none), its episode number, and the next episode's index (-1 none). A channel has
    up to two series; SERIES_SHARE of its regular uploads are episodes, numbered in publication order."""
    videos = len(channel)
    series = np.full(videos, -1, dtype=np.int64)
    in_series = ~clickbait & (rng.random(videos) < SERIES_SHARE)
    series[in_series] = channel[in_series] * 2 + rng.integers(0, 2, int(in_series.sum()))
    order = np.lexsort((published, series))
    order = order[series[order] >= 0]
    episode = np.zeros(videos, dtype=np.int64)
    next_episode = np.full(videos, -1, dtype=np.int64)
    if len(order):
        starts = np.r_[True, series[order][1:] != series[order][:-1]]
        episode[order] = np.arange(len(order)) - np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0)) + 1
        follows = ~np.r_[starts[1:], True]
        next_episode[order[follows]] = order[1:][follows[:-1]]
    return series, episode, next_episode


def _users(
    rng: np.random.Generator, users: int, catalogue: dict[str, np.ndarray], days: int, mean_events: float
) -> dict[str, np.ndarray]:
    categories = int(catalogue["categories"])
    channels = len(catalogue["channel_category"])
    taste = rng.dirichlet(np.full(categories, 0.3), size=users)  # most weight on a few categories
    # Each user follows 1 to 5 channels, chosen by taste for the channel's category and the channel's popularity.
    follow_weight = taste[:, catalogue["channel_category"]] * catalogue["channel_popularity"][None, :]
    counts = np.minimum(rng.integers(1, 6, users), channels)
    followed = np.zeros((users, 5), dtype=np.int64)  # the first counts[user] columns are the user's channels
    for user in range(users):
        weights = follow_weight[user] + 1e-9
        followed[user, : counts[user]] = rng.choice(
            channels, size=counts[user], replace=False, p=weights / weights.sum()
        )
    follows = np.zeros((users, channels), dtype=bool)
    follows[np.repeat(np.arange(users), counts), followed[np.arange(5)[None, :] < counts[:, None]]] = True
    start = rng.integers(0, days * DAY // 2, users)
    length = rng.integers(days * DAY // 3, days * DAY, users)
    return {
        "taste": taste,
        "follows": follows,
        "followed": followed,
        "follow_count": counts,
        "freshness": rng.beta(2, 4, users),  # share of attention on what is new
        "clicks": np.maximum(2, rng.lognormal(np.log(mean_events) - 0.5, 1.0, users).astype(np.int64)),
        "start": START + start,
        "end": np.minimum(START + start + length, START + days * DAY - 1),
    }


def _clicks(
    rng: np.random.Generator, people: dict[str, np.ndarray], catalogue: dict[str, np.ndarray], days: int
) -> pd.DataFrame:
    """Who watched what, when, sitting by sitting: a sitting's first click is drawn from the sources, each later
    watch from what follows the one before (FOLLOWS)."""
    sittings = _sittings(rng, people)
    user, start, length, mood = (sittings[name] for name in ("user", "start", "length", "mood"))
    # The first click of each sitting: its source, then its video among what that source offers that day.
    fresh_share = people["freshness"][user]
    chances = np.stack([0.30 * fresh_share + 0.1, 0.35 * fresh_share, np.full(len(user), 0.06),
                        np.full(len(user), 0.15)], axis=1)  # fmt: skip
    source = (rng.random(len(user))[:, None] >= np.cumsum(chances, axis=1)).sum(axis=1)
    video = _first_clicks(rng, user, start, source, mood, people, catalogue, days)
    # A click cannot precede the upload: same-day uploads are watched after they appear.
    late = start < catalogue["published"][video]
    start[late] = catalogue["published"][video[late]] + rng.integers(60, 6 * 3600, int(late.sum()))
    rows = [
        pd.DataFrame(
            {"user": user, "video": video, "timestamp": start, "source": source, "sitting": np.arange(len(user))}
        )
    ]
    current, time, alive = video, start, np.flatnonzero(length > 1)
    for step in range(1, MAX_SITTING):
        alive = alive[length[alive] > step]
        if not len(alive):
            break
        previous = current[alive]
        # The previous video watched for about its length, then a short pause before the next starts.
        time_next = time[alive] + (catalogue["duration"][previous] * rng.uniform(0.3, 1.0, len(alive))).astype(np.int64)
        time_next += rng.integers(5, 120, len(alive))
        following = _following(rng, previous, time_next, mood[alive], user[alive], people, catalogue)
        current = current.copy()
        time = time.copy()
        current[alive], time[alive] = following, time_next
        rows.append(
            pd.DataFrame(
                {
                    "user": user[alive],
                    "video": following,
                    "timestamp": time_next,
                    "source": len(SOURCES),
                    "sitting": alive,
                }
            )
        )
    clicks = pd.concat(rows, ignore_index=True)
    return clicks[clicks.timestamp < START + days * DAY].reset_index(drop=True)


def _sittings(rng: np.random.Generator, people: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each user's sittings: when they start (at least two hours apart), how many watches each holds, its mood."""
    counts = np.maximum(1, np.round(people["clicks"] / WATCHES_PER_SITTING)).astype(np.int64)
    user = np.repeat(np.arange(len(counts)), counts)
    span = people["end"] - people["start"]
    start = people["start"][user] + (rng.random(len(user)) * span[user]).astype(np.int64)
    order = np.lexsort((start, user))
    user, start = user[order], start[order]
    # At least SITTING_APART between a user's sittings: the i-th starts at max over j ≤ i of start_j + (i - j) apart.
    first = np.searchsorted(user, user)
    spaced = start - (np.arange(len(user)) - first) * SITTING_APART + user * 10**12  # users kept apart by the offset
    start = np.maximum.accumulate(spaced) - user * 10**12 + (np.arange(len(user)) - first) * SITTING_APART
    length = np.minimum(rng.geometric(1 / WATCHES_PER_SITTING, len(user)), MAX_SITTING)
    taste = people["taste"]
    mood = np.minimum((np.cumsum(taste, axis=1)[user] < rng.random(len(user))[:, None]).sum(axis=1), taste.shape[1] - 1)
    off_taste = rng.random(len(user)) < MOOD_OFF_TASTE
    mood[off_taste] = rng.integers(0, taste.shape[1], int(off_taste.sum()))
    return {"user": user, "start": start, "length": length, "mood": mood}


def _first_clicks(
    rng: np.random.Generator,
    user: np.ndarray,
    time: np.ndarray,
    source: np.ndarray,
    category: np.ndarray,
    people: dict[str, np.ndarray],
    catalogue: dict[str, np.ndarray],
    days: int,
) -> np.ndarray:
    """The video of each click drawn from a source (follow, fresh, trending, clickbait, browse), day by day."""
    video = np.full(len(user), -1, dtype=np.int64)
    day = np.clip((time - START) // DAY, 0, days - 1)
    for d in range(days):
        on_day = day == d
        if on_day.any():
            _choose_for_day(rng, d, on_day, source, category, user, video, time, people, catalogue)
    missing = video < 0  # a source with nothing to offer that day: the user browses instead
    if missing.any():
        _browse(rng, np.flatnonzero(missing), category, video, time, catalogue)
    return video


def _following(
    rng: np.random.Generator,
    previous: np.ndarray,
    time: np.ndarray,
    mood: np.ndarray,
    user: np.ndarray,
    people: dict[str, np.ndarray],
    catalogue: dict[str, np.ndarray],
) -> np.ndarray:
    """What each sitting watches after `previous` at `time`: the next episode when it is out, another video of the
    channel, the sitting's topic, or a new click."""
    next_episode = catalogue["next_episode"][previous]
    out = (next_episode >= 0) & (catalogue["published"][np.maximum(next_episode, 0)] < time)
    weights = np.tile(np.asarray(list(FOLLOWS.values())), (len(previous), 1))
    weights[~out, 0] = 0.0
    kind = (rng.random(len(previous))[:, None] >= np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)).sum(
        axis=1
    )
    kind = np.minimum(kind, len(FOLLOWS) - 1)
    video = np.where(kind == 0, next_episode, -1)
    published, regular = catalogue["published"], ~catalogue["clickbait"]
    for c in np.unique(catalogue["channel"][previous[kind == 1]]):
        chosen = np.flatnonzero((kind == 1) & (catalogue["channel"][previous] == c))
        pool = np.flatnonzero(regular & (catalogue["channel"] == c))
        # Rows × pool: what each row may watch (out, not the video just watched), by appeal and newness.
        age_days = (time[chosen][:, None] - published[pool][None, :]) / DAY
        weights = np.where(
            (age_days > 0) & (pool[None, :] != previous[chosen][:, None]),
            catalogue["appeal"][pool][None, :] * (0.2 + np.exp(-np.maximum(age_days, 0) / 7)),
            0.0,
        )
        totals = weights.sum(axis=1)
        some = totals > 0
        draws = rng.random(len(chosen)) * totals
        picked = (np.cumsum(weights, axis=1) < draws[:, None]).sum(axis=1)
        video[chosen[some]] = pool[np.minimum(picked[some], len(pool) - 1)]
    topic = np.flatnonzero((kind >= 2) | (video < 0))
    clicked = topic[kind[topic] == 3]
    if len(clicked):  # a new click from the side panel: a followed channel, the topic's fresh uploads, clickbait
        source = rng.choice(
            [SOURCES.index(name) for name in ("follow", "fresh", "clickbait")], len(clicked), p=[0.4, 0.35, 0.25]
        )
        day = (time[clicked] - START) // DAY
        video[clicked] = _first_clicks(
            rng, user[clicked], time[clicked], source, mood[clicked], people, catalogue, int(day.max()) + 1
        )
    rest = topic[video[topic] < 0]
    if len(rest):
        _browse(rng, rest, mood, video, time, catalogue)
    return video


def _choose_for_day(
    rng: np.random.Generator,
    d: int,
    on_day: np.ndarray,
    source: np.ndarray,
    category: np.ndarray,
    user: np.ndarray,
    video: np.ndarray,
    time: np.ndarray,
    people: dict[str, np.ndarray],
    catalogue: dict[str, np.ndarray],
) -> None:
    day_end = START + (d + 1) * DAY
    published = catalogue["published"]
    age_days = (day_end - published) / DAY
    available = published < day_end
    recent = available & (age_days <= 7)
    fresh = available & (age_days <= 3)
    regular = ~catalogue["clickbait"]
    # Following: one of the user's channels, its uploads of the last week, the newest most likely.
    clicks = np.flatnonzero(on_day & (source == SOURCES.index("follow")))
    channel = people["followed"][
        user[clicks], (rng.random(len(clicks)) * people["follow_count"][user[clicks]]).astype(int)
    ]
    for c in np.unique(channel):
        chosen = clicks[channel == c]
        pool = np.flatnonzero(recent & (catalogue["channel"] == c))
        if len(pool):
            video[chosen] = rng.choice(pool, size=len(chosen), p=_normalised(np.exp(-age_days[pool] / 2)))
    # The others draw by appeal and newness: a favourite category's uploads of the last three days (fresh), any
    # upload of the last three days (trending), clickbait of any age (its appeal decays slowly).
    pools = {  # mask, by category, decay in days, sharpness of appeal
        "fresh": (fresh & regular, True, 1.5, 1.0),
        "trending": (fresh, False, 1.5, 1.0),
        "clickbait": (available & catalogue["clickbait"], False, 30.0, 0.3),  # every lurid thumbnail pulls
    }
    for name, (mask, by_category, decay_days, sharpness) in pools.items():
        clicks = np.flatnonzero(on_day & (source == SOURCES.index(name)))
        keys = category[clicks] if by_category else np.zeros(len(clicks), dtype=np.int64)
        for key in np.unique(keys):
            chosen = clicks[keys == key]
            pool = np.flatnonzero(mask & (catalogue["category"] == key) if by_category else mask)
            if len(pool):
                weights = catalogue["appeal"][pool] ** sharpness * np.exp(-age_days[pool] / decay_days)
                video[chosen] = rng.choice(pool, size=len(chosen), p=_normalised(weights))
    _browse(rng, np.flatnonzero(on_day & (source == SOURCES.index("browse"))), category, video, time, catalogue)


def _browse(
    rng: np.random.Generator,
    clicks: np.ndarray,
    category: np.ndarray,
    video: np.ndarray,
    time: np.ndarray,
    catalogue: dict[str, np.ndarray],
) -> None:
    """A favourite category's catalogue by appeal, newer videos still favoured (views decay with age)."""
    if not len(clicks):
        return
    day_start = START + ((time[clicks] - START) // DAY) * DAY
    regular = ~catalogue["clickbait"]
    for key in np.unique(category[clicks]):
        for start in np.unique(day_start[category[clicks] == key]):
            chosen = clicks[(category[clicks] == key) & (day_start == start)]
            published = catalogue["published"]
            pool = np.flatnonzero(regular & (catalogue["category"] == key) & (published < start))
            if not len(pool):
                pool = np.flatnonzero(regular & (published < start))
            age_days = (start - published[pool]) / DAY
            weights = catalogue["appeal"][pool] * (0.25 + np.exp(-age_days / 10))
            video[chosen] = rng.choice(pool, size=len(chosen), p=_normalised(weights))


def _events(
    rng: np.random.Generator, clicks: pd.DataFrame, people: dict[str, np.ndarray], catalogue: dict[str, np.ndarray]
) -> pd.DataFrame:
    user, video = clicks.user.to_numpy(), clicks.video.to_numpy()
    affinity = _affinity(user, video, people, catalogue)
    satisfaction = 1 / (1 + np.exp(-6 * (0.5 * affinity + 0.6 * catalogue["quality"][video] - 0.6)))
    satisfaction = np.clip(satisfaction + rng.normal(0, 0.08, size=len(user)), 0, 1)
    skipped = rng.random(len(user)) > satisfaction
    completion = np.where(
        skipped,
        rng.uniform(0.01, EARLY_SKIP, size=len(user)),
        np.clip(rng.beta(1 + 8 * satisfaction, 1 + 2 * (1 - satisfaction)), 0.2, 1.0),
    )
    views = pd.DataFrame(
        {"user": user, "video": video, "timestamp": clicks.timestamp.to_numpy(), "event": "view",
         "completion": completion, "engaged": affinity * catalogue["quality"][video]}
    )  # fmt: skip
    end = clicks.timestamp.max() + 1 if len(clicks) else START
    # Replays: a satisfying watch is sometimes watched again later, usually to the end.
    replayed = ~skipped & (rng.random(len(user)) < 0.2 * satisfaction)
    replays = views[replayed].assign(
        timestamp=lambda f: f.timestamp + rng.integers(3600, 14 * DAY, size=len(f)),
        completion=lambda f: np.clip(rng.beta(6, 1.5, size=len(f)), 0.3, 1.0),
    )
    views = pd.concat([views, replays], ignore_index=True)
    views = views[views.timestamp < end]
    satisfied = views.completion.to_numpy() >= 0.95
    engaged = (views.completion.to_numpy() >= 0.5) * views.engaged.to_numpy()
    explicit = [
        views[satisfied].assign(event="complete"),
        views[rng.random(len(views)) < 0.30 * engaged].assign(event="like"),
        views[rng.random(len(views)) < 0.05 * engaged].assign(event="share"),
    ]
    offset = np.round(views.completion * catalogue["duration"][views.video]).astype(np.int64)
    explicit = [frame.assign(timestamp=frame.timestamp + offset[frame.index] + 1) for frame in explicit]
    rows = pd.concat([views, *explicit], ignore_index=True)
    rows = rows[rows.timestamp < end]
    duration = catalogue["duration"][rows.video.to_numpy()]
    is_view = (rows.event == "view").to_numpy()
    frame = pd.DataFrame(
        {
            "user_id": _ids("u", rows.user.to_numpy()),
            "video_id": _ids("v", rows.video.to_numpy()),
            "timestamp": rows.timestamp.to_numpy(),
            "event": rows.event.to_numpy(),
            "watch_seconds": np.where(is_view, np.round(rows.completion.to_numpy() * duration, 1), np.nan),
            "video_duration": np.where(is_view, duration, np.nan),
        }
    )
    return frame.sort_values(["timestamp", "user_id", "event"], kind="stable").reset_index(drop=True)


def _affinity(
    user: np.ndarray, video: np.ndarray, people: dict[str, np.ndarray], catalogue: dict[str, np.ndarray]
) -> np.ndarray:
    """0..1: the user's taste for the video's category against their favourite, lifted for followed channels."""
    taste = people["taste"]
    category_taste = taste[user, catalogue["category"][video]] / taste[user].max(axis=1)
    followed = people["follows"][user, catalogue["channel"][video]]
    return np.clip(category_taste + 0.35 * followed, 0, 1)


def _catalogue_frame(catalogue: dict[str, np.ndarray]) -> pd.DataFrame:
    index = np.arange(len(catalogue["channel"]))
    categories = int(catalogue["categories"])
    names = [CATEGORY_NAMES[c] if c < len(CATEGORY_NAMES) else f"category-{c + 1}" for c in range(categories)]
    published = pd.to_datetime(catalogue["published"], unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
    return pd.DataFrame(
        {
            "video_id": _ids("v", index),
            "channel_id": _ids("c", catalogue["channel"]),
            "category": [names[c] for c in catalogue["category"]],
            "duration_seconds": catalogue["duration"],
            "published_at": published,
            "title": [
                f"series {series + 1}, episode {episode}" if series >= 0 else f"upload {n + 1} of {channel}"
                for n, channel, series, episode in zip(
                    index, _ids("c", catalogue["channel"]), catalogue["series"], catalogue["episode"]
                )
            ],
        }
    )


def _normalised(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum()


def _ids(prefix: str, indices: np.ndarray) -> np.ndarray:
    """u001, u002, ... u999, u1000: the ids the tutorial's requests use."""
    return np.char.add(prefix, np.char.zfill((indices + 1).astype(str), 3))


def write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, compression={"method": "infer", "mtime": 0})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="events: .csv, .csv.gz or .parquet")
    parser.add_argument("--videos-out", type=Path, help="the catalogue: .csv, .csv.gz or .parquet")
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--videos", type=int, default=1200)
    parser.add_argument("--channels", type=int, help="default: one per 20 videos")
    parser.add_argument("--categories", type=int, help="default: one per 4 channels, 3 to 20")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--mean-events", type=float, default=20.0, help="mean clicks per user")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    platform = generate_platform(
        args.users, args.videos, args.channels, args.categories, args.days, args.mean_events, seed=args.seed
    )
    write(platform.events, args.out)
    if args.videos_out:
        write(platform.videos, args.videos_out)
    events = platform.events
    print(f"{len(events)} events, {events.user_id.nunique()} users, {events.video_id.nunique()} videos → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
