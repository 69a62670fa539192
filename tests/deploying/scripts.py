"""The deploy/ scripts as the tests run them, and the names they deploy under (test-only)."""

from __future__ import annotations

import contextlib
import json
import subprocess

from tests.aws import ACCOUNT, REGION
from tests.server import PROJECT_ROOT

ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker-execution"
ENDPOINT = "vr-it"
REPOSITORY = "video-recommender"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


def script(name: str, *args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(PROJECT_ROOT / "deploy" / name), *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=900,
    )


def pushed_image(aws, tag: str = "v1", managed: bool = True) -> str:
    """Record an image in (moto's) ECR, as build_and_push.sh and a real push would, and return its URI."""
    ecr = aws("ecr")
    tags = [{"Key": "managed-by", "Value": "vr-deploy"}] if managed else []
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=REPOSITORY, tags=tags)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
    ecr.put_image(repositoryName=REPOSITORY, imageManifest=json.dumps(manifest), imageTag=tag)
    return f"{ECR_HOST}/{REPOSITORY}:{tag}"


def deploy(aws_env, image_uri: str, *extra: str) -> subprocess.CompletedProcess:
    return script(
        "deploy.sh", "--image-uri", image_uri, "--role-arn", ROLE, "--endpoint-name", ENDPOINT, *extra, env=aws_env
    )


def endpoint_config(aws) -> dict:
    sagemaker = aws("sagemaker")
    return sagemaker.describe_endpoint_config(
        EndpointConfigName=sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    )
