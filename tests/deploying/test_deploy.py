"""Shipping a model: build_and_push, package_model, register, deploy (update, autoscaling, serverless), invoke and
the Python client, teardown, and the IAM roles and policies the scripts create or render.

`docker push` goes to Debian's docker-registry on 127.0.0.1 standing in for ECR.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import time

import boto3
import httpx
import pytest

from deploy.client import RecommenderClient, RecommenderModelError
from tests.aws import ACCOUNT, REGION
from tests.container import needs_engine
from tests.deploying.scripts import ECR_HOST, ENDPOINT, REPOSITORY, ROLE, deploy, endpoint_config, pushed_image, script
from tests.server import PROJECT_ROOT, free_port

pytestmark = [pytest.mark.aws, pytest.mark.container, needs_engine]


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


# --- register -------------------------------------------------------------------------------------------------


def registered(aws_env, image_uri: str, model_dir, *extra: str) -> tuple[subprocess.CompletedProcess, str]:
    packaged = script(
        "package_model.sh", "--model-dir", str(model_dir), "--bucket", "vr-models", "--create-bucket", env=aws_env
    )
    model_data = packaged.stdout.strip()
    result = script(
        "register.sh", "--model-data-url", model_data, "--image-uri", image_uri, "--group", "vr-it", *extra,
        env=aws_env,
    )  # fmt: skip
    return result, model_data


def test_register_puts_the_model_and_its_evaluation_into_a_package_group(aws_env, aws, model_dir):
    result, model_data = registered(aws_env, pushed_image(aws), model_dir)
    assert result.returncode == 0, result.stderr
    arn = result.stdout.strip()
    package = aws("sagemaker").describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == model_data
    report_url = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert report_url == model_data.replace("model.tar.gz", "evaluation.json")
    report = json.loads(
        aws("s3").get_object(Bucket="vr-models", Key=report_url.removeprefix("s3://vr-models/"))["Body"].read()
    )
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert (
        report["model_version"] == manifest["model_version"] == package["CustomerMetadataProperties"]["model_version"]
    )
    assert float(package["CustomerMetadataProperties"]["ndcg_home"]) == pytest.approx(
        report["figures"]["ndcg_home"], abs=1e-6
    )
    assert report["figures"]["ndcg_home"] == manifest["metrics"][manifest["shipped"]]["ndcg"]
    groups = aws("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert [group["ModelPackageGroupName"] for group in groups] == ["vr-it"]


def test_deploy_takes_an_approved_package_and_refuses_a_pending_one(aws_env, aws, model_dir):
    image_uri = pushed_image(aws)
    pending, _ = registered(aws_env, image_uri, model_dir)
    refused = script(
        "deploy.sh", "--model-package-arn", pending.stdout.strip(), "--role-arn", ROLE, "--endpoint-name", ENDPOINT,
        env=aws_env,
    )  # fmt: skip
    assert refused.returncode != 0 and "is PendingManualApproval: approve it first" in refused.stderr
    approved, model_data = registered(aws_env, image_uri, model_dir, "--approve")
    result = script(
        "deploy.sh", "--model-package-arn", approved.stdout.strip(), "--role-arn", ROLE, "--endpoint-name", ENDPOINT,
        "--no-smoke-test", env=aws_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (variant,) = endpoint_config(aws)["ProductionVariants"]
    container = aws("sagemaker").describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
    assert container["ModelDataUrl"] == model_data and container["Image"] == image_uri


def test_register_refuses_an_archive_without_a_manifest(aws_env, aws, tmp_path):
    aws("s3").create_bucket(Bucket="vr-models")
    aws("s3").put_object(Bucket="vr-models", Key="m/model.tar.gz", Body=b"not a tarball")
    result = script(
        "register.sh",
        "--model-data-url",
        "s3://vr-models/m/model.tar.gz",
        "--image-uri",
        pushed_image(aws),
        env=aws_env,
    )
    assert result.returncode != 0 and "s3://vr-models/m/model.tar.gz: no manifest.json at its root" in result.stderr


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
    assert [sorted(p) for p in predictions["predictions"]] == [
        ["recommendationId", "recommendations", "userId"],
        ["recommendationId", "similar", "videoId"],
    ]


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


# --- IAM -----------------------------------------------------------------------------------------------------


def test_create_role_grants_only_our_repository_model_prefix_logs_and_metrics(aws_env, aws):
    result = script(
        "deploy.sh", "--image-uri", pushed_image(aws), "--create-role", "--model-bucket", "vr-models",
        "--endpoint-name", ENDPOINT, env=aws_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    iam = aws("iam")
    role = iam.get_role(RoleName="video-recommender-sagemaker-execution")["Role"]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    policy = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="video-recommender-serving")["PolicyDocument"]
    resources = {statement["Sid"]: statement["Resource"] for statement in policy["Statement"]}
    assert resources["PullOurImageOnly"] == f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{REPOSITORY}"
    assert resources["ReadOurModelPrefixOnly"] == "arn:aws:s3:::vr-models/models/video-recommender/*"
    model_name = endpoint_config(aws)["ProductionVariants"][0]["ModelName"]
    assert aws("sagemaker").describe_model(ModelName=model_name)["ExecutionRoleArn"] == role["Arn"]
    again = script(
        "deploy.sh", "--image-uri", pushed_image(aws, "v2"), "--create-role", "--model-bucket", "vr-models",
        "--endpoint-name", ENDPOINT, env=aws_env,
    )  # fmt: skip
    assert again.returncode == 0 and "refreshing the policy of role" in again.stderr


def test_the_client_policy_allows_invoking_our_endpoint_only(aws, tmp_path):
    rendered = tmp_path / "invoke.json"
    subprocess.run(
        [
            "python3", str(PROJECT_ROOT / "deploy" / "render_config.py"),
            str(PROJECT_ROOT / "deploy" / "iam" / "invoke-endpoint-policy.json"), str(rendered),
            f"REGION={REGION}", f"ACCOUNT_ID={ACCOUNT}", "ENDPOINT_NAME_LOWER=vr-it",
        ],
        check=True,
    )  # fmt: skip
    document = json.loads(rendered.read_text())
    (statement,) = document["Statement"]
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
    assert statement["Resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/vr-it"
    created = aws("iam").create_policy(PolicyName="vr-invoke", PolicyDocument=rendered.read_text())
    assert created["Policy"]["PolicyName"] == "vr-invoke"
