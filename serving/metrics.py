"""Request metrics in CloudWatch Embedded Metric Format (EMF), aggregated by each worker and published every
VR_METRICS_INTERVAL_SECONDS and at its shutdown.

SageMaker sends a container's stdout to CloudWatch Logs; a JSON line carrying an `_aws` member in EMF
(docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
is also turned into metrics, with no agent. Logs are billed per GB ingested, so a worker does not write a line
per request: it adds each invocation to a `MetricsWindow` and writes the window as one EMF line per model version
and status (usually one or two lines a minute), with these metrics under the dimensions ModelVersion and Variant
(the container's VR_VARIANT, which deploy/deploy.sh sets per production variant), and in multi-model mode
ModelName too (the caller's TargetModel when SageMaker passes it, else the loaded name):

    Latency       Milliseconds   time in the container: a distribution, up to LATENCY_BUCKETS values with their
                                 counts (each value is its bucket's middle, within 11% of what was measured),
                                 and the exact minimum, maximum, count and sum
    Queries       Count          requests in the bodies (1 each, or their instances or lines)
    Fallbacks     Count          answers that are the popular fallback (unknown users)
    FoldIns       Count          answers folded in from a `history`
    EmptyAnswers  Count          answers with no video
    Errors        Count          answers with a 4xx or 5xx status (a caller that went away, 499, got none)
    Requests      Count          invocations, under ModelVersion, Variant and StatusCode: errors by status

Each line's counts are sums over the window: read them with the Sum statistic (SampleCount counts lines). A worker
killed with SIGKILL loses the window it had not published; SIGTERM and gunicorn's restarts publish it.

A multi-model server also writes a line per model load and unload: ModelLoadTime (Milliseconds, under ModelName
and Variant) and LoadedModels (Count, under Variant).

The counts come from the request's typed outcomes (InvocationStats), which serving.invocations leaves in the
request's scope. The `aws-embedded-metrics` library is not used: it flushes per request context, where this
window costs a dictionary update on a path served thousands of times a second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from serving.errors import ClientClosedRequest
from serving.outcomes import Answered, Outcome
from vrmodels.model.queries import Query

NAMESPACE = "VideoRecommender"
DIMENSIONS = ("ModelVersion", "Variant")
REQUEST_METRICS = {
    "Latency": "Milliseconds",
    "Queries": "Count",
    "Fallbacks": "Count",
    "FoldIns": "Count",
    "EmptyAnswers": "Count",
    "Errors": "Count",
}
STATS_KEY = "invocation"  # where serving.invocations leaves a request's InvocationStats in scope["state"]
NO_MODEL = "none"  # the ModelVersion of a request answered before any model could serve it


@dataclass(slots=True)
class InvocationStats:
    """What one invocation did, counted from its typed outcomes."""

    model_version: str = NO_MODEL
    model_name: str = NO_MODEL
    queries: int = 0
    fallbacks: int = 0
    fold_ins: int = 0
    empty_answers: int = 0

    def count(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, Answered):
                answer = outcome.recommendations
                self.fallbacks += answer.fallback
                self.fold_ins += isinstance(outcome.query, Query) and bool(outcome.query.history)
                self.empty_answers += not answer.video_ids


def _directives(namespace: str, dimensions: tuple[str, ...]) -> list[dict]:
    return [
        {
            "Namespace": namespace,
            "Dimensions": [list(dimensions)],
            "Metrics": [{"Name": name, "Unit": unit} for name, unit in REQUEST_METRICS.items()],
        },
        {
            "Namespace": namespace,
            "Dimensions": [[*dimensions, "StatusCode"]],
            "Metrics": [{"Name": "Requests", "Unit": "Count"}],
        },
    ]


LATENCY_STEPS = 5  # buckets per factor e (2.718): each 22% wide, so its middle is within 11% of any value in it
LATENCY_RANGE_MS = (0.01, 600_000.0)  # beyond these, latencies count in the end buckets
_LOWEST, _HIGHEST = (math.floor(math.log(end) * LATENCY_STEPS) for end in LATENCY_RANGE_MS)
LATENCY_BUCKETS = _HIGHEST - _LOWEST + 1  # within EMF's 100 values per metric


@dataclass(slots=True)
class _Tally:
    """One (model, version, status)'s invocations in the window."""

    requests: int = 0
    queries: int = 0
    fallbacks: int = 0
    fold_ins: int = 0
    empty_answers: int = 0
    latency_sum: float = 0.0
    latency_min: float = math.inf
    latency_max: float = 0.0
    latency: dict[int, int] = field(default_factory=dict)  # bucket → count

    def add(self, latency_ms: float, stats: InvocationStats) -> None:
        self.requests += 1
        self.queries += stats.queries
        self.fallbacks += stats.fallbacks
        self.fold_ins += stats.fold_ins
        self.empty_answers += stats.empty_answers
        self.latency_sum += latency_ms
        self.latency_min = min(self.latency_min, latency_ms)
        self.latency_max = max(self.latency_max, latency_ms)
        bucket = math.floor(math.log(max(latency_ms, LATENCY_RANGE_MS[0])) * LATENCY_STEPS)
        bucket = min(bucket, _HIGHEST)
        self.latency[bucket] = self.latency.get(bucket, 0) + 1

    def latency_distribution(self) -> dict:
        """EMF's values-and-counts form: each bucket's middle and how many latencies fell in it."""
        buckets = sorted(self.latency)
        return {
            "Values": [round(math.exp((bucket + 0.5) / LATENCY_STEPS), 4) for bucket in buckets],
            "Counts": [self.latency[bucket] for bucket in buckets],
            "Min": round(self.latency_min, 3),
            "Max": round(self.latency_max, 3),
            "Count": self.requests,
            "Sum": round(self.latency_sum, 3),
        }


class MetricsWindow:
    """A worker's invocations since its last publication, by model, version and status; `documents` empties it."""

    def __init__(self, variant: str, *, multi_model: bool = False, namespace: str = NAMESPACE):
        self._variant = variant
        self._multi_model = multi_model
        self._directives = _directives(namespace, ("ModelName", *DIMENSIONS) if multi_model else DIMENSIONS)
        self._tallies: dict[tuple[str, str, int], _Tally] = {}

    def add(self, status: int, latency_ms: float, stats: InvocationStats) -> None:
        key = (stats.model_name, stats.model_version, status)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally()
        tally.add(latency_ms, stats)

    def documents(self, timestamp: float) -> list[dict]:
        """The window as EMF documents (one per model, version and status), stamped `timestamp`; then empty."""
        tallies, self._tallies = self._tallies, {}
        documents = []
        for (name, version, status), tally in tallies.items():
            members = {
                "_aws": {"Timestamp": int(timestamp * 1000), "CloudWatchMetrics": self._directives},
                "ModelVersion": version,
                "Variant": self._variant,
                "StatusCode": str(status),
                "Latency": tally.latency_distribution(),
                "Queries": tally.queries,
                "Fallbacks": tally.fallbacks,
                "FoldIns": tally.fold_ins,
                "EmptyAnswers": tally.empty_answers,
                "Errors": tally.requests if status >= 400 and status != ClientClosedRequest.status else 0,
                "Requests": tally.requests,
            }
            if self._multi_model:
                members["ModelName"] = name
            documents.append(members)
        return documents


def model_event(
    variant: str, name: str, loaded: int, *, load_ms: float | None = None, namespace: str = NAMESPACE
) -> dict:
    """The EMF members of a multi-model server's load (with its `load_ms`) or unload line."""
    metrics = [
        {"Namespace": namespace, "Dimensions": [["Variant"]], "Metrics": [{"Name": "LoadedModels", "Unit": "Count"}]}
    ]
    members: dict = {"Variant": variant, "ModelName": name, "LoadedModels": loaded}
    if load_ms is not None:
        metrics.append(
            {
                "Namespace": namespace,
                "Dimensions": [["ModelName", "Variant"]],
                "Metrics": [{"Name": "ModelLoadTime", "Unit": "Milliseconds"}],
            }
        )
        members["ModelLoadTime"] = round(load_ms, 3)
    return {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": metrics}, **members}
