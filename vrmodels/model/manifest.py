"""The manifest: what a model directory says of itself, typed, for every format version.

Trainers fill one in; `write_model_dir` adds the format version, the time and every file's checksum; the loader
reads it back, and the server, /info, the evaluation report and both trainers read it only through these types.
Nothing else parses manifest.json. Formats 1-4 lack some entries: they read as their defaults (ALS, no
catalogue, no ranker). The kind of a model names the ranking that serves it (vrmodels.model.ranking); the
baselines every model is judged against are named here.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 7
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7)
BASELINES = {  # name in the metrics → how reports name it
    "most_popular": "most popular (clicks)",
    "most_watched": "most watched (engagement)",
    "trending": "trending (recent views)",
}
DEFAULT_KIND = "als"  # what a manifest that does not say (formats 1-4) holds
SESSION_BASELINES = {  # the baselines of the in-session and up-next judgements → how reports name them
    "watched_next": "watched next (co-visitation within sittings)",
    "same_channel_next": "next of the same channel",
    "order_blind": "ALS fold-in of the history as a set",
    "factor_similarity": "factor similarity",
    "blended": "watched next blended with factor similarity",
    "most_popular": BASELINES["most_popular"],
    "trending": BASELINES["trending"],
}


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file and the entry."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FileEntry(_Entry):
    bytes: int
    sha256: str


class CatalogueEntry(_Entry):
    """What the catalogue tables hold beyond their arrays (vrmodels.model.videos)."""

    categories: list[str]
    channels: int
    data_end: int
    video_features: list[str] = []
    recent_days: int = 3
    fresh_days: int = 7


class SessionsEntry(_Entry):
    """How the session tables were built (vrmodels.model.sessions) and how a request's history is weighed."""

    gap_minutes: float
    """A sitting ends after this long without an event."""
    followers: int
    """At most this many videos in a video's watched-next row."""
    distance_weights: list[float]
    """Weight of the video watched 1, 2, ... places later in the same sitting."""
    history_half_life_hours: float
    """A history watch with a timestamp counts half as much this many hours before the latest one."""
    history_half_life_watches: float
    """A history watch without timestamps counts half as much this many watches before the last one."""
    up_next_blend: float
    """Up next: the share of watched-next in the blend with factor similarity (tuned on held-out sittings)."""
    up_next_by_blend: dict[str, float] = {}
    """The tuning: up-next NDCG@10 of each blend tried on the held-out sittings (empty when not tuned)."""
    data_end: int
    """The time the tables are as of (epoch seconds): a query with no time of its own is asked then."""


class ServingEntry(_Entry):
    """The serving aids training built (vrmodels.training.aids) and why."""

    topn: int = 0
    up_next: int = 0
    """N of each video's precomputed up next (format 7 on; 0: none, up next is ranked per request)."""
    ann: dict = {}
    two_stage: dict | None = None
    """`{"pool": N}`: stage 1's candidates per query, for a two-stage model."""


class Evaluation(BaseModel):
    """How the model was judged: the cut-off, the hold-out (its details differ by split), relevance, curves."""

    model_config = ConfigDict(extra="allow", frozen=True)

    k: int = 10
    split: str = "user"
    relevance: dict | None = None
    curves: dict[str, dict[str, list[float]]] = {}

    @property
    def holdout(self) -> dict:
        """The split's own details (cut, test_days, test_fraction, ...)."""
        return dict(self.model_extra or {})


class Versus(_Entry):
    """A judgement in one line: the shipped model's NDCG@k against the best baseline's."""

    ndcg: float | None
    best_baseline: str | None
    best_baseline_ndcg: float | None

    @classmethod
    def of(cls, metrics: dict[str, dict], kind: str, baselines: dict[str, str]) -> Versus:
        judged = {name: values for name, values in metrics.items() if name in baselines}
        best = max(judged, key=lambda name: judged[name].get("ndcg", 0.0), default=None)
        return cls(
            ndcg=metrics.get(kind, {}).get("ndcg"),
            best_baseline=best,
            best_baseline_ndcg=judged[best].get("ndcg") if best else None,
        )


class Headline(_Entry):
    """The evaluation in a few lines: at home, in session and up next (the last two from format 6 on)."""

    split: str
    k: int
    kind: str
    home: Versus
    in_session: Versus | None
    up_next: Versus | None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    model_version: str = "unknown"
    kind: str = Field(DEFAULT_KIND, alias="shipped")
    """The ranking that serves it (vrmodels.model.ranking), and its name in `metrics`."""
    algorithm: str | None = None
    parameters: dict = {}
    confidence: dict | None = None
    data: dict = {}
    evaluation: Evaluation = Evaluation()
    metrics: dict[str, dict[str, float | int]] = {}
    """Per model and baseline: precision/recall/ndcg/map@k, users, coverage, popular_share, fresh figures."""
    tuning: list[dict] | None = None
    ranker: dict | None = None
    """What the second stage learned from (vrmodels.training.learn_ranker), with a ranker."""
    catalogue: CatalogueEntry | None = None
    sessions: SessionsEntry | None = None
    """With the session tables (format 6 on)."""
    judgements: dict[str, dict[str, dict[str, float | int]]] = {}
    """Beside `metrics` (home): the in-session and up-next judgements, per model and baseline (format 6 on)."""
    serving: ServingEntry = ServingEntry()
    fallback: str | None = None
    """How the fallback ranking was computed, when not plain engagement."""
    format_version: int = FORMAT_VERSION
    created_at: str | None = None
    files: dict[str, FileEntry] = {}

    @property
    def regularization(self) -> float:
        """ALS's regularization, which fold-in solves with (0.01 where a trainer did not record one)."""
        return float(self.parameters.get("regularization", 0.01))

    @property
    def alpha(self) -> float:
        return float(self.parameters.get("alpha", 1.0))

    def headline(self) -> Headline:
        in_session, up_next = (self.judgements.get(name) for name in ("in_session", "up_next"))
        return Headline(
            split=self.evaluation.split,
            k=self.evaluation.k,
            kind=self.kind,
            home=Versus.of(self.metrics, self.kind, BASELINES),
            in_session=Versus.of(in_session, self.kind, SESSION_BASELINES) if in_session else None,
            up_next=Versus.of(up_next, self.kind, SESSION_BASELINES) if up_next else None,
        )

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Parse `path`; ManifestError naming it and the entry at fault (a format this code cannot read too)."""
        return cls.parse(path.read_bytes(), source=str(path))

    @classmethod
    def parse(cls, data: bytes, *, source: str) -> Manifest:
        """Parse a manifest's bytes; ManifestError naming `source` (where they came from) and the entry at fault."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            if exc.errors()[0]["type"] == "json_invalid":
                raise ManifestError(f"{source}: not valid JSON ({exc.errors()[0]['ctx']['error']})") from None
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'manifest'}: {error['msg']}"
                for error in exc.errors(include_url=False)
            )
            raise ManifestError(f"{source}: {problems}") from None
