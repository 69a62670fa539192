"""deploy/ scripts and the Python client against moto in server mode, with the real aws CLI and boto3.

Runtime calls go through deploy/local_runtime.py to the real container; `docker push` goes to Debian's
docker-registry on 127.0.0.1 standing in for ECR. moto lacks UpdateEndpoint: tests/moto_update_endpoint.py
adds it, test-only.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import boto3
import httpx
import pytest

from deploy.client import RecommenderClient, RecommenderModelError
from deploy.local_runtime import serve as serve_runtime
from tests import moto_update_endpoint
from tests.container import needs_engine, run_server
from tests.server import PROJECT_ROOT, free_port

pytestmark = [
    pytest.mark.aws,
    pytest.mark.container,
    needs_engine,
]
ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker-execution"
ENDPOINT = "vr-it"
REPOSITORY = "video-recommender"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
BIN = Path(os.environ.get("VR_VENV_BIN", PROJECT_ROOT / ".venv" / "bin"))


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    moto_update_endpoint.install()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def fresh_aws_state(moto_url):
    httpx.post(f"{moto_url}/moto-api/reset")


@pytest.fixture(scope="module")
def container(image):
    running = run_server(image, "vr-test-deploy-target", "serve")
    running.wait_ready()
    yield running
    running.remove()


@pytest.fixture(scope="module")
def runtime_url(container):
    port = free_port()
    server = serve_runtime({ENDPOINT: container.url, "video-recommender": container.url}, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture(scope="module")
def aws_env(moto_url, runtime_url, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
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
        "VR_RUNTIME_ENDPOINT_URL": runtime_url,
    }


@pytest.fixture
def aws(moto_url):
    def client(service: str):
        return boto3.client(
            service, endpoint_url=moto_url, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
        )

    return client


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


# --- build_and_push ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory, image):
    binary = shutil.which("docker-registry")  # installed by tests/engine/ensure_engine.sh with the engine
    assert binary, "docker-registry missing: run tests/engine/ensure_engine.sh"
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    (root / "config.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen([binary, "serve", str(root / "config.yml")], stderr=subprocess.DEVNULL)
    url = f"127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"http://{url}/v2/").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url
    process.terminate()


def test_build_and_push_creates_the_repository_and_pushes_both_tags(aws_env, aws, registry):
    result = script(
        "build_and_push.sh", "--registry", registry, "--tag", "it-1", "--docker", "/usr/bin/docker", env=aws_env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"{registry}/{REPOSITORY}:it-1"
    repository = aws("ecr").describe_repositories(repositoryNames=[REPOSITORY])["repositories"][0]
    assert repository["imageScanningConfiguration"]["scanOnPush"] is True
    tags = httpx.get(f"http://{registry}/v2/{REPOSITORY}/tags/list").json()["tags"]
    assert sorted(tags) == ["it-1", "latest"]
    manifest = httpx.get(
        f"http://{registry}/v2/{REPOSITORY}/manifests/it-1",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert manifest.headers["content-type"] == "application/vnd.docker.distribution.manifest.v2+json"


def test_build_and_push_refuses_latest_as_the_immutable_tag(aws_env):
    result = script("build_and_push.sh", "--tag", "latest", env=aws_env)
    assert result.returncode != 0 and "--tag must be immutable" in result.stderr


# --- package_model -------------------------------------------------------------------------------------------


def test_package_model_uploads_a_sagemaker_tarball(aws_env, aws, model_dir):
    result = script(
        "package_model.sh", "--model-dir", str(model_dir), "--bucket", "vr-models", "--create-bucket", env=aws_env
    )
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url == f"s3://vr-models/models/video-recommender/{model_dir.name}/model.tar.gz"
    body = aws("s3").get_object(Bucket="vr-models", Key=url.removeprefix("s3://vr-models/"))["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert "manifest.json" in archive.getnames()


def test_package_model_without_bucket_says_what_is_missing(aws_env, model_dir):
    result = script("package_model.sh", "--model-dir", str(model_dir), "--bucket", "absent", env=aws_env)
    assert result.returncode != 0 and "bucket absent not found" in result.stderr


# --- deploy --------------------------------------------------------------------------------------------------


def test_deploy_creates_model_config_and_endpoint_and_smoke_tests_it(aws_env, aws, model_dir):
    packaged = script(
        "package_model.sh", "--model-dir", str(model_dir), "--bucket", "vr-models", "--create-bucket", env=aws_env
    )
    model_data = packaged.stdout.strip()
    result = deploy(aws_env, pushed_image(aws), "--model-data-url", model_data)
    assert result.returncode == 0, result.stderr
    sagemaker = aws("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    assert variant["InstanceType"] == "ml.m5.large" and variant["InitialInstanceCount"] == 1
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 600
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["Image"] == f"{ECR_HOST}/{REPOSITORY}:v1"
    assert model["PrimaryContainer"]["ModelDataUrl"] == model_data
    assert model["ExecutionRoleArn"] == ROLE
    assert "smoke test" in result.stderr


def test_second_deploy_updates_the_endpoint_instead_of_failing(aws_env, aws):
    image_uri = pushed_image(aws)
    assert deploy(aws_env, image_uri).returncode == 0
    first = aws("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    second_run = deploy(aws_env, image_uri, "--instance-count", "2")
    assert second_run.returncode == 0, second_run.stderr
    assert "updating it" in second_run.stderr
    endpoint = aws("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"] != first
    assert endpoint["ProductionVariants"][0]["DesiredInstanceCount"] == 2


def test_deploy_with_target_tracking_autoscaling(aws_env, aws):
    result = deploy(
        aws_env, pushed_image(aws), "--autoscale-min", "1", "--autoscale-max", "4", "--autoscale-target", "250"
    )
    assert result.returncode == 0, result.stderr
    scaling = aws("application-autoscaling")
    target = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]
    assert target["ResourceId"] == f"endpoint/{ENDPOINT}/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    policy = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    configuration = policy["TargetTrackingScalingPolicyConfiguration"]
    assert configuration["TargetValue"] == 250
    assert (
        configuration["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )


def test_deploy_serverless_variant(aws_env, aws):
    result = deploy(aws_env, pushed_image(aws), "--serverless-memory-mb", "2048", "--serverless-max-concurrency", "3")
    assert result.returncode == 0, result.stderr
    name = aws("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    variant = aws("sagemaker").describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 3}
    assert "InstanceType" not in variant


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image-uri", f"{ECR_HOST}/{REPOSITORY}:v1"], "--role-arn is required"),
        (["--image-uri", f"{ECR_HOST}/{REPOSITORY}:v1", "--role-arn", "sagemaker-role"], "is not an IAM role ARN"),
        (["--role-arn", ROLE], "--image-uri is required"),
        (["--role-arn", ROLE, "--image-uri", f"{ECR_HOST}/{REPOSITORY}:never-pushed"], "not found in ECR"),
        (["--role-arn", ROLE, "--image-uri", "docker.io/library/nginx:latest"], "not an ECR image URI"),
    ],
)
def test_deploy_refuses_bad_input_clearly(aws_env, aws, args, message):
    pushed_image(aws)
    result = script("deploy.sh", "--endpoint-name", ENDPOINT, *args, env=aws_env)
    assert result.returncode != 0
    assert message in result.stderr
    assert aws("sagemaker").list_models()["Models"] == []


# --- invoke, client ------------------------------------------------------------------------------------------


def test_invoke_script_pretty_prints_the_containers_answer(aws_env):
    result = script("invoke.sh", "--endpoint-name", ENDPOINT, "--body", '{"user_id": "u001", "k": 2}', env=aws_env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["userId"] == "u001" and len(answer["recommendations"]) == 2
    assert result.stdout.startswith("{\n")  # pretty-printed


def test_invoke_unknown_endpoint_fails_clearly(aws_env):
    result = script("invoke.sh", "--endpoint-name", "no-such-endpoint", env=aws_env)
    assert result.returncode != 0
    assert "Endpoint no-such-endpoint of account" in result.stderr


def test_python_client_recommends_and_raises_model_errors(runtime_url):
    credentials = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    client = RecommenderClient(ENDPOINT, region_name=REGION, endpoint_url=runtime_url, session=credentials)
    assert client.recommend("u001", k=3)["userId"] == "u001"
    many = client.recommend_many(["u001", "u002"], k=2)
    assert [answer["userId"] for answer in many] == ["u001", "u002"]
    with pytest.raises(RecommenderModelError) as raised:
        client.similar("no-such-video")
    assert raised.value.status == 404
    assert "no-such-video" in raised.value.message


def test_sagemaker_sdk_predictor_example_round_trips_json(runtime_url, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from deploy.sagemaker_sdk_example import make_predictor

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    predictor = make_predictor(ENDPOINT, session, runtime_url)
    assert predictor.predict({"user_id": "u001", "k": 2})["userId"] == "u001"
    predictions = predictor.predict({"instances": [{"user_id": "u002", "k": 1}, {"video_id": "v005", "k": 1}]})
    assert [sorted(p) for p in predictions["predictions"]] == [["recommendations", "userId"], ["similar", "videoId"]]


# --- teardown ------------------------------------------------------------------------------------------------


def test_teardown_removes_only_what_deploy_created(aws_env, aws):
    image_uri = pushed_image(aws)
    assert deploy(aws_env, image_uri, "--autoscale-min", "1", "--autoscale-max", "2").returncode == 0
    assert deploy(aws_env, image_uri).returncode == 0
    sagemaker = aws("sagemaker")
    sagemaker.create_model(
        ModelName=f"{ENDPOINT}-m-someone-else", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image_uri}
    )
    sagemaker.create_model(ModelName="unrelated-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image_uri})

    result = script("teardown.sh", "--endpoint-name", ENDPOINT, "--yes", "--delete-repository", env=aws_env)
    assert result.returncode == 0, result.stderr
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    remaining = sorted(m["ModelName"] for m in sagemaker.list_models()["Models"])
    assert remaining == sorted([f"{ENDPOINT}-m-someone-else", "unrelated-model"])
    assert (
        aws("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    )
    assert aws("ecr").describe_repositories()["repositories"] == []

    again = script("teardown.sh", "--endpoint-name", ENDPOINT, "--yes", env=aws_env)
    assert again.returncode == 0 and "already gone" in again.stderr


def test_teardown_never_deletes_a_repository_it_did_not_create(aws_env, aws):
    pushed_image(aws, managed=False)
    result = script("teardown.sh", "--endpoint-name", ENDPOINT, "--yes", "--delete-repository", env=aws_env)
    assert result.returncode != 0
    assert "was not created by these scripts; not deleting it" in result.stderr
    assert [r["repositoryName"] for r in aws("ecr").describe_repositories()["repositories"]] == [REPOSITORY]


def test_teardown_asks_before_deleting(aws_env):
    result = script("teardown.sh", "--endpoint-name", ENDPOINT, env=aws_env, stdin="")
    assert result.returncode != 0 and "refusing to delete without --yes" in result.stderr
