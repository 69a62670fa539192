"""The benchmarks run on demand, never in CI: here each one at least imports and parses its command line, so a
rename in the code they drive fails a test rather than the next person who runs them."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import bench

HELPERS = ("common", "synthetic", "tutorial_app")  # imported by the benchmarks, no command line of their own
BENCHMARKS = sorted(name for _, name, _ in pkgutil.iter_modules(bench.__path__) if name not in HELPERS)


def test_the_benchmarks_are_found():
    assert {"offline", "quality", "server", "scale"} <= set(BENCHMARKS)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_imports_and_prints_its_usage(name, capsys, monkeypatch):
    module = importlib.import_module(f"bench.{name}")
    monkeypatch.setattr("sys.argv", [f"python -m bench.{name}", "--help"])
    with pytest.raises(SystemExit) as exited:
        module.main()
    assert exited.value.code == 0
    assert "usage:" in capsys.readouterr().out
