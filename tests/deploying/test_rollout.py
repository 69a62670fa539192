"""Changing what an endpoint serves: A/B variants and their traffic, promote and roll back (by hand or by an
attribution report), canary and linear rollouts with alarms, shadow variants, data capture; and on the runtime side,
a request targeting a variant and the drift report over captured traffic.

moto lacks UpdateEndpoint (with its DeploymentConfig) and drops ShadowProductionVariants: tests/moto_sagemaker.py
adds them, test-only.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest

from bench.attribution import simulate
from deploy.client import RecommenderClient
from monitoring import attribution
from sagemaker_local.runtime import Endpoint
from sagemaker_local.runtime import serve as serve_runtime
from tests.aws import BIN, REGION
from tests.container import docker, needs_engine, serving_container
from tests.deploying.scripts import ENDPOINT, deploy, endpoint_config, pushed_image, script
from tests.server import PROJECT_ROOT, free_port

pytestmark = [pytest.mark.aws, pytest.mark.container, needs_engine]


# --- A/B variants, traffic, safe rollout, shadow, data capture -------------------------------------------------


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
