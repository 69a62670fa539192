#!/usr/bin/env python3
"""The CloudWatch dashboard body of an endpoint, for deploy.sh (printed as JSON; standard library only).

    python3 deploy/dashboard.py --endpoint-name video-recommender --region eu-west-1 --variants AllTraffic,Candidate

Per variant: invocations, model latency p50 and p99, 4xx and 5xx (AWS/SageMaker); fallbacks and fold-ins by variant
and model version (the container's VideoRecommender metrics, found by SEARCH, so every model version deployed
later shows up without redeploying the dashboard); and the attribution figures traffic.sh --promote --if
publishes (take rate, satisfying take rate, watch minutes per 1,000 lists).
"""

from __future__ import annotations

import argparse
import json

NAMESPACE = "VideoRecommender"  # the container's metrics (serving/metrics.py) and the attribution figures


def body(endpoint: str, region: str, variants: list[str]) -> dict:
    ids = iter(range(1, 100))

    def per_variant(metric: str, stat: str) -> list[list]:
        return [
            ["AWS/SageMaker", metric, "EndpointName", endpoint, "VariantName", variant, {"stat": stat}]
            for variant in variants
        ]

    def search(metric: str, stat: str, *, of_endpoint: bool) -> list[list]:
        """Every series of `metric` in our namespace, whatever model version or variant it names."""
        dimensions, where = (
            ("EndpointName,Variant", f' EndpointName="{endpoint}"') if of_endpoint else ("ModelVersion,Variant", "")
        )
        query = f"SEARCH('{{{NAMESPACE},{dimensions}}} MetricName=\"{metric}\"{where}', '{stat}', 300)"
        return [[{"expression": query, "label": metric, "id": f"q{next(ids)}"}]]

    def widget(title: str, metrics: list[list], *, row: int, column: int) -> dict:
        return {
            "type": "metric",
            "x": 12 * column,
            "y": 6 * row,
            "width": 12,
            "height": 6,
            "properties": {"title": title, "region": region, "metrics": metrics, "period": 60, "view": "timeSeries"},
        }

    latency = per_variant("ModelLatency", "p50") + per_variant("ModelLatency", "p99")
    errors = per_variant("Invocation4XXErrors", "Sum") + per_variant("Invocation5XXErrors", "Sum")
    served = search("Fallbacks", "Sum", of_endpoint=False) + search("FoldIns", "Sum", of_endpoint=False)
    taken = search("TakeRate", "Average", of_endpoint=True) + search("SatisfyingTakeRate", "Average", of_endpoint=True)
    minutes = search("WatchMinutesPer1000Lists", "Average", of_endpoint=True)
    return {
        "widgets": [
            widget("Invocations", per_variant("Invocations", "Sum"), row=0, column=0),
            widget("Model latency p50 / p99 (microseconds)", latency, row=0, column=1),
            widget("4xx / 5xx", errors, row=1, column=0),
            widget("Fallbacks and fold-ins by variant and model version", served, row=1, column=1),
            widget("Take rate (attribution)", taken, row=2, column=0),
            widget("Watch minutes per 1,000 lists (attribution)", minutes, row=2, column=1),
        ]
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--variants", required=True, help="comma-separated production variant names")
    args = parser.parse_args(argv)
    print(json.dumps(body(args.endpoint_name, args.region, [name for name in args.variants.split(",") if name])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
