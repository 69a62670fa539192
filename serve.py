#!/usr/bin/env python3
"""Container entry point: `serve` (default) starts the inference server; `train` runs a training job.

python serve.py [serve]     # uvicorn on 0.0.0.0:$SAGEMAKER_BIND_TO_PORT (8080) with the model server settings
"""

from __future__ import annotations

import os
import signal
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads, in this process and every worker

USAGE = "usage: serve.py [serve]\n  serve  start the inference server on $SAGEMAKER_BIND_TO_PORT (default 8080)"


def serve() -> int:
    import uvicorn

    from serving.environment import Settings
    from serving.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    # uvicorn drains on SIGTERM, then restores this handler and re-raises the signal: a drained stop exits 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        host="0.0.0.0",
        port=settings.port,
        workers=settings.workers,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        backlog=2048,
        timeout_keep_alive=75,  # longer than SageMaker's and common load balancers' idle timeouts
    )
    return 0


COMMANDS = {"serve": serve}


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command not in COMMANDS or len(argv) > 1:
        print(f"unknown arguments: {' '.join(argv)}\n{USAGE}", file=sys.stderr)
        return 2
    return COMMANDS[command]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
