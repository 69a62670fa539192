"""A real Docker engine for the container tests: set-up, image build, and running containers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.aws import REGION
from tests.server import PROJECT_ROOT

DOCKER = os.environ.get("VR_DOCKER", "/usr/bin/docker")  # Debian's client: builds with BuildKit, no buildx
ENSURE_ENGINE = PROJECT_ROOT / "tests" / "engine" / "ensure_engine.sh"
SETUP_LOCK = "/tmp/vr-ensure.lock"  # taken by tests/engine/*.sh: apt and dockerd's start allow one at a time
needs_engine = pytest.mark.skipif(os.environ.get("VR_SKIP_CONTAINER_TESTS") == "1", reason="VR_SKIP_CONTAINER_TESTS=1")


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check, timeout=timeout, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": "1"}


def ensure_engine() -> None:
    result = subprocess.run(["bash", str(ENSURE_ENGINE)], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"could not set up a Docker engine:\n{result.stdout}\n{result.stderr}")


def build_image(tag: str) -> tuple[float, int]:
    """Build the project's Dockerfile for linux/amd64; return (seconds, image bytes)."""
    started = time.monotonic()
    result = subprocess.run(
        [DOCKER, "build", "--platform", "linux/amd64", "-t", tag, str(PROJECT_ROOT)],
        capture_output=True,
        text=True,
        timeout=1800,
        env=_env(),
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker build failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}")
    seconds = time.monotonic() - started
    size = int(docker("image", "inspect", tag, "--format", "{{.Size}}").stdout.strip())
    return seconds, size


@dataclass
class Container:
    name: str
    url: str

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Seconds until /ping answered 200."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                if httpx.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"/ping not 200 within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)


def run_server(image: str, name: str, *args: str, port: int = 8080, options: tuple[str, ...] = ()) -> Container:
    docker("rm", "-f", name, check=False)
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1::{port}", *options, image, *args)
    mapping = docker("port", name, f"{port}/tcp").stdout.split()[0]
    return Container(name, f"http://{mapping}")


def serving_container(image: str, name: str, *options: str) -> Iterator[Container]:
    """For a fixture: the image serving (`serve`) with these `docker run` options, ready; removed afterwards."""
    running = run_server(image, name, "serve", options=options)
    running.wait_ready()
    yield running
    running.remove()


@contextlib.contextmanager
def local_mode(root: Path, **env: str) -> Iterator[None]:
    """What the `sagemaker` SDK's local mode needs on a machine without AWS (fake credentials, no instance metadata,
    no v2 banner; `env` on top), and afterwards the exited containers it leaves behind under `root` removed."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",  # v2 is the SDK requirements-dev.txt pins
            **env,
        }.items():
            patch.setenv(name, value)
        yield
    listed = docker("ps", "-a", "--format", '{{.ID}} {{.Label "com.docker.compose.project.working_dir"}}').stdout
    leftovers = [line.split()[0] for line in listed.splitlines() if line.partition(" ")[2].startswith(str(root))]
    if leftovers:
        docker("rm", "-f", *leftovers)
