"""Helpers shared by the benchmarks (and the tests): a cache folder, free local ports, consistent printing."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).resolve().parent / ".cache"
MOVIELENS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "u.data"


def cache_dir() -> Path:
    CACHE.mkdir(exist_ok=True)
    return CACHE


def best_of(repeats: int, action: Callable[[], object]) -> float:
    """Fastest wall time of `repeats` runs, in seconds (the least disturbed by the machine)."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


T = TypeVar("T")


def in_turn(round_number: int, items: Sequence[T]) -> list[T]:
    """`items` in their order on even rounds, reversed on odd ones: which goes first alternates, so none is always
    measured on a machine the one before it warmed (or disturbed)."""
    return list(items) if round_number % 2 == 0 else list(items)[::-1]


def report(name: str, value: float, unit: str, target: str = "") -> None:
    print(f"{name:<58} {value:>14,.3f} {unit:<10} {target}", flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(pid: int) -> list[int]:
    """The processes `pid` started (a server's workers), from /proc."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
