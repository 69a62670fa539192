"""Process model: gunicorn forks uvicorn workers from a master that has already imported everything.

Started as root, the master keeps root (it binds the port and manages workers) and the workers switch to
VR_WORKER_USER (the image's `vr`) before they load the model or read a request.

Forking after the imports and the model's load (gunicorn's preload) lets workers share the interpreter,
NumPy, SciPy, implicit, FastAPI and the loaded model copy-on-write; the model's arrays are memory-mapped, so
their pages are shared too. Each worker warms the model up (scores once on every path) after the fork and
before it accepts a connection, so /ping reflects its own readiness, and a worker gunicorn restarts starts
from the loaded model.
"""

from __future__ import annotations

import gc
from typing import ClassVar

from gunicorn.app.base import BaseApplication
from starlette.types import ASGIApp
from uvicorn_worker import UvicornWorker

from serving.settings import Settings, worker_account


class RecommenderWorker(UvicornWorker):
    CONFIG_KWARGS: ClassVar[dict[str, str]] = {"loop": "uvloop", "http": "httptools"}


class Supervisor(BaseApplication):
    """gunicorn configured from `Settings` alone (no config file, no command-line parsing)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        options = {
            "bind": f"0.0.0.0:{settings.port}",
            "workers": settings.workers,
            "worker_class": f"{RecommenderWorker.__module__}.{RecommenderWorker.__qualname__}",
            "preload_app": True,
            "graceful_timeout": int(settings.graceful_shutdown_seconds),
            # A worker's heartbeat starts after it has loaded its model, so this must outlast a load (SageMaker
            # allows up to ContainerStartupHealthCheckTimeoutInSeconds); scoring blocks the loop only for a lone
            # query (serving.batcher).
            "timeout": max(600, int(settings.timeout_seconds) * 2),
            "keepalive": 75,  # longer than SageMaker's and common load balancers' idle timeouts
            "backlog": 2048,
            "accesslog": None,
            "control_socket_disable": True,  # no runtime control channel inside an inference container
            "logconfig_dict": _json_logging(settings.log_level),
        }
        options |= _privileges(settings.worker_user)
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> ASGIApp:
        """Runs once in the master (preload), before the workers fork: imports, and maps the model."""
        from serving.app import create_app

        app = create_app(self.settings)
        if not self.settings.multi_model:  # multi-model mode loads on demand (serving.multimodel)
            app.state.model_state.load()  # no scoring here: each worker warms up after the fork, before it accepts
        # Everything loaded so far moves to the collector's permanent generation: the workers' collections
        # never walk it, so they never write its objects' headers and copy the pages they share with the master.
        gc.collect()
        gc.freeze()
        return app


def _privileges(worker_user: str) -> dict:
    """gunicorn's user/group for the workers: the master binds the port, workers parsing requests are not root."""
    account = worker_account(worker_user)
    return {} if account is None else {"user": account[0], "group": account[1]}


def _json_logging(level: str) -> dict:
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "serving.logs.JsonFormatter"}},
        "filters": {"closed_listener": {"()": "serving.logs.ClosedListenerNoise"}},
        "handlers": {"stdout": handler},
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True, "filters": ["closed_listener"]},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }
