"""How much an event says about a user's interest in a video.

Each event earns a signal

    signal = event_weights[event]                                   (1.0 when there is no `event` column)
           + completion_weight * clip(watch_seconds / video_duration, 0, 1)   (0 when either is missing)
           + rating_weight * rating                                          (0 when missing)

and a user–video pair's confidence is the sum of its events' signals, passed through `scaling`:
`log` gives log1p(sum) so that the tenth replay counts for less than the first; `linear` keeps the sum.
ALS then multiplies this by its own `alpha`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DEFAULT_EVENT_WEIGHTS = {"view": 1.0, "complete": 2.0, "like": 4.0, "share": 6.0, "rating": 1.0}
SCALINGS = ("log", "linear")


@dataclass(frozen=True)
class ConfidenceConfig:
    event_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    completion_weight: float = 2.0
    rating_weight: float = 0.0
    scaling: str = "log"

    def __post_init__(self) -> None:
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {self.scaling!r}")
        negative = {name: w for name, w in self.event_weights.items() if w < 0}
        if negative or self.completion_weight < 0 or self.rating_weight < 0:
            raise ValueError("confidence weights must be non-negative")


class UnknownEventError(ValueError):
    """An event type the configured weights do not cover; `row` is the first such data row (1-based)."""

    def __init__(self, event: str, row: int, known: list[str]):
        super().__init__(f"unknown event {event!r}; known events: {', '.join(known)}")
        self.event, self.row = event, row


def event_signal(events: pd.DataFrame, config: ConfidenceConfig) -> np.ndarray:
    """The per-event signal above, vectorised over a validated events frame."""
    if "event" in events.columns:
        codes, names = pd.factorize(events["event"])  # map the few distinct names, then gather
        weights = np.array([config.event_weights.get(name, np.nan) for name in names], dtype=np.float64)
        unknown = np.isnan(weights)[codes]
        if unknown.any():
            row = int(np.argmax(unknown))
            raise UnknownEventError(events["event"].iloc[row], row + 1, sorted(config.event_weights))
        signal = weights[codes]
    else:
        signal = np.ones(len(events), dtype=np.float64)
    if config.completion_weight and {"watch_seconds", "video_duration"} <= set(events.columns):
        duration = events["video_duration"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.clip(events["watch_seconds"].to_numpy() / duration, 0.0, 1.0)
        signal += config.completion_weight * np.nan_to_num(np.where(duration > 0, ratio, 0.0))
    if config.rating_weight and "rating" in events.columns:
        signal += config.rating_weight * np.nan_to_num(events["rating"].to_numpy())
    return signal


def scale(total_signal: np.ndarray, config: ConfidenceConfig) -> np.ndarray:
    return np.log1p(total_signal) if config.scaling == "log" else total_signal
