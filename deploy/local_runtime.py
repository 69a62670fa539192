#!/usr/bin/env python3
"""`python -m deploy.local_runtime` and `python deploy/local_runtime.py`, kept as users type them: the local
stand-in is sagemaker_local.runtime.

A forward by name, run only as a command (the path form starts with deploy/ on sys.path, so the project root is
put first).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    runpy.run_module("sagemaker_local.runtime", run_name="__main__", alter_sys=True)
