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
            _check_value(metric["Name"], line.get(metric["Name"]))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_value(name: str, value: object) -> None:
    """A number, up to 100 numbers, or up to 100 values with their counts (and their count, sum, minimum and
    maximum)."""
    if isinstance(value, list):
        assert 0 < len(value) <= 100 and all(map(_number, value)), f"metric {name}: {value!r}"
    elif isinstance(value, dict):
        values, counts = value.get("Values"), value.get("Counts")
        assert isinstance(values, list) and isinstance(counts, list), f"metric {name}: Values and Counts"
        assert 0 < len(values) == len(counts) <= 100, f"metric {name}: {len(values)} values, {len(counts)} counts"
        assert all(map(_number, values + counts)), f"metric {name}: {value!r}"
        assert set(value) <= {"Values", "Counts", "Count", "Sum", "Min", "Max"}, f"metric {name}: {sorted(value)}"
        assert value.get("Count", sum(counts)) == sum(counts), f"metric {name}: Count is not the counts' sum"
    else:
        assert _number(value), f"metric {name}: {value!r}"


def metric_values(line: dict, dimensions: tuple[str, ...]) -> dict[str, object]:
    """The metrics `line` (a valid EMF document) reports under exactly these dimensions."""
    validate(line)
    return {
        metric["Name"]: line[metric["Name"]]
        for directive in line["_aws"]["CloudWatchMetrics"]
        if list(dimensions) in directive["Dimensions"]
        for metric in directive["Metrics"]
    }


def published(lines: list[dict]) -> list[dict]:
    """The metrics lines among a server's log lines, each checked as an EMF document."""
    documents = [line for line in lines if line.get("message") == "metrics"]
    for document in documents:
        validate(document)
    return documents
