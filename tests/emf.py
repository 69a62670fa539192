"""CloudWatch Embedded Metric Format, as its specification defines it, for checking the server's log lines.

docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import jsonschema

UNITS = [
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
]  # fmt: skip
SCHEMA = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Dimensions": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "maxItems": 30,
                                    "items": {"type": "string", "minLength": 1, "maxLength": 250},
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": {"type": "string", "minLength": 1, "maxLength": 1024},
                                        "Unit": {"enum": UNITS},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def validate(line: dict) -> None:
    """Raise when `line` is not a valid EMF document (schema, and the members its directives reference)."""
    jsonschema.validate(line, SCHEMA)
    for directive in line["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                assert isinstance(line.get(name), str), f"dimension {name} must be a string member"
        for metric in directive["Metrics"]:
            value = line.get(metric["Name"])
            assert isinstance(value, int | float) and not isinstance(value, bool), f"metric {metric['Name']}: {value!r}"


def metric_values(line: dict, dimensions: tuple[str, ...]) -> dict[str, float]:
    """The metrics `line` (a valid EMF document) reports under exactly these dimensions."""
    validate(line)
    return {
        metric["Name"]: line[metric["Name"]]
        for directive in line["_aws"]["CloudWatchMetrics"]
        if list(dimensions) in directive["Dimensions"]
        for metric in directive["Metrics"]
    }
