"""Per-request metrics in CloudWatch Embedded Metric Format (EMF): the request log line doubles as metrics.

SageMaker sends a container's stdout to CloudWatch Logs; a JSON line carrying an `_aws` member in EMF
(docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
is also turned into metrics, with no agent. Each invocation writes one such line: its facts (request id,
route, status) stay readable, and these metrics are extracted, under the dimensions ModelVersion and Variant
(the container's VR_VARIANT, which deploy/deploy.sh sets per production variant), and in multi-model mode
ModelName too (the caller's TargetModel when SageMaker passes it, else the loaded name):

    Latency       Milliseconds   time in the container
    Queries       Count          requests in the body (1, or its instances or lines)
    Fallbacks     Count          answers that are the popular fallback (unknown users)
    FoldIns       Count          answers folded in from a `history`
    EmptyAnswers  Count          answers with no video
    Errors        Count          1 when the answer's status is 4xx or 5xx (a caller that went away, 499, got none)
    Requests      Count          1, under ModelVersion, Variant and StatusCode: errors by status

A multi-model server also writes a line per model load and unload: ModelLoadTime (Milliseconds, under ModelName
and Variant) and LoadedModels (Count, under Variant).

The counts come from the request's typed outcomes (InvocationStats), which serving.invocations leaves in the
request's scope for the log line. The `aws-embedded-metrics` library is not used: it builds a logger per request
and flushes lines of its own, where this line must stay one cheap write on a path served thousands of times a
second.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

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


class RequestMetrics:
    """Builds the EMF members of one invocation's line; the directives are the same for every line."""

    def __init__(self, variant: str, multi_model: bool = False, namespace: str = NAMESPACE):
        self._variant = variant
        self._multi_model = multi_model
        self._directives = _directives(namespace, ("ModelName", *DIMENSIONS) if multi_model else DIMENSIONS)

    def members(self, timestamp: float, status: int, latency_ms: float, *, stats: InvocationStats) -> dict:
        members = {
            "_aws": {"Timestamp": int(timestamp * 1000), "CloudWatchMetrics": self._directives},
            "ModelVersion": stats.model_version,
            "Variant": self._variant,
            "StatusCode": str(status),
            "Latency": latency_ms,
            "Queries": stats.queries,
            "Fallbacks": stats.fallbacks,
            "FoldIns": stats.fold_ins,
            "EmptyAnswers": stats.empty_answers,
            "Errors": int(status >= 400 and status != ClientClosedRequest.status),
            "Requests": 1,
        }
        if self._multi_model:
            members["ModelName"] = stats.model_name
        return members


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
