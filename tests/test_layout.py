"""The architecture holds: who may import whom, and importing does nothing but define.

serving/ imports only vrmodels.model of vrmodels; offline code (features/, vrmodels/) never imports serving;
vrmodels.model, what the server loads, imports neither training nor features. Importing any module changes no
process-wide setting: the entry points limit BLAS threads themselves (vrmodels.model.threads).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.server import PROJECT_ROOT


def modules_imported_by(path: Path) -> set[str]:
    """Every absolute module a file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (PROJECT_ROOT / folder).rglob("*.py"))


def offending(files: list[Path], forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{path.name} imports {name}"
        for path in files
        for name in sorted(modules_imported_by(path))
        if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)
        and not any(name == prefix or name.startswith(prefix + ".") for prefix in allowed)
    ]


def test_serving_imports_nothing_of_vrmodels_but_vrmodels_model():
    assert offending(python_files("serving"), ("vrmodels",), allowed=("vrmodels.model",)) == []


def test_offline_code_never_imports_serving():
    assert offending(python_files("features", "vrmodels/model", "vrmodels/training"), ("serving",)) == []


def test_the_model_package_imports_neither_training_nor_features():
    assert offending(python_files("vrmodels/model"), ("vrmodels.training", "features")) == []


def test_an_import_inside_a_function_is_caught_too(tmp_path):
    breaker = tmp_path / "breaker.py"
    breaker.write_text("import vrmodels.model.ids\n\ndef handler():\n    from vrmodels.training import trainer\n")
    reported = offending([breaker], ("vrmodels",), allowed=("vrmodels.model",))
    assert reported == ["breaker.py imports vrmodels.training", "breaker.py imports vrmodels.training.trainer"]


def every_module() -> list[str]:
    names = []
    for path in python_files("features", "vrmodels", "serving"):
        module = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
        names.append(module.removesuffix(".__init__"))
    return names + ["deploy.drift"]


def test_importing_any_module_changes_no_thread_setting_and_prints_nothing():
    probe = f"""
import importlib, json, os, sys
from threadpoolctl import threadpool_info
import numpy, scipy.linalg
before = [pool["num_threads"] for pool in threadpool_info()]
for name in {every_module()!r}:
    importlib.import_module(name)
after = [pool["num_threads"] for pool in threadpool_info()[: len(before)]]
print(json.dumps({{"env": os.environ.get("OPENBLAS_NUM_THREADS"), "before": before, "after": after}}))
"""
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()  # nothing else was printed
    facts = json.loads(line)
    assert facts["env"] is None
    assert facts["after"] == facts["before"]
