"""Per-request metrics in CloudWatch Embedded Metric Format (EMF): the request log line doubles as metrics.

SageMaker sends a container's stdout to CloudWatch Logs; a JSON line carrying an `_aws` member in EMF
(docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
is also turned into metrics, with no agent. Each /invocations request writes one such line: its facts
(request id, route, status) stay readable, and these metrics are extracted, under the dimensions
ModelVersion and Variant (the container's VR_VARIANT, which deploy/deploy.sh sets per production variant):

    Latency       Milliseconds   time in the container
    Queries       Count          requests in the body (1, or its instances or lines)
    Fallbacks     Count          answers that are the popular fallback (unknown users)
    FoldIns       Count          queries folded in from a `history`
    EmptyAnswers  Count          answers with no video
    Errors        Count          1 when the status is 4xx or 5xx
    Requests      Count          1, under ModelVersion, Variant and StatusCode: errors by status

The `aws-embedded-metrics` library is not used: it builds a logger per request and flushes lines of its own,
where this line must stay one cheap write (serving.logs.RequestLogger) on a path served thousands of times a
second.
"""

from __future__ import annotations

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


def _directives(namespace: str) -> list[dict]:
    return [
        {
            "Namespace": namespace,
            "Dimensions": [list(DIMENSIONS)],
            "Metrics": [{"Name": name, "Unit": unit} for name, unit in REQUEST_METRICS.items()],
        },
        {
            "Namespace": namespace,
            "Dimensions": [[*DIMENSIONS, "StatusCode"]],
            "Metrics": [{"Name": "Requests", "Unit": "Count"}],
        },
    ]


class RequestMetrics:
    """Builds the EMF members of one request's line; the directives are the same for every line."""

    def __init__(self, namespace: str = NAMESPACE):
        self._directives = _directives(namespace)

    def members(
        self, timestamp: float, dimensions: dict[str, str], status: int, latency_ms: float, outcome: dict
    ) -> dict:
        """`outcome`: Queries, Fallbacks, FoldIns, EmptyAnswers as counted by serving.transform (0 when absent)."""
        return {
            "_aws": {"Timestamp": int(timestamp * 1000), "CloudWatchMetrics": self._directives},
            **dimensions,
            "StatusCode": str(status),
            "Latency": latency_ms,
            "Queries": outcome.get("Queries", 0),
            "Fallbacks": outcome.get("Fallbacks", 0),
            "FoldIns": outcome.get("FoldIns", 0),
            "EmptyAnswers": outcome.get("EmptyAnswers", 0),
            "Errors": int(status >= 400),
            "Requests": 1,
        }
