"""`python -m vrmodels.drift`, kept where users type it: the drift report is monitoring.drift.

A forward by name, run only as a command: no module of vrmodels imports monitoring (which sits above serving).
"""

from __future__ import annotations

import runpy

if __name__ == "__main__":
    runpy.run_module("monitoring.drift", run_name="__main__", alter_sys=True)
