"""The on-disk hand-over between feature building and training.

A feature directory holds
- `interactions.parquet`: one row per user–video pair (`user_index`, `video_index`, `confidence`, `events`,
  `last_timestamp`), including pairs whose confidence is 0 (they stay out of the training matrix);
- `pair_events.parquet`: every kept event, sorted by pair (`pair` = row of interactions, `event`,
  `completion`, `rating`), so that training can re-aggregate the confidence with other parameters
  (`--tune`) and judge held-out pairs by how they were watched;
- `user_ids.json`, `video_ids.json` (position = index) and `report.json` (what was read, dropped and kept,
  and the confidence settings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from features.confidence import ConfidenceConfig, event_signal, pair_confidence

INTERACTIONS_FILE = "interactions.parquet"
PAIR_EVENTS_FILE = "pair_events.parquet"
USER_IDS_FILE = "user_ids.json"
VIDEO_IDS_FILE = "video_ids.json"
REPORT_FILE = "report.json"


@dataclass(frozen=True)
class PairEvents:
    """Event-level facts kept after aggregation; `pair` is sorted and indexes the interactions table."""

    pair: np.ndarray  # int32
    event_codes: np.ndarray  # int16, indexes event_names
    event_names: list[str]
    completion: np.ndarray  # float32, NaN where the event carried no watch time
    rating: np.ndarray | None  # float32 with NaN, or None when the events had no rating column

    @property
    def pairs(self) -> int:
        return int(self.pair[-1]) + 1 if len(self.pair) else 0

    def confidence(self, config: ConfidenceConfig) -> np.ndarray:
        signal = event_signal(self.event_names, self.event_codes, self.completion, self.rating, config)
        return pair_confidence(self.pair, self.pairs, signal, config)

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
        if not len(values):
            return np.zeros(0, dtype=np.float32)
        starts = np.flatnonzero(np.r_[True, self.pair[1:] != self.pair[:-1]])
        with np.errstate(invalid="ignore"):
            return np.fmax.reduceat(values, starts)

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "pair": self.pair,
                "event": pd.Categorical.from_codes(self.event_codes, categories=self.event_names),
                "completion": self.completion,
            }
        )
        if self.rating is not None:
            frame["rating"] = self.rating
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> PairEvents:
        events = frame["event"].astype("category")
        return cls(
            pair=frame["pair"].to_numpy(np.int32),
            event_codes=events.cat.codes.to_numpy(np.int16),
            event_names=[str(name) for name in events.cat.categories],
            completion=frame["completion"].to_numpy(np.float32),
            rating=frame["rating"].to_numpy(np.float32) if "rating" in frame.columns else None,
        )


@dataclass
class FeatureSet:
    interactions: pd.DataFrame
    pair_events: PairEvents
    user_ids: list[str]
    video_ids: list[str]
    report: dict

    def save(self, directory: Path | str) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.interactions.to_parquet(directory / INTERACTIONS_FILE, index=False)
        self.pair_events.to_frame().to_parquet(directory / PAIR_EVENTS_FILE, index=False)
        (directory / USER_IDS_FILE).write_text(json.dumps(self.user_ids))
        (directory / VIDEO_IDS_FILE).write_text(json.dumps(self.video_ids))
        (directory / REPORT_FILE).write_text(json.dumps(self.report, indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> FeatureSet:
        directory = Path(directory)
        for name in (INTERACTIONS_FILE, PAIR_EVENTS_FILE, USER_IDS_FILE, VIDEO_IDS_FILE, REPORT_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(
                    f"{directory / name}: missing; build it with `python -m features.build_features`"
                )
        return cls(
            interactions=pd.read_parquet(directory / INTERACTIONS_FILE),
            pair_events=PairEvents.from_frame(pd.read_parquet(directory / PAIR_EVENTS_FILE)),
            user_ids=json.loads((directory / USER_IDS_FILE).read_text()),
            video_ids=json.loads((directory / VIDEO_IDS_FILE).read_text()),
            report=json.loads((directory / REPORT_FILE).read_text()),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.user_ids), len(self.video_ids)

    @property
    def confidence_config(self) -> ConfidenceConfig:
        """The parameters the confidence column was built with."""
        return ConfidenceConfig(**self.report["confidence"])

    def with_confidence(self, config: ConfidenceConfig) -> FeatureSet:
        """The same pairs, re-aggregated with other confidence parameters (events are kept for this)."""
        interactions = self.interactions.assign(confidence=self.pair_events.confidence(config))
        report = {**self.report, "confidence": config.to_dict()}
        return replace(self, interactions=interactions, report=report)

    def to_csr(self, rows: np.ndarray | None = None) -> csr_matrix:
        """Users × videos confidence matrix, optionally from a boolean mask over interaction rows.

        Pairs with confidence 0 are left out. A `csr_matrix` (not `csr_array`): implicit's `recommend`
        accepts only the former.
        """
        frame = self.interactions if rows is None else self.interactions[rows]
        frame = frame[frame["confidence"].to_numpy() > 0]
        return self._matrix(frame, frame["confidence"].to_numpy(np.float32))

    def indicator(self, rows: np.ndarray) -> csr_matrix:
        """Users × videos with a 1 for each selected pair, whatever its confidence (held-out relevance)."""
        frame = self.interactions[rows]
        return self._matrix(frame, np.ones(len(frame), dtype=np.float32))

    def _matrix(self, frame: pd.DataFrame, values: np.ndarray) -> csr_matrix:
        return csr_matrix((values, (frame["user_index"].to_numpy(), frame["video_index"].to_numpy())), shape=self.shape)
