"""The on-disk hand-over between feature building and training.

A feature directory holds
- `interactions.parquet`: one row per user–video pair (`user_index`, `video_index`, `confidence`, `events`,
  `first_timestamp`, `last_timestamp`), including pairs whose confidence is 0 (they stay out of the training
  matrix);
- `pair_events.parquet`: every kept event, sorted by pair (`pair` = row of interactions, `event`, `timestamp`,
  `completion`, `rating`, `sitting`), so that training can re-aggregate the confidence with other parameters
  (`--tune`) or from the events before a time (a time split), judge held-out pairs by how they were watched, and
  follow viewers sitting by sitting (features.sittings);
- `user_ids.json`, `video_ids.json` (position = index) and `report.json` (what was read, dropped and kept,
  and the confidence settings);
- with a catalogue, `videos.parquet`: per video index its `channel_id`, `category`, `duration_seconds` and
  `published_at` (empty where not known). The video ids then include catalogue videos nobody has watched yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from features.confidence import ConfidenceConfig, event_signal, pair_confidence
from features.sittings import DEFAULT_GAP_MINUTES, Watches, sitting_ids, watches

INTERACTIONS_FILE = "interactions.parquet"
PAIR_EVENTS_FILE = "pair_events.parquet"
USER_IDS_FILE = "user_ids.json"
VIDEO_IDS_FILE = "video_ids.json"
REPORT_FILE = "report.json"
VIDEOS_FILE = "videos.parquet"


@dataclass(frozen=True)
class PairEvents:
    """Event-level facts kept after aggregation; `pair` is sorted and indexes the interactions table."""

    pair: np.ndarray  # int32
    event_codes: np.ndarray  # int16, indexes event_names
    event_names: list[str]
    timestamp: np.ndarray  # int64 epoch seconds
    completion: np.ndarray  # float32, NaN where the event carried no watch time
    rating: np.ndarray | None  # float32 with NaN, or None when the events had no rating column
    sitting: np.ndarray  # int32: the event's sitting (features.sittings), numbered over all users
    pairs: int
    """How many pairs the events belong to (a pair may have none in a subset)."""

    def subset(self, mask: np.ndarray) -> PairEvents:
        """Only the events of `mask`, for the same pairs (some may be left with no event)."""
        rating = None if self.rating is None else self.rating[mask]
        return replace(
            self,
            pair=self.pair[mask],
            event_codes=self.event_codes[mask],
            timestamp=self.timestamp[mask],
            completion=self.completion[mask],
            rating=rating,
            sitting=self.sitting[mask],
        )

    def confidence(self, config: ConfidenceConfig) -> np.ndarray:
        """Per pair, from its events here (0 for a pair with none)."""
        signal = event_signal(self.event_names, self.event_codes, self.completion, ratings=self.rating, config=config)
        return pair_confidence(self.pair, self.pairs, signal, config=config)

    def max_completion(self) -> np.ndarray:
        """Per pair: the best completion of its events (NaN when none carried watch time)."""
        return self._per_pair_max(self.completion)

    def max_rating(self) -> np.ndarray:
        if self.rating is None:
            return np.full(self.pairs, np.nan, dtype=np.float32)
        return self._per_pair_max(self.rating)

    def has_event(self, names: tuple[str, ...]) -> np.ndarray:
        """Per pair: whether any of its events is one of `names`."""
        wanted = np.isin(np.asarray(self.event_names, dtype=object), list(names))
        if not wanted.any():
            return np.zeros(self.pairs, dtype=bool)
        return np.bincount(self.pair, weights=wanted[self.event_codes], minlength=self.pairs) > 0

    def _per_pair_max(self, values: np.ndarray) -> np.ndarray:
        result = np.full(self.pairs, np.nan, dtype=np.float32)
        if len(values):
            starts = np.flatnonzero(np.r_[True, self.pair[1:] != self.pair[:-1]])
            with np.errstate(invalid="ignore"):
                result[self.pair[starts]] = np.fmax.reduceat(values, starts)
        return result

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "pair": self.pair,
                "event": pd.Categorical.from_codes(self.event_codes, categories=self.event_names),
                "timestamp": self.timestamp,
                "completion": self.completion,
                "sitting": self.sitting,
            }
        )
        if self.rating is not None:
            frame["rating"] = self.rating
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, pairs: int, sitting: np.ndarray) -> PairEvents:
        events = frame["event"].astype("category")
        return cls(
            pair=frame["pair"].to_numpy(np.int32),
            event_codes=events.cat.codes.to_numpy(np.int16),
            event_names=[str(name) for name in events.cat.categories],
            timestamp=frame["timestamp"].to_numpy(np.int64),
            completion=frame["completion"].to_numpy(np.float32),
            rating=frame["rating"].to_numpy(np.float32) if "rating" in frame.columns else None,
            sitting=sitting,
            pairs=pairs,
        )


@dataclass
class FeatureSet:
    interactions: pd.DataFrame
    pair_events: PairEvents
    user_ids: list[str]
    video_ids: list[str]
    report: dict
    videos: pd.DataFrame | None = None
    """With a catalogue: channel_id, category, duration_seconds, published_at per video index."""

    def save(self, directory: Path | str) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.interactions.to_parquet(directory / INTERACTIONS_FILE, index=False)
        self.pair_events.to_frame().to_parquet(directory / PAIR_EVENTS_FILE, index=False)
        (directory / USER_IDS_FILE).write_text(json.dumps(self.user_ids))
        (directory / VIDEO_IDS_FILE).write_text(json.dumps(self.video_ids))
        (directory / REPORT_FILE).write_text(json.dumps(self.report, indent=2))
        (directory / VIDEOS_FILE).unlink(missing_ok=True)
        if self.videos is not None:
            self.videos.to_parquet(directory / VIDEOS_FILE, index=False)
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> FeatureSet:
        directory = Path(directory)
        for name in (INTERACTIONS_FILE, PAIR_EVENTS_FILE, USER_IDS_FILE, VIDEO_IDS_FILE, REPORT_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(
                    f"{directory / name}: missing; build it with `python -m features.build_features`"
                )
        interactions = pd.read_parquet(directory / INTERACTIONS_FILE)
        pair_events = pd.read_parquet(directory / PAIR_EVENTS_FILE)
        if "first_timestamp" not in interactions or "timestamp" not in pair_events:
            raise FileNotFoundError(
                f"{directory}: written by an older features.build_features (no event times); build it again"
            )
        videos = directory / VIDEOS_FILE
        if "sitting" in pair_events:
            sitting = pair_events["sitting"].to_numpy(np.int32)
        else:  # written before sittings were counted: split at the default gap
            user = interactions["user_index"].to_numpy()[pair_events["pair"].to_numpy()]
            sitting = sitting_ids(user, pair_events["timestamp"].to_numpy(), DEFAULT_GAP_MINUTES * 60)
        return cls(
            interactions=interactions,
            pair_events=PairEvents.from_frame(pair_events, len(interactions), sitting),
            user_ids=json.loads((directory / USER_IDS_FILE).read_text()),
            video_ids=json.loads((directory / VIDEO_IDS_FILE).read_text()),
            report=json.loads((directory / REPORT_FILE).read_text()),
            videos=pd.read_parquet(videos) if videos.is_file() else None,
        )

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.user_ids), len(self.video_ids)

    @property
    def confidence_config(self) -> ConfidenceConfig:
        """The parameters the confidence column was built with."""
        return ConfidenceConfig(**self.report["confidence"])

    @property
    def data_end(self) -> int:
        """One second after the latest event: what the data knows of time (never the wall clock)."""
        return int(self.interactions["last_timestamp"].max()) + 1 if len(self.interactions) else 0

    def with_confidence(self, config: ConfidenceConfig) -> FeatureSet:
        """The same pairs, re-aggregated with other confidence parameters (events are kept for this)."""
        interactions = self.interactions.assign(confidence=self.pair_events.confidence(config))
        report = {**self.report, "confidence": config.to_dict()}
        return replace(self, interactions=interactions, report=report)

    def until(self, time: int) -> FeatureSet:
        """What was known just before `time`: only the events before it, each pair's confidence and last time
        from those (a pair that starts later keeps its row, with confidence 0: it is in no training matrix)."""
        events = self.pair_events.subset(self.pair_events.timestamp < time)
        last = np.zeros(self.pair_events.pairs, dtype=np.int64)
        np.maximum.at(last, events.pair, events.timestamp)
        interactions = self.interactions.assign(
            confidence=events.confidence(self.confidence_config),
            last_timestamp=np.where(self.interactions["first_timestamp"].to_numpy() < time, last, 0),
        )
        return replace(self, interactions=interactions, pair_events=events)

    def watches(self, satisfying_events: tuple[str, ...]) -> Watches:
        """Every watch, sitting by sitting (features.sittings)."""
        events = self.pair_events
        return watches(
            sitting=events.sitting,
            user=self.interactions["user_index"].to_numpy()[events.pair],
            video=self.interactions["video_index"].to_numpy()[events.pair],
            timestamp=events.timestamp,
            event_names=events.event_names,
            event_codes=events.event_codes,
            completion=events.completion,
            satisfying_events=satisfying_events,
        )

    def to_csr(self, rows: np.ndarray | None = None, confidence: np.ndarray | None = None) -> csr_matrix:
        """Users × videos confidence matrix, optionally from a boolean mask over interaction rows and with other
        confidences per row (from `confidence_before`).

        Pairs with confidence 0 are left out. A `csr_matrix` (not `csr_array`): implicit's `recommend`
        accepts only the former.
        """
        values = self.interactions["confidence"].to_numpy(np.float32) if confidence is None else confidence
        keep = values > 0 if rows is None else rows & (values > 0)
        return self._matrix(keep, values[keep].astype(np.float32))

    def indicator(self, rows: np.ndarray) -> csr_matrix:
        """Users × videos with a 1 for each selected pair, whatever its confidence (held-out relevance)."""
        return self._matrix(rows, np.ones(int(rows.sum()), dtype=np.float32))

    def _matrix(self, rows: np.ndarray, values: np.ndarray) -> csr_matrix:
        users = self.interactions["user_index"].to_numpy()[rows]
        videos = self.interactions["video_index"].to_numpy()[rows]
        return csr_matrix((values, (users, videos)), shape=self.shape)
