"""What the server asks a model, and what it gets back: typed values from the moment a query is made.

A `Query` asks for top-k videos for a user (known, or described by a fresh `history`: the watches of the sitting
in progress, oldest first), optionally narrowed (`exclude`, `candidates`, `categories`, `published_after`,
`max_per_channel`); a `SimilarQuery` for what to watch after one video (up next), optionally for a viewer (known,
or described by a history). Each is answered by `Recommendations`, by `UnknownVideo` when a similar-videos query names
a video the model does not know, or by `UnsupportedFilter` when the model cannot narrow as asked (a model
trained without a catalogue knows no categories): answers, not exceptions, so one query of a batch never fails
the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_K = 5  # what a request gets when it does not say k


@dataclass(frozen=True, slots=True)
class Watch:
    """One watch of a history: the video, and when and how long it was watched when the caller knows."""

    video_id: str
    timestamp: float | None = None
    """Epoch seconds."""
    watched_seconds: float | None = None

    @classmethod
    def of(cls, item: Watch | str) -> Watch:
        return item if isinstance(item, Watch) else cls(item)


def watches(history: Sequence[Watch | str] | None) -> tuple[Watch, ...] | None:
    """A history as Watch items, in the order given (plain ids become watches without time)."""
    return None if history is None else tuple(Watch.of(item) for item in history)


@dataclass(frozen=True, slots=True)
class Query:
    """Top-k videos for a user (known, or described by `history`), optionally among `candidates` only."""

    user_id: str | None = None
    k: int = DEFAULT_K
    exclude_watched: bool = True
    exclude: Sequence[str] = ()
    candidates: Sequence[str] | None = None
    history: Sequence[Watch] | None = None
    """The watches of the sitting in progress, oldest first (see `watches` for plain ids)."""
    categories: Sequence[str] | None = None
    """Only videos of these categories."""
    max_per_channel: int | None = None
    """At most this many videos of one channel."""
    published_after: float | None = None
    """Only videos published after this time (epoch seconds)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "history", watches(self.history))  # plain ids keep working

    @property
    def narrowed(self) -> bool:
        """Whether it asks for the catalogue's help (categories, channels, publication times)."""
        return self.categories is not None or self.max_per_channel is not None or self.published_after is not None


@dataclass(frozen=True, slots=True)
class SimilarQuery:
    """Up next: top-k videos to watch after `video_id` (watched-next blended with factor similarity); with a
    `user_id` or a `history`, for that viewer, who has just finished `video_id`."""

    video_id: str
    k: int = DEFAULT_K
    user_id: str | None = None
    history: Sequence[Watch] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "history", watches(self.history))

    @property
    def personal(self) -> bool:
        """Whether it asks for one viewer's up next (known, or described by a history)."""
        return self.user_id is not None or bool(self.history)


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
