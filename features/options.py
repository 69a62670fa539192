"""Options declared once, as dataclass fields: a name, a type, a default and a meaning (and the choices).

`option(...)` declares a field; `add_arguments` turns a dataclass's declared fields into command-line flags
(`factors` → `--factors`, a bool → a switch), `from_arguments` reads them back as keyword arguments for the
dataclass. The training job reads the same declarations as SageMaker hyperparameters
(vrmodels.training.options). A field declared without `option` is no option.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Collection, Sequence
from dataclasses import MISSING, Field, field, fields
from typing import Any

MEANING = "meaning"
CHOICES = "choices"


def option(default: Any = MISSING, meaning: str = "", *, choices: Sequence[str] | None = None, factory: Any = MISSING):
    """A dataclass field that is also an option (a flag, a hyperparameter); `factory` for mutable defaults."""
    metadata = {MEANING: meaning, CHOICES: tuple(choices) if choices else None}
    return field(default=default, default_factory=factory, metadata=metadata)


def declared(cls: type, only: Collection[str] | None = None) -> list[tuple[Field, type]]:
    """The option fields of a dataclass (those of `only`, when given) with their types, Optional unwrapped."""
    hints = typing.get_type_hints(cls)
    found = []
    for item in fields(cls):
        if MEANING not in item.metadata or (only is not None and item.name not in only):
            continue
        kind = hints[item.name]
        arguments = [argument for argument in typing.get_args(kind) if argument is not type(None)]
        if typing.get_origin(kind) in (typing.Union, types.UnionType) and arguments:
            kind = arguments[0]
        found.append((item, typing.get_origin(kind) or kind))
    return found


def default_of(item: Field) -> Any:
    return item.default_factory() if item.default is MISSING else item.default  # type: ignore[misc]


def add_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, only: Collection[str] | None = None
) -> None:
    """A flag per option of `cls`: `--name-with-dashes`, typed, with its default and meaning in --help."""
    for item, kind in declared(cls, only):
        flag = "--" + item.name.replace("_", "-")
        meaning = item.metadata[MEANING]
        if kind is bool:
            parser.add_argument(flag, action="store_true", dest=item.name, help=meaning)
            continue
        default = default_of(item)
        shown = json.dumps(default) if isinstance(default, dict) else default
        parser.add_argument(
            flag,
            type=json.loads if kind is dict else kind,
            default=default,
            choices=item.metadata[CHOICES],
            dest=item.name,
            help=f"{meaning} (default {shown})" if default is not None else meaning,
        )


def from_arguments(args: argparse.Namespace, cls: type, only: Collection[str] | None = None) -> dict[str, Any]:
    """The parsed values of `cls`'s options, as keyword arguments for it."""
    return {item.name: getattr(args, item.name) for item, _ in declared(cls, only)}
