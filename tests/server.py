"""Start the real server (`python serve.py`) in a subprocess on a free local port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import PROJECT_ROOT, free_port


def json_lines(output: str) -> list[dict]:
    """The JSON objects among a server's output lines (gunicorn's and the app's logs are one a line)."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@dataclass
class RunningServer:
    process: subprocess.Popen
    url: str
    log_path: Path

    def logs(self) -> list[str]:
        return self.log_path.read_text().splitlines()

    def entries(self) -> list[dict]:
        """Its JSON log lines so far, parsed."""
        return json_lines(self.log_path.read_text())

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=30)


def start_server(log_path: Path, env: dict[str, str], wait_ready: bool = True, timeout: float = 60.0) -> RunningServer:
    port = free_port()
    full_env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(port), "SAGEMAKER_MODEL_SERVER_WORKERS": "1", **env}
    process = subprocess.Popen(
        [sys.executable, "serve.py"],
        cwd=PROJECT_ROOT,
        env=full_env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            status = httpx.get(f"{server.url}/ping", timeout=1).status_code
            if status == 200 or not wait_ready:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server not ready in {timeout}s:\n{log_path.read_text()}")


SLOW_REQUEST_LINES = 10_000
SLOW_SCORING = {"VR_MAX_BATCH": "1"}  # one query per scoring call: the request below then takes ~3 s, not ~0.7 s


class InFlightRequest:
    """A slow JSON Lines request (`lines` fold-ins, 10,000 by default) sent in the background, for shutdown tests.

    Start the server with SLOW_SCORING so that it is still in flight when the test stops the server; a model with
    a ranker scores a fold-in about ten times slower, so fewer lines take as long.
    """

    def __init__(self, url: str, lines: int = SLOW_REQUEST_LINES):
        self.outcome: dict = {}
        body = "\n".join(json.dumps({"history": ["v005", "v007"], "k": 5}) for _ in range(lines)).encode()
        sent = threading.Event()

        def whole_body():
            yield body
            sent.set()

        def call() -> None:
            headers = {"Content-Type": "application/jsonlines", "Content-Length": str(len(body))}
            response = httpx.post(f"{url}/invocations", content=whole_body(), headers=headers, timeout=60)
            self.outcome = {"status": response.status_code, "lines": len(response.text.splitlines())}

        self._thread = threading.Thread(target=call)
        self._thread.start()
        # In flight once the server holds the whole request: a fixed wait alone lost the race on a loaded machine.
        sent.wait(timeout=30)
        time.sleep(0.5)

    def result(self) -> dict:
        self._thread.join(timeout=60)
        return self.outcome
