"""What every deploy/ script test stands on: moto reset before each test, a serving container and the runtime API
in front of it (one per module), the scripts' environment, boto3 clients on moto."""

from __future__ import annotations

import threading
from functools import partial

import pytest

from sagemaker_local.runtime import serve as serve_runtime
from tests.aws import cli_env, client, reset
from tests.container import serving_container
from tests.deploying.scripts import ENDPOINT
from tests.server import free_port


@pytest.fixture(autouse=True)
def fresh_aws_state(moto_url):
    reset(moto_url)


@pytest.fixture(scope="module")
def container(image, request):
    """Named after its module: two modules of this folder may run at once (pytest-xdist)."""
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    yield from serving_container(image, f"vr-test-{module}-target")


@pytest.fixture(scope="module")
def runtime_url(container):
    port = free_port()
    server = serve_runtime({ENDPOINT: container.url, "video-recommender": container.url}, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture(scope="module")
def aws_env(moto_url, runtime_url, tmp_path_factory):
    return cli_env(moto_url, tmp_path_factory.mktemp("home")) | {"VR_RUNTIME_ENDPOINT_URL": runtime_url}


@pytest.fixture
def aws(moto_url):
    return partial(client, moto_url)
