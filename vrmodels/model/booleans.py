"""One vocabulary for on/off settings, shared by the server's environment and the training job's hyperparameters."""

from __future__ import annotations

TRUE = ("true", "on", "yes", "1")
FALSE = ("false", "off", "no", "0")


def parse_bool(raw: str) -> bool:
    """`true/on/yes/1` or `false/off/no/0`, any case; ValueError naming the choices otherwise."""
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"{raw!r} is not on or off (true/false, yes/no, 1/0)")
