"""Deterministic synthetic video events with real structure, for the bundled sample and benchmarks.

Users belong to taste clusters (each prefers one or two genres), videos have a genre and a
power-law popularity within it, users' activity is heavy-tailed, and engagement (completion,
likes, shares) is higher inside a user's taste. Collaborative filtering can therefore beat
most-popular here, which pure noise would not allow.

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


def generate_events(
    users: int = 2000, videos: int = 400, mean_events: float = 20.0, genres: int = 16, seed: int = 7
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    video_genre = rng.integers(0, genres, size=videos)
    popularity = 1.0 / np.arange(1, videos + 1) ** 0.7
    popularity = popularity[rng.permutation(videos)]
    duration = rng.integers(30, 1800, size=videos).astype(np.float64)

    taste = np.stack([rng.integers(0, genres, size=users), rng.integers(0, genres, size=users)], axis=1)
    activity = np.maximum(2, rng.lognormal(np.log(mean_events) - 0.5, 1.0, size=users).astype(np.int64))
    user_of_event = np.repeat(np.arange(users), activity)
    n = len(user_of_event)

    in_taste = rng.random(n) < 0.9
    second_genre = rng.random(n) < 0.35
    genre = np.where(second_genre, taste[user_of_event, 1], taste[user_of_event, 0])
    genre = np.where(in_taste, genre, rng.integers(0, genres, size=n))

    # Pick a video of the chosen genre by popularity: sample within each genre's cumulative weights.
    order = np.argsort(video_genre, kind="stable")
    genre_start = np.searchsorted(video_genre[order], np.arange(genres))
    genre_end = np.searchsorted(video_genre[order], np.arange(genres), side="right")
    cumulative = np.cumsum(popularity[order])
    low = np.where(genre_start > 0, cumulative[genre_start - 1], 0.0)
    high = cumulative[genre_end - 1]
    draw = low[genre] + rng.random(n) * (high[genre] - low[genre])
    video = order[np.minimum(np.searchsorted(cumulative, draw, side="right"), genre_end[genre] - 1)]

    engaged = np.where(in_taste, 0.7, 0.25)
    completion = np.clip(rng.beta(2, 2, size=n) * 0.6 + engaged * rng.random(n), 0.02, 1.0)
    event = np.full(n, "view", dtype=object)
    event[completion > 0.9] = "complete"
    event[rng.random(n) < engaged * 0.15] = "like"
    event[rng.random(n) < engaged * 0.03] = "share"

    timestamps = START + np.sort(rng.integers(0, SPAN_SECONDS, size=n))
    timestamps = timestamps[rng.permutation(n)]
    frame = pd.DataFrame(
        {
            "user_id": np.char.add("u", np.char.zfill((user_of_event + 1).astype(str), 3)),
            "video_id": np.char.add("v", np.char.zfill((video + 1).astype(str), 3)),
            "timestamp": timestamps,
            "event": event,
            "watch_seconds": np.round(completion * duration[video], 1),
            "video_duration": duration[video],
        }
    )
    return frame.sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help=".csv, .csv.gz or .parquet")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--videos", type=int, default=400)
    parser.add_argument("--mean-events", type=float, default=20.0, help="mean events per user")
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
