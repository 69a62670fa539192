"""`python -m vrmodels.drift`: the drift report's command, kept where users type it; the report is deploy/drift.py."""

from __future__ import annotations

import sys

from deploy.drift import main

if __name__ == "__main__":
    sys.exit(main())
