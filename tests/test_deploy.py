"""deploy/ scripts and the Python client against moto in server mode, with the real aws CLI and boto3.

Runtime calls go through sagemaker_local.runtime to the real container; `docker push` goes to Debian's
docker-registry on 127.0.0.1 standing in for ECR. moto lacks UpdateEndpoint (with its DeploymentConfig) and
drops ShadowProductionVariants: tests/moto_sagemaker.py adds them, test-only.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import tarfile
import threading
import time
from functools import partial
from pathlib import Path

import boto3
import httpx
import pytest

from bench.attribution import simulate
from deploy.client import RecommenderClient, RecommenderModelError
from monitoring import attribution
from sagemaker_local.runtime import Endpoint
from sagemaker_local.runtime import serve as serve_runtime
from tests.aws import ACCOUNT, BIN, REGION, cli_env, client, reset
from tests.container import docker, needs_engine, serving_container
from tests.server import PROJECT_ROOT, free_port

pytestmark = [
    pytest.mark.aws,
    pytest.mark.container,
    needs_engine,
]
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker-execution"
ENDPOINT = "vr-it"
REPOSITORY = "video-recommender"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


@pytest.fixture(autouse=True)
def fresh_aws_state(moto_url):
    reset(moto_url)


@pytest.fixture(scope="module")
def container(image):
    yield from serving_container(image, "vr-test-deploy-target")


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


# --- A/B variants, traffic, safe rollout, shadow, data capture -------------------------------------------------


def endpoint_config(aws) -> dict:
    sagemaker = aws("sagemaker")
    return sagemaker.describe_endpoint_config(
        EndpointConfigName=sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    )


def weights(aws) -> dict[str, float]:
    variants = aws("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
    return {variant["VariantName"]: variant["CurrentWeight"] for variant in variants}


def deploy_ab(aws_env, aws) -> None:
    current, candidate = pushed_image(aws, "v1"), pushed_image(aws, "v2")
    result = deploy(aws_env, current, "--candidate-image-uri", candidate, "--candidate-weight", "0.2")
    assert result.returncode == 0, result.stderr


def test_deploy_with_a_candidate_creates_two_weighted_variants_each_knowing_its_name(aws_env, aws):
    deploy_ab(aws_env, aws)
    variants = {variant["VariantName"]: variant for variant in endpoint_config(aws)["ProductionVariants"]}
    assert {name: variant["InitialVariantWeight"] for name, variant in variants.items()} == {
        "AllTraffic": 0.8,
        "Candidate": 0.2,
    }
    for name, variant in variants.items():
        model = aws("sagemaker").describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
        assert model["Environment"]["VR_VARIANT"] == name
        assert model["Image"].endswith(":v1" if name == "AllTraffic" else ":v2")


def test_traffic_shifts_weights_without_a_new_config(aws_env, aws):
    deploy_ab(aws_env, aws)
    config = aws("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    result = script("traffic.sh", "--endpoint-name", ENDPOINT, "--weights", "AllTraffic=0.5,Candidate=0.5", env=aws_env)
    assert result.returncode == 0, result.stderr
    assert weights(aws) == {"AllTraffic": 0.5, "Candidate": 0.5}
    assert aws("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == config


BAD_WEIGHTS = {
    "AllTraffic=0,Candidate=0": "weights must add up to a positive value",
    "AllTraffic=1,Candidate=-1": "weight of Candidate must not be negative",
    "AllTraffic=1,Nope=1": "variant 'Nope' is not on endpoint vr-it (it has AllTraffic, Candidate)",
    "AllTraffic=lots": "weight of AllTraffic must be a number",
}


def test_traffic_refuses_bad_weights_and_changes_nothing(aws_env, aws):
    deploy_ab(aws_env, aws)  # once for every refusal: a refusal changes nothing, which is what each checks
    before = weights(aws)
    for weights_argument, message in BAD_WEIGHTS.items():
        result = script("traffic.sh", "--endpoint-name", ENDPOINT, "--weights", weights_argument, env=aws_env)
        assert result.returncode != 0 and message in result.stderr, weights_argument
        assert weights(aws) == before, weights_argument


@pytest.mark.parametrize(("action", "served_image"), [("--promote", ":v2"), ("--rollback", ":v1")])
def test_promote_or_roll_back_leaves_one_variant_serving_the_chosen_model(aws_env, aws, action, served_image):
    deploy_ab(aws_env, aws)
    result = script("traffic.sh", "--endpoint-name", ENDPOINT, action, env=aws_env)
    assert result.returncode == 0, result.stderr
    (variant,) = endpoint_config(aws)["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic" and variant["InitialVariantWeight"] == 1.0
    assert (
        aws("sagemaker")
        .describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]["Image"]
        .endswith(served_image)
    )


def test_promote_needs_a_candidate(aws_env, aws):
    assert deploy(aws_env, pushed_image(aws)).returncode == 0
    result = script("traffic.sh", "--endpoint-name", ENDPOINT, "--promote", env=aws_env)
    assert result.returncode != 0 and "has no variant 'Candidate' to promote" in result.stderr


def test_deploy_creates_a_dashboard_per_variant_and_teardown_removes_it(aws_env, aws):
    deploy_ab(aws_env, aws)
    board = json.loads(aws("cloudwatch").get_dashboard(DashboardName=f"{ENDPOINT}-dashboard")["DashboardBody"])
    titles = [widget["properties"]["title"] for widget in board["widgets"]]
    assert titles == [
        "Invocations", "Model latency p50 / p99 (microseconds)", "4xx / 5xx",
        "Fallbacks and fold-ins by variant and model version", "Take rate (attribution)",
        "Watch minutes per 1,000 lists (attribution)",
    ]  # fmt: skip
    invocations = board["widgets"][0]["properties"]["metrics"]
    assert [line[5] for line in invocations] == ["AllTraffic", "Candidate"]
    expressions = [line[0]["expression"] for widget in board["widgets"][3:] for line in widget["properties"]["metrics"]]
    assert all(expression.startswith("SEARCH('{VideoRecommender,") for expression in expressions)
    assert script("teardown.sh", "--endpoint-name", ENDPOINT, "--yes", env=aws_env).returncode == 0
    assert aws("cloudwatch").list_dashboards()["DashboardEntries"] == []


def attribution_report(folder, candidate_lift: float, control: str = "AllTraffic") -> str:
    """A real attribution report over a simulated platform on which the candidate's take rate is `lift` × the
    control's (python -m monitoring.attribution, as an operator runs it)."""
    simulate(folder, lifts={control: 1.0, "Candidate": candidate_lift}, users=800, seed=5)
    status = attribution.main(
        ["--capture", str(folder / "capture"), "--events", str(folder / "events.parquet"), "--control", control,
         "--out", str(folder / "report"), "--replicates", "200"]
    )  # fmt: skip
    assert status in (0, 1, 2)
    return str(folder / "report" / "attribution.json")


@pytest.mark.parametrize(
    ("lift", "status", "served_images"), [(1.5, 0, [":v2"]), (0.5, 0, [":v1"]), (1.0, 2, [":v1", ":v2"])]
)
def test_promote_if_follows_the_report_and_publishes_its_figures(aws_env, aws, tmp_path, lift, status, served_images):
    deploy_ab(aws_env, aws)
    report = attribution_report(tmp_path, lift)
    result = script("traffic.sh", "--endpoint-name", ENDPOINT, "--promote", "--if", report, env=aws_env)
    assert result.returncode == status, result.stderr
    images = [
        aws("sagemaker").describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]["Image"][-3:]
        for variant in endpoint_config(aws)["ProductionVariants"]
    ]
    assert images == served_images
    figures = json.loads(Path(report).read_text())["variants"]
    for variant, measured in figures.items():
        dimensions = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "Variant", "Value": variant}]
        found = aws("cloudwatch").get_metric_statistics(
            Namespace="VideoRecommender", MetricName="TakeRate", Dimensions=dimensions, Statistics=["Average"],
            StartTime=time.time() - 3600, EndTime=time.time() + 60, Period=3600,
        )["Datapoints"]  # fmt: skip
        assert [point["Average"] for point in found] == [pytest.approx(measured["take_rate"]["value"])]


def test_promote_if_refuses_a_report_judged_against_another_variant(aws_env, aws, tmp_path):
    deploy_ab(aws_env, aws)
    report = attribution_report(tmp_path, 1.5, control="Blue")
    result = script("traffic.sh", "--endpoint-name", ENDPOINT, "--promote", "--if", report, env=aws_env)
    assert result.returncode == 1 and "it judges against 'Blue', but the endpoint's primary variant is" in result.stderr
    assert len(endpoint_config(aws)["ProductionVariants"]) == 2


def test_a_canary_rollout_creates_its_alarms_and_a_guarded_update(aws_env, aws):
    image_uri = pushed_image(aws)
    assert deploy(aws_env, image_uri).returncode == 0
    result = deploy(aws_env, image_uri, "--rollout", "canary", "--canary-percent", "5", "--bake-seconds", "120")
    assert result.returncode == 0, result.stderr
    alarms = {alarm["AlarmName"]: alarm for alarm in aws("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert {alarm["MetricName"] for alarm in alarms.values()} == {"Invocation5XXErrors", "ModelLatency"}
    assert all(alarm["Namespace"] == "AWS/SageMaker" for alarm in alarms.values())
    policy = aws("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["LastDeploymentConfig"]
    routing = policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 5},
        "WaitIntervalInSeconds": 120,
    }
    assert {alarm["AlarmName"] for alarm in policy["AutoRollbackConfiguration"]["Alarms"]} == set(alarms)
    assert script("teardown.sh", "--endpoint-name", ENDPOINT, "--yes", env=aws_env).returncode == 0
    assert aws("cloudwatch").describe_alarms()["MetricAlarms"] == []


def test_a_linear_rollout_shifts_in_steps(aws_env, aws):
    image_uri = pushed_image(aws)
    assert deploy(aws_env, image_uri).returncode == 0
    assert deploy(aws_env, image_uri, "--rollout", "linear", "--linear-percent", "25").returncode == 0
    routing = aws("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert routing["TrafficRoutingConfiguration"]["LinearStepSize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}


def test_a_shadow_variant_gets_its_own_model(aws_env, aws):
    result = deploy(aws_env, pushed_image(aws, "v1"), "--shadow-image-uri", pushed_image(aws, "v3"))
    assert result.returncode == 0, result.stderr
    (shadow,) = endpoint_config(aws)["ShadowProductionVariants"]
    assert shadow["VariantName"] == "Shadow"
    model = aws("sagemaker").describe_model(ModelName=shadow["ModelName"])["PrimaryContainer"]
    assert model["Image"].endswith(":v3") and model["Environment"]["VR_VARIANT"] == "Shadow"


def test_data_capture_records_requests_and_answers(aws_env, aws):
    result = deploy(
        aws_env, pushed_image(aws), "--data-capture", "s3://vr-models/capture/vr-it", "--capture-percent", "30"
    )
    assert result.returncode == 0, result.stderr
    capture = endpoint_config(aws)["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 30
    assert capture["DestinationS3Uri"] == "s3://vr-models/capture/vr-it"
    assert [option["CaptureMode"] for option in capture["CaptureOptions"]] == ["Input", "Output"]
    assert capture["CaptureContentTypeHeader"]["JsonContentTypes"] == ["application/json", "application/jsonlines"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--candidate-weight", "1.5"], "--candidate-weight must be between 0 and 1"),
        (["--rollout", "yolo"], "--rollout must be all-at-once, canary or linear"),
        (["--data-capture", "/tmp/capture"], "--data-capture must be an s3:// URI"),
        (["--capture-percent", "0"], "percentages are whole numbers from 1 to 100"),
    ],
)
def test_bad_rollout_options_are_refused_before_anything_is_created(aws_env, aws, args, message):
    result = deploy(aws_env, pushed_image(aws), *args)
    assert result.returncode != 0 and message in result.stderr
    assert aws("sagemaker").list_models()["Models"] == []


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


# --- the runtime side of A/B, and drift over captured traffic ---------------------------------------------------


@pytest.fixture(scope="module")
def candidate_container(image, model_dir):
    yield from serving_container(image, "vr-test-deploy-candidate", "-v", f"{model_dir}:/opt/ml/model:ro")


@pytest.fixture(scope="module")
def ab_runtime(container, candidate_container, tmp_path_factory):
    capture = tmp_path_factory.mktemp("capture")
    port = free_port()
    endpoint = Endpoint({"AllTraffic": container.url, "Candidate": candidate_container.url}, {"Candidate": 0.5})
    server = serve_runtime({ENDPOINT: endpoint}, port, capture_dir=capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}", capture
    server.shutdown()


def test_a_request_can_target_a_variant_and_learns_which_model_answered(aws_env, ab_runtime, model_dir):
    url, _ = ab_runtime
    env = {**aws_env, "VR_RUNTIME_ENDPOINT_URL": url}
    result = script("invoke.sh", "--endpoint-name", ENDPOINT, "--target-variant", "Candidate", env=env)
    assert result.returncode == 0, result.stderr
    assert f"answered by variant Candidate, model version {model_dir.name}" in result.stderr
    credentials = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    client = RecommenderClient(ENDPOINT, region_name=REGION, endpoint_url=url, session=credentials)
    answer = client.answer({"user_id": "u001", "k": 2}, target_variant="AllTraffic")
    assert answer.variant == "AllTraffic" and answer.model_version and answer.model_version != model_dir.name
    with pytest.raises(client._runtime.exceptions.ValidationError, match="Variant Nope not found"):
        client.answer({"user_id": "u001"}, target_variant="Nope")


def test_drift_report_over_captured_traffic_flags_unknown_users(ab_runtime, container, aws_env, tmp_path):
    url, capture = ab_runtime
    credentials = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    client = RecommenderClient(
        ENDPOINT, region_name=REGION, endpoint_url=url, session=credentials, target_variant="AllTraffic"
    )
    for n in range(30):
        client.recommend(f"u{n + 1:03d}" if n % 3 else f"stranger-{n}", k=5)
    client.recommend_many(["u001", "nobody"], k=3)
    client.recommend("fresh", k=4, history=["v005", "v006", "no-such-video"])
    baked = tmp_path / "baked-model"
    docker("cp", f"{container.name}:/opt/program/model", str(baked))
    run = subprocess.run(
        [str(BIN / "python"), "-m", "vrmodels.drift", "--capture", str(capture / ENDPOINT / "AllTraffic"),
         "--model", str(baked), "--out", str(tmp_path / "drift"), "--max-unknown-user-rate", "0.2"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env={**aws_env, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # 11 of 33 users unknown: above 0.2
    report = json.loads((tmp_path / "drift" / "drift.json").read_text())
    assert report["recommendation_requests"] >= 33 and report["exceeded"][0].startswith("unknown_user_rate 0.3")
    assert 0.3 < report["rates"]["fallback_share"] < 0.4
    assert report["rates"]["unknown_video_rate"] > 0
    assert report["history_length"]["live"]["max"] == 3
    assert (tmp_path / "drift" / "drift.png").read_bytes()[:4] == b"\x89PNG"


def test_drift_reads_capture_from_s3_and_passes_within_thresholds(
    ab_runtime, container, aws_env, aws, moto_url, tmp_path
):
    _, capture = ab_runtime
    s3 = aws("s3")
    s3.create_bucket(Bucket="vr-capture")
    for path in (capture / ENDPOINT).rglob("*.jsonl"):
        s3.upload_file(str(path), "vr-capture", f"capture/{path.relative_to(capture)}")
    baked = tmp_path / "baked-model"
    docker("cp", f"{container.name}:/opt/program/model", str(baked))
    run = subprocess.run(
        [str(BIN / "python"), "-m", "vrmodels.drift", "--capture", "s3://vr-capture/capture/", "--model", str(baked),
         "--out", str(tmp_path / "drift"), "--max-unknown-user-rate", "1", "--max-fallback-share", "1",
         "--max-unknown-video-rate", "1"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
        env={**aws_env, "AWS_ENDPOINT_URL": moto_url, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "drift" / "drift.json").read_text())["invocations"] > 0


def test_drift_refuses_a_file_that_is_not_sagemaker_capture_naming_file_and_line(model_dir, tmp_path):
    capture = tmp_path / "capture"
    capture.mkdir()
    (capture / "part.jsonl").write_text('{"captureData": {"endpointInput": {}}}\n')
    run = subprocess.run(
        [str(BIN / "python"), "-m", "vrmodels.drift", "--capture", str(capture), "--model", str(model_dir),
         "--out", str(tmp_path / "drift")],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 2
    assert "part.jsonl, line 1: not a SageMaker data capture record" in run.stderr
    assert not (tmp_path / "drift").exists()
