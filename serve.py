#!/usr/bin/env python3
"""Container entry point: `serve` (default) starts the inference server; `train` runs a training job.

python serve.py [serve]     # uvicorn on 0.0.0.0:$SAGEMAKER_BIND_TO_PORT (8080) with the model server settings
"""

from __future__ import annotations

import sys

USAGE = """usage: serve.py [serve|train]
  serve  start the inference server on $SAGEMAKER_BIND_TO_PORT (default 8080); the default
  train  run a SageMaker training job: events from /opt/ml/input/data/<channel>/, model to /opt/ml/model"""


def serve() -> int:
    from serving.logs import configure_logging
    from serving.settings import Settings
    from serving.worker import Supervisor

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    Supervisor(settings).run()  # returns only by sys.exit: 0 after a graceful SIGTERM drain
    return 0


def train() -> int:
    from vrmodels.training.training_job import main as training_job

    return training_job()


COMMANDS = {"serve": serve, "train": train}


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command not in COMMANDS or len(argv) > 1:
        print(f"unknown arguments: {' '.join(argv)}\n{USAGE}", file=sys.stderr)
        return 2
    from vrmodels.model.threads import limit_blas_threads

    limit_blas_threads()  # before anything scores, in this process and every worker it forks
    return COMMANDS[command]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
