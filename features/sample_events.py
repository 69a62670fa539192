"""Deterministic synthetic watch logs that behave like real ones, for the bundled sample and benchmarks.

What makes it realistic, and hard for a click counter:
- users have topic tastes (a few topics each, Dirichlet-distributed) and heavy-tailed activity;
- videos have a topic, a duration (log-normal, 20 s to 3 h), a quality and a power-law popularity;
- a click becomes a watch whose completion depends on the user's affinity for the topic and on the
  video's quality: many clicks end in an early skip (under 15% watched);
- `complete`, `like` and `share` events follow satisfying watches, more often the stronger the affinity;
- a few popular clickbait videos are clicked by everyone, whatever their taste, and rarely finished;
- satisfied users sometimes come back and watch a video again (replays).

Rows: `user_id, video_id, timestamp, event, watch_seconds, video_duration`. A `view` row carries how long
the video was watched; `complete`, `like` and `share` rows follow it with empty watch columns.

    python -m features.sample_events --out data/sample/events.csv.gz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

START = 1_735_689_600  # 2025-01-01T00:00:00Z
SPAN_SECONDS = 60 * 24 * 3600
EARLY_SKIP = 0.15  # an early skip watches at most this share of the video


def generate_events(
    users: int = 3000,
    videos: int = 600,
    mean_events: float = 20.0,
    topics: int = 16,
    clickbait_share: float = 0.015,
    clickbait_clicks: float = 0.12,
    seed: int = 7,
) -> pd.DataFrame:
    """About `mean_events` clicks per user (each a `view`, plus the explicit events that follow it)."""
    rng = np.random.default_rng(seed)
    catalogue = _catalogue(rng, videos, topics, clickbait_share)
    taste = rng.dirichlet(np.full(topics, 0.3), size=users)  # most weight on a few topics
    clicks_per_user = np.maximum(2, rng.lognormal(np.log(mean_events) - 0.5, 1.0, size=users).astype(np.int64))
    user = np.repeat(np.arange(users), clicks_per_user)
    video = _choose_videos(rng, user, taste, catalogue, clickbait_clicks)

    # Affinity in 0..1: the user's taste for the video's topic relative to their favourite topic.
    affinity = taste[user, catalogue["topic"][video]] / taste[user].max(axis=1)
    satisfaction = 1 / (1 + np.exp(-6 * (0.55 * affinity + 0.6 * catalogue["quality"][video] - 0.6)))
    satisfaction = np.clip(satisfaction + rng.normal(0, 0.08, size=len(user)), 0, 1)
    skipped = rng.random(len(user)) > satisfaction
    completion = np.where(
        skipped,
        rng.uniform(0.01, EARLY_SKIP, size=len(user)),
        np.clip(rng.beta(1 + 8 * satisfaction, 1 + 2 * (1 - satisfaction)), 0.2, 1.0),
    )
    time = _timestamps(rng, user, users)

    views = pd.DataFrame({"user": user, "video": video, "timestamp": time, "event": "view", "completion": completion})
    # Replays: a satisfying watch is sometimes watched again later, usually to the end.
    replayed = ~skipped & (rng.random(len(user)) < 0.25 * satisfaction)
    replays = views[replayed].assign(
        timestamp=lambda f: f.timestamp + rng.integers(3600, 14 * 24 * 3600, size=len(f)),
        completion=lambda f: np.clip(rng.beta(6, 1.5, size=len(f)), 0.3, 1.0),
    )
    views = pd.concat([views, replays], ignore_index=True)
    views = views[views.timestamp < START + SPAN_SECONDS]

    satisfied = views.completion.to_numpy() >= 0.95
    engaged = (views.completion.to_numpy() >= 0.5) * satisfaction_of(views, catalogue, taste)
    explicit = [
        views[satisfied].assign(event="complete"),
        views[rng.random(len(views)) < 0.30 * engaged].assign(event="like"),
        views[rng.random(len(views)) < 0.05 * engaged].assign(event="share"),
    ]
    offset = np.round(views.completion * catalogue["duration"][views.video]).astype(np.int64)
    explicit = [frame.assign(timestamp=frame.timestamp + offset[frame.index] + 1) for frame in explicit]

    rows = pd.concat([views, *explicit], ignore_index=True)
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


def satisfaction_of(views: pd.DataFrame, catalogue: dict[str, np.ndarray], taste: np.ndarray) -> np.ndarray:
    """How much a watch pleased: affinity and quality, without the per-watch noise (drives likes and shares)."""
    video, user = views.video.to_numpy(), views.user.to_numpy()
    affinity = taste[user, catalogue["topic"][video]] / taste[user].max(axis=1)
    return affinity * catalogue["quality"][video]


def _catalogue(rng: np.random.Generator, videos: int, topics: int, clickbait_share: float) -> dict[str, np.ndarray]:
    popularity = 1.0 / np.arange(1, videos + 1) ** 0.8
    popularity = popularity[rng.permutation(videos)]
    clickbait = np.zeros(videos, dtype=bool)
    clickbait[np.argsort(-popularity)[: max(3, int(videos * clickbait_share))]] = True  # among the most clicked
    quality = np.where(clickbait, rng.uniform(0.0, 0.15, size=videos), rng.beta(4, 2, size=videos))
    return {
        "topic": rng.integers(0, topics, size=videos),
        "popularity": popularity,
        "clickbait": clickbait,
        "quality": quality,
        "duration": np.clip(np.round(rng.lognormal(np.log(360), 0.9, size=videos)), 20, 3 * 3600),
    }


def _choose_videos(
    rng: np.random.Generator,
    user: np.ndarray,
    taste: np.ndarray,
    catalogue: dict[str, np.ndarray],
    clickbait_clicks: float,
) -> np.ndarray:
    """A topic from the user's taste (10% exploration), then a video of it by popularity; or clickbait."""
    n, topics = len(user), taste.shape[1]
    cumulative_taste = np.cumsum(taste, axis=1)
    topic = np.minimum((cumulative_taste[user] < rng.random(n)[:, None]).sum(axis=1), topics - 1)
    explore = rng.random(n) < 0.10
    topic[explore] = rng.integers(0, topics, size=int(explore.sum()))

    video = np.empty(n, dtype=np.int64)
    regular = ~catalogue["clickbait"]
    for t in range(topics):
        chosen = topic == t
        pool = np.flatnonzero(regular & (catalogue["topic"] == t))
        if len(pool) == 0:
            pool = np.flatnonzero(regular)
        weights = catalogue["popularity"][pool]
        video[chosen] = rng.choice(pool, size=int(chosen.sum()), p=weights / weights.sum())
    baited = rng.random(n) < clickbait_clicks
    pool = np.flatnonzero(catalogue["clickbait"])
    weights = catalogue["popularity"][pool]
    video[baited] = rng.choice(pool, size=int(baited.sum()), p=weights / weights.sum())
    return video


def _timestamps(rng: np.random.Generator, user: np.ndarray, users: int) -> np.ndarray:
    """Each user is active over a random window of the span; events spread uniformly inside it."""
    start = rng.integers(0, SPAN_SECONDS // 2, size=users)
    length = rng.integers(SPAN_SECONDS // 6, SPAN_SECONDS // 2, size=users)
    return START + start[user] + (rng.random(len(user)) * length[user]).astype(np.int64)


def _ids(prefix: str, indices: np.ndarray) -> np.ndarray:
    """u001, u002, ... u999, u1000: the ids the tutorial's requests use."""
    return np.char.add(prefix, np.char.zfill((indices + 1).astype(str), 3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help=".csv, .csv.gz or .parquet")
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--videos", type=int, default=600)
    parser.add_argument("--mean-events", type=float, default=20.0, help="mean clicks per user")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    frame = generate_events(args.users, args.videos, args.mean_events, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".parquet":
        frame.to_parquet(args.out, index=False)
    else:
        frame.to_csv(args.out, index=False, compression={"method": "infer", "mtime": 0})
    print(f"{len(frame)} events, {frame.user_id.nunique()} users, {frame.video_id.nunique()} videos → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
