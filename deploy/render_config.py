#!/usr/bin/env python3
"""Render a JSON template (model.json, endpoint-config.json) for `aws ... --cli-input-json`.

    render_config.py TEMPLATE OUTPUT NAME=VALUE [NAME=VALUE ...]

A placeholder is a whole JSON string "{{NAME}}" (text), "{{NAME:int}}", "{{NAME:float}}" (numbers) or
"{{NAME:bool}}" (true/false). Every placeholder needs a value; an empty value removes its field, and an object
or list left empty is removed too. That is how one template serves instance-backed and serverless variants, one
or two production variants, a shadow variant or none, with or without data capture. Inside a longer string
(an ARN in an IAM policy) "{{NAME}}" is replaced by its text, which must not be empty. Standard library only.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

PLACEHOLDER = re.compile(r"^\{\{([A-Z0-9_]+)(?::(int|float|bool))?\}\}$")
EMBEDDED = re.compile(r"\{\{([A-Z0-9_]+)\}\}")
_REMOVE = object()


def render(value: object, values: dict[str, str], template: str) -> object:
    if isinstance(value, dict):
        rendered = {key: render(item, values, template) for key, item in value.items()}
        kept = {key: item for key, item in rendered.items() if item is not _REMOVE}
        return kept if kept or not value else _REMOVE
    if isinstance(value, list):
        kept = [item for item in (render(entry, values, template) for entry in value) if item is not _REMOVE]
        return kept if kept or not value else _REMOVE
    if isinstance(value, str) and (match := PLACEHOLDER.match(value)):
        name, kind = match.groups()
        if name not in values:
            raise SystemExit(f"{template}: no value given for placeholder {name}")
        raw = values[name]
        if raw == "":
            return _REMOVE
        if kind == "int":
            if not re.fullmatch(r"-?\d+", raw):
                raise SystemExit(f"{template}: placeholder {name} needs a whole number, got {raw!r}")
            return int(raw)
        if kind == "float":
            if not re.fullmatch(r"-?\d+(\.\d+)?", raw):
                raise SystemExit(f"{template}: placeholder {name} needs a number, got {raw!r}")
            return float(raw)
        if kind == "bool":
            if raw not in ("true", "false"):
                raise SystemExit(f"{template}: placeholder {name} needs true or false, got {raw!r}")
            return raw == "true"
        return raw
    if isinstance(value, str):
        return EMBEDDED.sub(lambda match: embedded(match.group(1), values, template), value)
    return value


def embedded(name: str, values: dict[str, str], template: str) -> str:
    if not values.get(name):
        raise SystemExit(f"{template}: placeholder {name} inside a string needs a non-empty value")
    return values[name]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    template, output = Path(argv[0]), Path(argv[1])
    values = {}
    for assignment in argv[2:]:
        name, separator, value = assignment.partition("=")
        if not separator:
            raise SystemExit(f"expected NAME=VALUE, got {assignment!r}")
        values[name] = value
    document = render(json.loads(template.read_text()), values, str(template))
    output.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
