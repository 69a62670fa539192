"""SageMaker's root directory inside the container (`/opt/ml`), where the server and the training job find it."""

from __future__ import annotations

import os
from pathlib import Path

VARIABLE = "VR_OPT_ML"
DEFAULT = Path("/opt/ml")


def opt_ml_root() -> Path:
    """`$VR_OPT_ML`, else /opt/ml (tests and local runs point it elsewhere)."""
    return Path(os.environ.get(VARIABLE) or DEFAULT)
