"""Events (and the video catalogue) → user–video confidence table, id maps and video metadata.

    python -m features.build_features EVENTS --out DIR [--videos VIDEOS] [--format events|movielens]
        [--min-user-events N] [--min-video-events N] [--skip-below C] [--skip-weight W] ...

Exact duplicate events and events of users/videos under the minimum counts are dropped on purpose;
each drop is counted in `report.json` and printed, never lost silently. With `--videos`, catalogue videos
nobody has watched yet (new uploads) join the video ids, and videos watched but missing from the catalogue are
counted; neither is refused.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalogue import read_catalogue
from features.columns import DataFileError
from features.confidence import (
    ConfidenceConfig,
    UnknownEventError,
    check_event_names,
    completion,
)
from features.events import read_events, read_movielens
from features.feature_set import FeatureSet, PairEvents
from features.options import add_arguments, from_arguments
from features.sittings import DEFAULT_GAP_MINUTES, START_EVENTS, sitting_ids

READERS = {"events": read_events, "movielens": read_movielens}
CATALOGUE_FORMATS = {"events": "videos", "movielens": "movielens"}  # --format reads u.data and u.item alike
NO_EVENT_COLUMN = "view"  # what an event is when the file has no `event` column


def build_features(
    events: pd.DataFrame,
    confidence: ConfidenceConfig | None = None,
    min_user_events: int = 1,
    *,
    min_video_events: int = 1,
    source: str = "<frame>",
    videos: pd.DataFrame | None = None,
    session_gap_minutes: float = DEFAULT_GAP_MINUTES,
) -> FeatureSet:
    """Aggregate validated events (see `features.events`) into one confidence per user–video pair; `videos` is
    a validated catalogue (see `features.catalogue`), whose videos join the video ids whether watched or not."""
    confidence = confidence or ConfidenceConfig()
    if "event" in events.columns:
        event_codes, event_names = pd.factorize(events["event"])
        first_rows = np.unique(event_codes, return_index=True)[1] + 1
        try:
            check_event_names(list(event_names), first_rows.tolist(), confidence)
        except UnknownEventError as exc:
            raise DataFileError(source, str(exc), row=exc.row, column="event") from exc
        event_names = [str(name) for name in event_names]
    else:
        event_codes, event_names = np.zeros(len(events), np.int64), [NO_EVENT_COLUMN]

    user_codes, user_ids = pd.factorize(events["user_id"], sort=True)
    video_codes, video_ids = pd.factorize(events["video_id"], sort=True)

    # One sort by (pair, time, event) serves everything below: exact duplicates become neighbours, and each
    # pair's events a contiguous run ending with its latest event.
    timestamps = events["timestamp"].to_numpy()
    pair_key = user_codes.astype(np.int64) * len(video_ids) + video_codes
    order = np.lexsort((event_codes, timestamps, pair_key))
    pair_key, user_codes, video_codes = pair_key[order], user_codes[order], video_codes[order]
    timestamps, event_codes = timestamps[order], event_codes[order]

    duplicate = np.zeros(len(order), dtype=bool)
    duplicate[1:] = (
        (pair_key[1:] == pair_key[:-1]) & (timestamps[1:] == timestamps[:-1]) & (event_codes[1:] == event_codes[:-1])
    )
    keep = ~duplicate
    user_counts = np.bincount(user_codes[keep], minlength=len(user_ids))
    video_counts = np.bincount(video_codes[keep], minlength=len(video_ids))
    rare_user = keep & (user_counts[user_codes] < min_user_events)
    keep &= ~rare_user
    rare_video = keep & (video_counts[video_codes] < min_video_events)
    keep &= ~rare_video

    kept = order[keep]
    pair_key, timestamps = pair_key[keep], timestamps[keep]
    starts_flag = np.r_[True, pair_key[1:] != pair_key[:-1]] if len(pair_key) else np.zeros(0, dtype=bool)
    run_starts = np.flatnonzero(starts_flag)
    run_ends = np.r_[run_starts[1:], len(pair_key)].astype(np.int64)
    ratings = events["rating"].to_numpy(np.float32)[kept] if "rating" in events.columns else None
    if session_gap_minutes <= 0:
        raise ValueError(f"--session-gap must be positive minutes, got {session_gap_minutes:g}")
    pair_events = PairEvents(
        pair=(np.cumsum(starts_flag) - 1).astype(np.int32),
        event_codes=event_codes[keep].astype(np.int16),
        event_names=event_names,
        timestamp=timestamps.astype(np.int64),
        completion=completion(events)[kept],
        rating=ratings,
        sitting=sitting_ids(user_codes[keep], timestamps, session_gap_minutes * 60),
        pairs=len(run_starts),
    )

    # Re-index so that only users and videos with kept events get an index (order-preserving); catalogue videos
    # join the video ids in sorted order.
    kept_users, user_index = _compact(user_codes[keep][run_starts], len(user_ids))
    kept_videos, video_index = _compact(video_codes[keep][run_starts], len(video_ids))
    watched_ids = np.asarray(video_ids, dtype=object)[kept_videos]
    # Fixed-width strings, never objects, where ids meet the catalogue: NumPy compares object arrays pair by pair
    # (np.isin over 150,000 videos: 340 s as objects, 0.1 s as strings).
    all_video_ids = (
        watched_ids if videos is None else np.union1d(watched_ids.astype(str), videos["video_id"].to_numpy(dtype=str))
    )
    if videos is not None:
        video_index = np.searchsorted(all_video_ids, watched_ids.astype(str))[video_index].astype(np.int32)
    interactions = pd.DataFrame(
        {
            "user_index": user_index,
            "video_index": video_index,
            "confidence": pair_events.confidence(confidence),
            "events": (run_ends - run_starts).astype(np.int32),
            "first_timestamp": timestamps[run_starts].astype(np.int64),
            "last_timestamp": timestamps[run_ends - 1].astype(np.int64),
        }
    )
    report = {
        "source": str(source),
        "input_events": len(events),
        "dropped": {
            "duplicate_events": int(duplicate.sum()),
            "events_of_users_under_min": int(rare_user.sum()),
            "events_of_videos_under_min": int(rare_video.sum()),
            "zero_confidence_pairs": int((interactions["confidence"] <= 0).sum()),
        },
        "kept_events": int(keep.sum()),
        "users": len(kept_users),
        "videos": len(all_video_ids),
        "pairs": len(interactions),
        "events_with_watch_time": int((~np.isnan(pair_events.completion)).sum()),
        "event_counts": dict(
            zip(event_names, np.bincount(pair_events.event_codes, minlength=len(event_names)).tolist())
        ),
        "min_user_events": min_user_events,
        "min_video_events": min_video_events,
        "confidence": confidence.to_dict(),
        "sittings": _sittings_report(pair_events, session_gap_minutes),
    }
    aligned = None
    if videos is not None:
        aligned, report["catalogue"] = _align_catalogue(videos, all_video_ids, watched_ids.astype(str))
    return FeatureSet(
        interactions=interactions,
        pair_events=pair_events,
        user_ids=[str(u) for u in np.asarray(user_ids)[kept_users]],
        video_ids=[str(v) for v in all_video_ids],
        report=report,
        videos=aligned,
    )


def _sittings_report(pair_events: PairEvents, gap_minutes: float) -> dict:
    """How the events split into sittings: how many, and how many watches (videos started) each holds."""
    if not len(pair_events.sitting):
        return {"gap_minutes": gap_minutes, "count": 0}
    names = np.asarray(pair_events.event_names, dtype=object)
    starting = np.isin(names, START_EVENTS)
    starts = starting[pair_events.event_codes] if starting.any() else np.ones(len(pair_events.sitting), dtype=bool)
    per_sitting = np.bincount(pair_events.sitting[starts], minlength=int(pair_events.sitting.max()) + 1)
    return {
        "gap_minutes": gap_minutes,
        "count": len(per_sitting),
        "watches_per_sitting": {
            "mean": round(float(per_sitting.mean()), 2),
            "median": float(np.median(per_sitting)),
            "max": int(per_sitting.max()),
        },
        "with_three_watches_or_more": int((per_sitting >= 3).sum()),
    }


def _align_catalogue(videos: pd.DataFrame, video_ids: np.ndarray, watched_ids: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """The catalogue in video index order (empty rows for watched videos it lacks), and what the report counts."""
    listed = np.isin(video_ids, videos["video_id"].to_numpy(dtype=str))
    watched = np.isin(video_ids, watched_ids)
    aligned = (
        videos.set_index("video_id")
        .reindex(video_ids)
        .reset_index(drop=True)[["channel_id", "category", "duration_seconds", "published_at"]]
    )
    aligned["channel_id"] = aligned["channel_id"].astype(object).where(aligned["channel_id"].notna(), None)
    aligned["category"] = aligned["category"].astype(object).where(aligned["category"].notna(), None)
    counts = {
        "videos": int(listed.sum()),
        "watched": int((listed & watched).sum()),
        "without_events": int((listed & ~watched).sum()),
        "watched_but_not_in_catalogue": int((watched & ~listed).sum()),
        "known": {column: int(aligned[column].notna().sum()) for column in aligned.columns},
        "ignored_columns": videos.attrs.get("ignored_columns", []),
    }
    return aligned, counts


def _compact(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The codes in use (sorted), and each code's position among them: a gather, not a search."""
    in_use = np.flatnonzero(np.bincount(codes, minlength=size))
    position = np.zeros(size, dtype=np.int32)
    position[in_use] = np.arange(len(in_use), dtype=np.int32)
    return in_use, position[codes]


def build_features_from_file(
    path: Path | str, input_format: str = "events", videos: Path | str | None = None, **options: object
) -> FeatureSet:
    """Events from `path` (and the catalogue from `videos`), both in `input_format`'s flavour."""
    catalogue = read_catalogue(videos, CATALOGUE_FORMATS[input_format]) if videos else None
    return build_features(READERS[input_format](path), source=str(path), videos=catalogue, **options)


def confidence_arguments(parser: argparse.ArgumentParser) -> None:
    """The confidence options (features.confidence), shared by every command that builds features."""
    add_arguments(parser.add_argument_group("confidence (see features/confidence.py)"), ConfidenceConfig)


def confidence_from_arguments(args: argparse.Namespace) -> ConfidenceConfig:
    return ConfidenceConfig(**from_arguments(args, ConfidenceConfig))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("events", type=Path, help="CSV (optionally .gz) or Parquet events, or MovieLens u.data")
    parser.add_argument("--out", type=Path, required=True, help="feature directory to write")
    parser.add_argument(
        "--videos", type=Path, help="the video catalogue: CSV (optionally .gz) or Parquet, or MovieLens u.item"
    )
    parser.add_argument("--format", choices=sorted(READERS), default="events")
    parser.add_argument("--min-user-events", type=int, default=1)
    parser.add_argument("--min-video-events", type=int, default=1)
    parser.add_argument(
        "--session-gap",
        type=float,
        default=DEFAULT_GAP_MINUTES,
        help=f"minutes without an event that end a sitting (default {DEFAULT_GAP_MINUTES})",
    )
    confidence_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    started = time.perf_counter()
    try:
        features = build_features_from_file(
            args.events,
            args.format,
            args.videos,
            confidence=confidence_from_arguments(args),
            min_user_events=args.min_user_events,
            min_video_events=args.min_video_events,
            session_gap_minutes=args.session_gap,
        )
    except (DataFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    features.save(args.out)
    report = features.report
    seconds = time.perf_counter() - started
    print(
        f"{report['input_events']} events → {report['pairs']} pairs "
        f"({report['users']} users × {report['videos']} videos) in {seconds:.2f}s → {args.out}"
    )
    print("dropped: " + ", ".join(f"{name}={count}" for name, count in report["dropped"].items()))
    sittings = report["sittings"]
    if sittings["count"]:
        print(
            f"sittings (a gap over {sittings['gap_minutes']:g} minutes ends one): {sittings['count']}, "
            f"{sittings['watches_per_sitting']['mean']:g} watches each on average, "
            f"{sittings['with_three_watches_or_more']} with three or more"
        )
    if "catalogue" in report:
        catalogue = report["catalogue"]
        print(
            f"catalogue: {catalogue['videos']} videos, {catalogue['without_events']} without events yet (new "
            f"uploads), {catalogue['watched_but_not_in_catalogue']} watched but not in it"
            + (f"; columns not read: {', '.join(catalogue['ignored_columns'])}" if catalogue["ignored_columns"] else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
