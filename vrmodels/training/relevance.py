"""What counts as a good outcome when a held-out user–video pair is judged.

For a video product the goal is what people watch through, not what they click: with watch data, a held-out
pair is relevant only when it was a satisfying watch (completion ≥ `min_completion`, or a `complete`, `like`
or `share` event). A clickbait click abandoned after ten seconds is not a hit. Rating data (MovieLens) has no
watch time: every held-out pair is relevant, or only those rated ≥ `min_rating` when that is set.

Held-out pairs that are not relevant still belong to the held-out part: they never reach the training
matrix (no leakage) and never count as hits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from features.feature_set import PairEvents

SATISFYING_EVENTS = ("complete", "like", "share")
DEFAULT_MIN_COMPLETION = 0.8


@dataclass(frozen=True)
class Relevance:
    kind: str  # "satisfying_watch", "min_rating" or "any"
    min_completion: float | None = None
    events: tuple[str, ...] = ()
    min_rating: float | None = None

    @classmethod
    def for_events(
        cls, pair_events: PairEvents, min_completion: float = DEFAULT_MIN_COMPLETION, min_rating: float | None = None
    ) -> Relevance:
        """Satisfying watches when any event carries watch time; else ratings ≥ min_rating; else any pair."""
        return cls.choose(bool(np.isfinite(pair_events.completion).any()), min_completion, min_rating)

    @classmethod
    def choose(
        cls, has_watch_time: bool, min_completion: float = DEFAULT_MIN_COMPLETION, min_rating: float | None = None
    ) -> Relevance:
        """The definition for data with or without watch time (how a trainer that aggregates elsewhere picks it)."""
        if not 0.0 <= min_completion <= 1.0:
            raise ValueError(f"relevant completion must be between 0 and 1, got {min_completion}")
        if min_rating is not None and not np.isfinite(min_rating):
            raise ValueError(f"relevant minimum rating must be a number, got {min_rating}")
        if has_watch_time:
            return cls("satisfying_watch", min_completion=min_completion, events=SATISFYING_EVENTS)
        if min_rating is not None:
            return cls("min_rating", min_rating=min_rating)
        return cls("any")

    def mask(self, pair_events: PairEvents) -> np.ndarray:
        """Per pair (row of the interactions table): whether it counts as a hit when held out."""
        return self.mask_of(pair_events.max_completion(), pair_events.has_event(self.events), pair_events.max_rating())

    def mask_of(self, max_completion: np.ndarray, satisfying_event: np.ndarray, max_rating: np.ndarray) -> np.ndarray:
        """The same, from per-pair aggregates: best completion, whether a satisfying event occurred, best rating."""
        with np.errstate(invalid="ignore"):
            if self.kind == "satisfying_watch":
                return (max_completion >= self.min_completion) | satisfying_event
            if self.kind == "min_rating":
                return max_rating >= self.min_rating
        return np.ones(len(max_completion), dtype=bool)

    def describe(self) -> str:
        if self.kind == "satisfying_watch":
            return f"satisfying watches: completion ≥ {self.min_completion:g} or a {'/'.join(self.events)} event"
        if self.kind == "min_rating":
            return f"held-out ratings ≥ {self.min_rating:g}"
        return "every held-out interaction"

    def to_dict(self) -> dict:
        return {**asdict(self), "events": list(self.events), "description": self.describe()}
