"""Multi-model endpoints, batch transform jobs and asynchronous inference, end to end: the deploy/ scripts with the
real aws CLI and boto3 against moto, and SageMaker's side played by sagemaker_local.runtime and
sagemaker_local.transform against real containers."""

from __future__ import annotations

import json
import subprocess
import threading
from functools import partial
from pathlib import Path

import boto3
import httpx
import pytest

from deploy.client import RecommenderClient, RecommenderModelError
from sagemaker_local.async_inference import AsyncQueue
from sagemaker_local.models import ModelHost
from sagemaker_local.runtime import Endpoint
from sagemaker_local.runtime import serve as serve_runtime
from tests.aws import REGION, cli_env, client, reset
from tests.container import needs_engine, serving_container
from tests.deploying.scripts import ENDPOINT, ROLE, pushed_image, script
from tests.server import PROJECT_ROOT, free_port
from tests.test_multi_model import model_size_mb

pytestmark = [pytest.mark.aws, pytest.mark.container, needs_engine]
BUCKET = "vr-hosting"
PREFIX = f"s3://{BUCKET}/tenants/"


@pytest.fixture
def aws(moto_url):
    reset(moto_url)
    s3 = client(moto_url, "s3")
    s3.create_bucket(Bucket=BUCKET)
    return partial(client, moto_url)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """The host directory the multi-model container mounts as /opt/ml/models (SageMaker's unpacked models)."""
    directory = tmp_path_factory.mktemp("opt-ml-models")
    for folder in (directory, *directory.parents[:2]):
        folder.chmod(0o755)
    return directory


@pytest.fixture(scope="module")
def mme_container(image, models_dir, model_dir):
    budget = f"{model_size_mb(model_dir) * 1.5:.3f}"  # room for one model: a second one is answered 507
    yield from serving_container(
        image, "vr-test-mme-endpoint", "-e", "SAGEMAKER_MULTI_MODEL=true", "-e", f"VR_MULTI_MODEL_MEMORY_MB={budget}",
        "-v", f"{models_dir}:/opt/ml/models:ro",
    )  # fmt: skip


@pytest.fixture(scope="module")
def batch_container(image):
    yield from serving_container(
        image, "vr-test-batch", "-e", "SAGEMAKER_BATCH=true", "-e", "SAGEMAKER_MAX_PAYLOAD_IN_MB=1"
    )


@pytest.fixture(scope="module")
def plain_container(image):
    yield from serving_container(image, "vr-test-async")


@pytest.fixture(scope="module")
def runtime(moto_url, mme_container, plain_container, models_dir):
    """SageMaker's runtime, played locally: a multi-model endpoint and an asynchronous one."""
    s3 = client(moto_url, "s3")
    endpoints = {
        "tenants": Endpoint(
            {"AllTraffic": mme_container.url},
            models={"AllTraffic": ModelHost(mme_container.url, PREFIX, models_dir, s3)},
        ),
        "nightly": Endpoint(
            {"AllTraffic": plain_container.url},
            queue=AsyncQueue(s3, f"s3://{BUCKET}/async/out/", f"s3://{BUCKET}/async/failed/"),
        ),
    }
    port = free_port()
    server = serve_runtime(endpoints, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}", endpoints
    server.shutdown()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture
def aws_env(aws, moto_url, runtime, home):
    return cli_env(moto_url, home) | {"VR_RUNTIME_ENDPOINT_URL": runtime[0]}


def package(aws_env, model_dir: Path, target: str) -> str:
    result = script(
        "package_model.sh", "--model-dir", str(model_dir), "--multi-model-prefix", PREFIX, "--target-model", target,
        env=aws_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- multi-model endpoints -----------------------------------------------------------------------------------


def test_deploy_multi_model_creates_a_multimodel_model_on_the_prefix(aws_env, aws, model_dir):
    assert package(aws_env, model_dir, "fr.tar.gz") == "fr.tar.gz"
    assert aws("s3").head_object(Bucket=BUCKET, Key="tenants/fr.tar.gz")["ContentLength"] > 0
    result = script(
        "deploy.sh", "--image-uri", pushed_image(aws), "--role-arn", ROLE, "--endpoint-name", "tenants",
        "--multi-model", PREFIX, "--smoke-target-model", "fr.tar.gz", env=aws_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sagemaker = aws("sagemaker")
    config = sagemaker.describe_endpoint_config(
        EndpointConfigName=sagemaker.describe_endpoint(EndpointName="tenants")["EndpointConfigName"]
    )
    container = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])["PrimaryContainer"]
    assert container["Mode"] == "MultiModel" and container["ModelDataUrl"] == PREFIX
    assert "smoke test" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--multi-model", "s3://bucket/no-slash"], "ending in /"),
        (["--multi-model", PREFIX, "--serverless-memory-mb", "2048"], "cannot be serverless"),
        (["--multi-model", PREFIX, "--data-capture", "s3://b/c"], "no Model Monitor"),
        (["--smoke-target-model", "a.tar.gz"], "needs --multi-model"),
        (["--autoscale-min", "0", "--autoscale-max", "2"], "scale to zero"),
    ],
)
def test_deploy_refuses_what_a_hosting_mode_rules_out(aws_env, aws, args, message):
    result = script("deploy.sh", "--image-uri", pushed_image(aws), "--role-arn", ROLE, *args, env=aws_env)
    assert result.returncode != 0 and message in result.stderr
    assert aws("sagemaker").list_models()["Models"] == []


def test_invoke_target_model_loads_on_first_use_and_unloads_the_least_recent_when_full(aws_env, runtime, model_dir):
    package(aws_env, model_dir, "fr.tar.gz")
    package(aws_env, model_dir, "de/model.tar.gz")
    host = runtime[1]["tenants"].models["AllTraffic"]
    for target in ("fr.tar.gz", "de/model.tar.gz", "fr.tar.gz"):
        result = script(
            "invoke.sh", "--endpoint-name", "tenants", "--target-model", target, "--body",
            '{"user_id": "u001", "k": 2}', env=aws_env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)["recommendations"]) == 2
        assert host.loaded() == [target]  # the budget holds one model: the other was unloaded on the 507
    missing = script("invoke.sh", "--endpoint-name", "tenants", "--target-model", "absent.tar.gz", env=aws_env)
    assert missing.returncode != 0 and "Failed to download model data" in missing.stderr


def test_python_client_passes_the_target_model(aws_env, runtime, model_dir):
    package(aws_env, model_dir, "fr.tar.gz")
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    tenant = RecommenderClient("tenants", endpoint_url=runtime[0], session=session, target_model="fr.tar.gz")
    assert tenant.recommend("u001", k=3)["userId"] == "u001"
    with pytest.raises(RecommenderModelError) as raised:
        tenant.invoke({"user_id": "u001", "k": 0})
    assert raised.value.status == 422


# --- batch transform ---------------------------------------------------------------------------------------


def sagemaker_model(aws) -> str:
    aws("sagemaker").create_model(
        ModelName="vr-batch", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": pushed_image(aws)}
    )
    return "vr-batch"


def transform(aws_env, aws, container_url: str, *extra: str):
    return script(
        "batch_transform.sh", "--model-name", sagemaker_model(aws), "--input", f"s3://{BUCKET}/nightly/in/",
        "--output", f"s3://{BUCKET}/nightly/out/", "--max-payload-mb", "1", "--run-locally", container_url, *extra,
        env=aws_env,
    )  # fmt: skip


def put_lines(aws, key: str, lines: list[str]) -> None:
    aws("s3").put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())


def test_a_transform_job_answers_every_line_of_every_file_in_order_with_no_empty_line(aws_env, aws, batch_container):
    users = [f"u{index % 400:03d}" for index in range(40_000)]  # 1.1 MB: two mini-batches under 1 MiB
    lines = [json.dumps({"user_id": user, "k": 3}) for user in users]
    lines[777] = '{"user_id": "u001", "k": '  # a bad line: answered in its slot
    put_lines(aws, "nightly/in/part-1.jsonl", lines)
    put_lines(aws, "nightly/in/part-2.jsonl", ['{"video_id": "v005", "k": 2}'])
    result = transform(aws_env, aws, batch_container.url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stderr[result.stderr.index("{") : result.stderr.rindex("}") + 1])
    assert report["status"] == "Completed" and report["files"][0]["mini_batches"] == 2
    first = aws("s3").get_object(Bucket=BUCKET, Key="nightly/out/part-1.jsonl.out")["Body"].read().decode()
    assert first.endswith("}\n") and "\n\n" not in first  # one line per input line, as AssembleWith=Line writes
    answers = [json.loads(line) for line in first.splitlines()]
    assert len(answers) == len(lines)
    assert answers[777]["error"]["status"] == 400
    assert [answer.get("userId") for answer in answers[:777]] == users[:777]
    assert [answer.get("userId") for answer in answers[778:]] == users[778:]
    second = aws("s3").get_object(Bucket=BUCKET, Key="nightly/out/part-2.jsonl.out")["Body"].read().decode()
    assert json.loads(second)["videoId"] == "v005"


def test_a_line_over_the_payload_limit_fails_the_job_naming_the_file_and_line(aws_env, aws, batch_container):
    history = [f"v{index:03d}" for index in range(100)] * 1500  # one line of 1.2 MB
    put_lines(aws, "nightly/in/big.jsonl", ['{"user_id": "u001"}', json.dumps({"history": history})])
    result = transform(aws_env, aws, batch_container.url)
    assert result.returncode != 0
    assert "nightly/in/big.jsonl" in result.stderr and "line 2" in result.stderr
    assert "Contents" not in aws("s3").list_objects_v2(Bucket=BUCKET, Prefix="nightly/out/")


def test_batch_transform_refuses_limits_sagemaker_refuses(aws_env, aws):
    result = script(
        "batch_transform.sh", "--model-name", "any", "--input", f"s3://{BUCKET}/in/", "--output", f"s3://{BUCKET}/o/",
        "--max-payload-mb", "50", "--max-concurrent", "4", env=aws_env,
    )  # fmt: skip
    assert result.returncode != 0 and "over SageMaker's 100 MB" in result.stderr


# --- asynchronous inference -------------------------------------------------------------------------------


def test_deploy_async_sets_the_config_the_timeout_and_scale_to_zero(aws_env, aws):
    result = script(
        "deploy.sh", "--image-uri", pushed_image(aws), "--role-arn", ROLE, "--endpoint-name", ENDPOINT,
        "--async-output", f"s3://{BUCKET}/async/out/", "--async-failure", f"s3://{BUCKET}/async/failed/",
        "--async-max-concurrent", "2", "--async-timeout", "1800", "--autoscale-min", "0", "--autoscale-max", "2",
        env=aws_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sagemaker = aws("sagemaker")
    config = sagemaker.describe_endpoint_config(
        EndpointConfigName=sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    )
    assert config["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == f"s3://{BUCKET}/async/out/"
    assert config["AsyncInferenceConfig"]["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 2}
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_MODEL_SERVER_TIMEOUT"] == "1800"
    scaling = aws("application-autoscaling")
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]["MinCapacity"] == 0
    policies = {
        policy["PolicyType"]
        for policy in scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    }
    assert policies == {"TargetTrackingScaling", "StepScaling"}


def test_invoke_async_uploads_waits_and_prints_the_answer(aws_env):
    result = script(
        "invoke.sh", "--endpoint-name", "nightly", "--async", "--async-input", f"s3://{BUCKET}/async/in/",
        "--body", '{"instances": [{"user_id": "u001", "k": 2}, {"user_id": "u002", "k": 2}]}', env=aws_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [answer["userId"] for answer in json.loads(result.stdout)["predictions"]] == ["u001", "u002"]


def test_a_failing_async_invocation_writes_its_failure_and_invoke_says_where(aws_env, aws):
    result = script(
        "invoke.sh", "--endpoint-name", "nightly", "--async", "--async-input", f"s3://{BUCKET}/async/in/",
        "--body", '{"user_id": "u001", "k": 0}', "--wait", "30", env=aws_env,
    )  # fmt: skip
    assert result.returncode != 0
    assert "failed" in result.stderr and f"s3://{BUCKET}/async/failed/" in result.stderr
    failed = aws("s3").list_objects_v2(Bucket=BUCKET, Prefix="async/failed/")["Contents"]
    body = json.loads(aws("s3").get_object(Bucket=BUCKET, Key=failed[0]["Key"])["Body"].read())
    assert body["statusCode"] == 422 and "k" in body["message"]


def test_async_invocation_of_a_missing_input_is_refused(runtime):
    response = httpx.post(
        f"{runtime[0]}/endpoints/nightly/async-invocations",
        headers={"X-Amzn-SageMaker-InputLocation": f"s3://{BUCKET}/async/in/absent.json"},
    )
    assert response.status_code == 400 and "absent.json" in response.json()["message"]


# --- the SageMaker SDK v3 ----------------------------------------------------------------------------------

SDK3_PYTHON = PROJECT_ROOT / ".venv-sdk3" / "bin" / "python"


@pytest.mark.sdk_v3
@pytest.mark.skipif(not SDK3_PYTHON.exists(), reason="opt-in: `make sdk3` installs the SageMaker SDK v3 (~1 GB)")
@pytest.mark.parametrize(("endpoint", "extra"), [("nightly", []), ("tenants", ["--target-model", "fr.tar.gz"])])
def test_the_sdk_v3_example_invokes_an_endpoint_and_a_multi_model_target(aws_env, runtime, model_dir, endpoint, extra):
    package(aws_env, model_dir, "fr.tar.gz")
    result = subprocess.run(
        [str(SDK3_PYTHON), "deploy/sagemaker_sdk_example.py", "--endpoint-name", endpoint, "--region", REGION,
         "--runtime-endpoint-url", runtime[0], *extra],
        cwd=PROJECT_ROOT, env=aws_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first = json.loads(result.stdout[: result.stdout.index("\n}\n") + 2])
    assert first["userId"] == "u001" and len(first["recommendations"]) == 3
