"""moto in server mode on 127.0.0.1, and what the real aws CLI and boto3 need to reach it (test-only)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx

from tests import moto_sagemaker
from tests.server import PROJECT_ROOT, free_port

ACCOUNT = "123456789012"
REGION = "us-east-1"
BIN = Path(os.environ.get("VR_VENV_BIN", PROJECT_ROOT / ".venv" / "bin"))  # the aws CLI and python used


def moto_server() -> Iterator[str]:
    """A moto server with the SageMaker calls moto lacks (tests/moto_sagemaker.py); yields its URL."""
    from moto.server import ThreadedMotoServer

    moto_sagemaker.install()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def reset(moto_url: str) -> None:
    httpx.post(f"{moto_url}/moto-api/reset")


def cli_env(moto_url: str, home: Path) -> dict[str, str]:
    """The environment of a deploy/ script: fake credentials in a private HOME, every AWS call to moto."""
    return {
        "PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "VR_AWS_ENDPOINT_URL": moto_url,
    }


def client(moto_url: str, service: str):
    return boto3.client(
        service, endpoint_url=moto_url, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
    )
