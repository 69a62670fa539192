"""Where the training commands' log lines go: stdout (CloudWatch Logs in a SageMaker training job), our INFO lines
as they are. Libraries' INFO chatter that reads like a fault is held back: matplotlib's "generated new
fontManager" (it builds its font cache the first time a chart is drawn on a machine) and py4j's per-connection
lines; their warnings still show."""

from __future__ import annotations

import logging
import sys

QUIETED = ("matplotlib", "py4j")


def log_to_stdout() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    for name in QUIETED:
        logging.getLogger(name).setLevel(logging.WARNING)
