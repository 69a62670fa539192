"""What the server asks a model, and what it gets back: typed values from the moment a query is made.

A `Query` asks for top-k videos for a user (known, or described by a fresh `history`), optionally narrowed
(`exclude`, `candidates`, `categories`, `published_after`, `max_per_channel`); a `SimilarQuery` for the videos
closest to one video. Each is answered by `Recommendations`, by `UnknownVideo` when a similar-videos query names
a video the model does not know, or by `UnsupportedFilter` when the model cannot narrow as asked (a model
trained without a catalogue knows no categories): answers, not exceptions, so one query of a batch never fails
the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_K = 5  # what a request gets when it does not say k


@dataclass(frozen=True, slots=True)
class Query:
    """Top-k videos for a user (known, or described by `history`), optionally among `candidates` only."""

    user_id: str | None = None
    k: int = DEFAULT_K
    exclude_watched: bool = True
    exclude: Sequence[str] = ()
    candidates: Sequence[str] | None = None
    history: Sequence[str] | None = None
    categories: Sequence[str] | None = None
    """Only videos of these categories."""
    max_per_channel: int | None = None
    """At most this many videos of one channel."""
    published_after: float | None = None
    """Only videos published after this time (epoch seconds)."""

    @property
    def narrowed(self) -> bool:
        """Whether it asks for the catalogue's help (categories, channels, publication times)."""
        return self.categories is not None or self.max_per_channel is not None or self.published_after is not None


@dataclass(frozen=True, slots=True)
class SimilarQuery:
    """Top-k videos closest to one video by cosine of their factors."""

    video_id: str
    k: int = DEFAULT_K


@dataclass(frozen=True, slots=True)
class Recommendations:
    video_ids: list[str]
    scores: list[float]
    fallback: bool = False
    """True when the user was unknown and had no usable history, so these are the most popular videos."""
    unknown_video_ids: list[str] = field(default_factory=list)
    """Ids from `history` or `candidates` that the model does not know; they were not used."""
    unknown_categories: list[str] = field(default_factory=list)
    """Names from `categories` that the model does not know; no video matched them."""


@dataclass(frozen=True, slots=True)
class UnknownVideo:
    """The answer to a SimilarQuery whose video the model does not know."""

    video_id: str

    def __str__(self) -> str:
        return f"video {self.video_id!r} is not in the model"


@dataclass(frozen=True, slots=True)
class UnsupportedFilter:
    """The answer to a Query narrowed in a way this model cannot honour."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


AnyQuery = Query | SimilarQuery
Answer = Recommendations | UnknownVideo | UnsupportedFilter
