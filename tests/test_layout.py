"""The architecture holds: who may import whom, each setting and wire shape declared once, and importing does
nothing but define.

The layers, bottom up: features (reading events) · vrmodels.model (what the server loads) · vrmodels.training and
the training commands · serving · monitoring (which reads events and judges as training does); beside them
sagemaker_local (the local SageMaker stand-ins) and deploy (operator scripts, the client, the retrain pipeline,
which reads the training job's metric definitions); bench and tests on top.
Nothing imports a layer above its own, at the top of a file or inside a function. Commands kept where users type
them forward by name (runpy), and do nothing else.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from serving import settings as serving_settings
from serving import wire
from tests.server import PROJECT_ROOT

OURS = ("features", "vrmodels", "serving", "monitoring", "sagemaker_local", "deploy", "bench", "tests")
MAY_IMPORT = {  # a package (or module) → the packages of ours it may import; the longest prefix rules
    "features": ("features",),
    "vrmodels.model": ("vrmodels.model",),
    "vrmodels.training": ("features", "vrmodels.model", "vrmodels.training"),
    "vrmodels": ("features", "vrmodels.model", "vrmodels.training"),  # the commands users type
    "serving": ("serving", "vrmodels.model"),
    "monitoring": ("features", "vrmodels.model", "vrmodels.training", "serving", "monitoring"),
    "sagemaker_local": ("sagemaker_local",),
    "deploy": ("deploy",),
    "deploy.pipeline": ("deploy", "vrmodels.training"),  # the training job's metric definitions and report
    "deploy.pipeline_steps": ("deploy.rollout",),  # a Lambda function: what pipeline.sh zips with it, no more
    "deploy.rollout": (),
    "serve": ("serving", "vrmodels.model", "vrmodels.training"),
    "bench": ("features", "vrmodels", "serving", "monitoring", "sagemaker_local", "deploy", "bench"),
    "tests": OURS,
}
FORWARDS = {  # commands kept where users type them → the module each runs
    "vrmodels/drift.py": "monitoring.drift",
    "deploy/local_runtime.py": "sagemaker_local.runtime",
    "deploy/local_transform.py": "sagemaker_local.transform",
}


def modules_imported_by(path: Path) -> set[str]:
    """Every absolute module a file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts).removesuffix(".__init__")


def python_files() -> list[Path]:
    found = [PROJECT_ROOT / "serve.py"]
    for package in OURS:
        found += sorted(path for path in (PROJECT_ROOT / package).rglob("*.py") if "data" not in path.parts)
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(module: str) -> str:
    return max((layer for layer in MAY_IMPORT if within(module, layer)), key=len)


def upward_imports(modules: list[tuple[Path, str]]) -> list[str]:
    """`module imports name` for each import of ours that its layer may not make."""
    found = []
    for path, module in modules:
        allowed = MAY_IMPORT[layer_of(module)]
        for name in sorted(modules_imported_by(path)):
            if name.split(".")[0] in OURS and not any(within(name, prefix) for prefix in allowed):
                found.append(f"{module} imports {name}")
    return found


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports([(path, module_name(path)) for path in python_files()]) == []


def test_an_import_inside_a_function_that_runs_up_is_caught(tmp_path):
    breaker = tmp_path / "breaker.py"
    breaker.write_text("import vrmodels.model.ids\n\ndef handler():\n    from vrmodels.training import trainer\n")
    assert upward_imports([(breaker, "serving.breaker")]) == [
        "serving.breaker imports vrmodels.training",
        "serving.breaker imports vrmodels.training.trainer",
    ]


def test_every_module_belongs_to_a_layer():
    assert {module_name(path) for path in python_files() if layer_of(module_name(path)) not in MAY_IMPORT} == set()


@pytest.mark.parametrize(("command", "target"), sorted(FORWARDS.items()))
def test_a_command_kept_where_users_type_it_only_forwards(command, target):
    source = (PROJECT_ROOT / command).read_text()
    assert f'runpy.run_module("{target}", run_name="__main__", alter_sys=True)' in source
    assert not {name for name in modules_imported_by(PROJECT_ROOT / command) if name.split(".")[0] in OURS}


def every_module() -> list[str]:
    return [module_name(path) for path in python_files() if layer_of(module_name(path)) not in ("bench", "tests")]


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


# ---- each setting declared once ----


def string_constants(path: Path) -> list[str]:
    """Every string literal of a file but its docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def variables_named(path: Path) -> set[str]:
    return {value for value in string_constants(path) if re.fullmatch(r"(SAGEMAKER|VR)_[A-Z_]+", value)}


def test_the_server_reads_each_of_its_variables_only_through_the_declarations():
    declared = {field.validation_alias for field in serving_settings.Settings.model_fields.values()}
    elsewhere = {
        str(path.relative_to(PROJECT_ROOT)): variables_named(path) & declared
        for path in (PROJECT_ROOT / "serving").glob("*.py")
        if path.name != "settings.py"
    }
    assert {name: found for name, found in elsewhere.items() if found} == {}
    reads = [path.name for path in (PROJECT_ROOT / "serving").glob("*.py") if "os.environ" in path.read_text()]
    assert reads == []


def documented_rows(document: Path) -> list[str]:
    """The rows of the settings table in a Markdown document (from its header to the table's end)."""
    lines = document.read_text().splitlines()
    start = lines.index(serving_settings.table()[0])
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_docs_serving_tables_every_setting_as_declared():
    assert documented_rows(PROJECT_ROOT / "docs" / "serving.md") == serving_settings.table()


def test_readme_shows_settings_as_declared():
    rows = documented_rows(PROJECT_ROOT / "README.md")
    assert rows[:2] == serving_settings.table()[:2] and set(rows) <= set(serving_settings.table())


# ---- each wire shape declared once ----


WIRE_NAMES = {
    name
    for model in vars(wire).values()
    if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__ == wire.__name__
    for name in model.model_fields
    if re.fullmatch(r"[a-z]+[A-Z][A-Za-z]*|predictions|instances|recommendations|similar|error", name)
}


@pytest.mark.parametrize("package", ["serving", "monitoring"])
def test_wire_member_names_are_written_only_where_the_shapes_are_declared(package):
    written = {
        str(path.relative_to(PROJECT_ROOT)): sorted(set(string_constants(path)) & WIRE_NAMES)
        for path in (PROJECT_ROOT / package).glob("*.py")
        if path.name != "wire.py"
    }
    assert {name: found for name, found in written.items() if found} == {}


def test_the_wire_names_checked_include_the_known_answer_shape():
    assert {"userId", "videoId", "recommendations", "predictions", "instances", "error"} <= WIRE_NAMES


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "vrmodels.drift"],
        ["-m", "monitoring.drift"],
        ["-m", "deploy.local_runtime"],
        ["deploy/local_runtime.py"],
        ["-m", "deploy.local_transform"],
        ["deploy/local_transform.py"],
    ],
)
def test_the_commands_users_type_still_answer(command):
    result = subprocess.run([sys.executable, *command, "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
