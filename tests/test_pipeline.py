"""The scheduled retrain: its definition (deploy/pipeline.py), its Lambda steps (deploy/pipeline_steps.py),
deploy/pipeline.sh against moto, and local runs of the whole loop in the real image (sagemaker_local.pipeline):
train, evaluate, gate, register on moto, roll out, and the new model answering through sagemaker_local.runtime.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
import threading
from functools import partial
from pathlib import Path

import boto3
import httpx
import pandas as pd
import pytest

from deploy import pipeline_steps
from deploy.pipeline import NO_TELEMETRY, definition
from deploy.rollout import MANAGED_BY
from sagemaker_local.pipeline import PipelineRunner
from sagemaker_local.runtime import serve as serve_runtime
from tests.aws import ACCOUNT, REGION, cli_env, client, reset
from tests.container import local_mode, needs_engine, run_server
from tests.server import PROJECT_ROOT, free_port
from vrmodels.training.registry import metric_definitions

pytestmark = pytest.mark.aws
BUCKET = "vr-pipeline"
PROJECT = "video-recommender"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/vr-pipeline"
STEPS_FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PROJECT}-pipeline-steps"
GUARDRAILS = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "WaitIntervalInSeconds": 300,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        },
        "TerminationWaitInSeconds": 300,
        "MaximumExecutionTimeoutInSeconds": 3600,
    },
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"{PROJECT}-AllTraffic-invocation-5xx"}]},
}


@pytest.fixture
def aws(moto_url):
    """Clients of a moto emptied for each test."""
    reset(moto_url)
    return partial(client, moto_url)


@pytest.fixture
def session(moto_url, monkeypatch) -> boto3.Session:
    """What the Lambda runtime gives the steps function: a default session (here aimed at moto)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    return boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def the_definition(**overrides: str) -> dict:
    settings = {"image_uri": "vr:1", "role_arn": ROLE, "bucket": BUCKET, "steps_function_arn": STEPS_FUNCTION}
    return definition(**settings | overrides)


def by_name(steps: list[dict]) -> dict[str, dict]:
    found = {}
    for step in steps:
        found[step["Name"]] = step
        arguments = step.get("Arguments", {})
        if step["Type"] == "Condition":
            found |= by_name(arguments["IfSteps"] + arguments["ElseSteps"])
    return found


# --- the definition ------------------------------------------------------------------------------------------


def test_the_definition_trains_evaluates_gates_registers_and_rolls_out_only_when_approved():
    document = the_definition()
    assert [step["Name"] for step in document["Steps"]] == ["Train", "Evaluate", "ApprovedModel", "Gate"]
    steps = by_name(document["Steps"])
    train = steps["Train"]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == "vr:1"
    assert train["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()
    channels = {
        channel["ChannelName"]: channel["DataSource"]["S3DataSource"]["S3Uri"] for channel in train["InputDataConfig"]
    }
    assert channels == {"training": {"Get": "Parameters.EventsUri"}, "videos": {"Get": "Parameters.VideosUri"}}
    evaluate = steps["Evaluate"]["Arguments"]
    assert evaluate["AppSpecification"]["ContainerEntrypoint"] == ["python", "-m", "vrmodels.training.registry"]
    assert evaluate["ProcessingInputs"][0]["S3Input"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    gate = steps["Gate"]["Arguments"]
    assert [condition["Type"] for condition in gate["Conditions"]] == ["GreaterThanOrEqualTo"] * 2
    lefts = {json.dumps(condition["LeftValue"]) for condition in gate["Conditions"]}
    assert len(lefts) == 1 and "figures.ndcg_home" in lefts.pop()
    rights = [json.dumps(condition["RightValue"]) for condition in gate["Conditions"]]
    assert "figures.best_baseline_ndcg_home" in rights[0]
    assert rights[1] == json.dumps({"Get": "Steps.ApprovedModel.OutputParameters['floor_ndcg_home']"})
    assert [step["Name"] for step in gate["IfSteps"]] == ["Register-RegisterModel", "AutoApproved"]
    assert [step["Name"] for step in gate["ElseSteps"]] == ["Refused"]
    register = steps["Register-RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == PROJECT
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert register["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == train_artifacts()
    auto = steps["AutoApproved"]["Arguments"]
    assert auto["Conditions"] == [
        {"Type": "Equals", "LeftValue": {"Get": "Parameters.ModelApprovalStatus"}, "RightValue": "Approved"}
    ]
    assert [step["Name"] for step in auto["IfSteps"]] == ["Rollout"] and auto["ElseSteps"] == []
    parameters = {item["Name"]: item["DefaultValue"] for item in document["Parameters"]}
    assert parameters["ModelApprovalStatus"] == "PendingManualApproval"
    assert parameters["EventsUri"] == f"s3://{BUCKET}/data/{PROJECT}/events/"


def train_artifacts() -> dict:
    return {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}


# --- the steps function against moto ----------------------------------------------------------------------------


def approved_package(aws, *, ndcg: float | None, status: str = "Approved", group: str = PROJECT) -> str:
    """A package as register.sh or the pipeline leaves it: its evaluation report in S3 as its ModelMetrics."""
    sagemaker, s3 = aws("sagemaker"), aws("s3")
    if group not in [
        item["ModelPackageGroupName"] for item in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    ]:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
        s3.create_bucket(Bucket=BUCKET)
    request = {
        "ModelPackageGroupName": group,
        "InferenceSpecification": {
            "Containers": [{"Image": "vr:1", "ModelDataUrl": f"s3://{BUCKET}/models/{PROJECT}/m/model.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        "ModelApprovalStatus": status,
    }
    if ndcg is not None:
        key = f"models/{PROJECT}/reports/{ndcg}/evaluation.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"figures": {"ndcg_home": ndcg}}))
        uri = f"s3://{BUCKET}/{key}"
        request["ModelMetrics"] = {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": uri}}}
    return sagemaker.create_model_package(**request)["ModelPackageArn"]


def test_before_any_approved_model_the_floor_is_zero(aws, session):
    aws("sagemaker").create_model_package_group(ModelPackageGroupName=PROJECT)
    answer = pipeline_steps.handler({"action": "approved_model", "group": PROJECT, "tolerance": 0.02}, session=session)
    assert answer == {"approved_package_arn": "", "approved_ndcg_home": 0.0, "floor_ndcg_home": 0.0}


def test_the_floor_is_the_newest_approved_model_s_ndcg_less_the_tolerance(aws, session):
    approved_package(aws, ndcg=0.10)
    newest = approved_package(aws, ndcg=0.20)
    approved_package(aws, ndcg=0.90, status="PendingManualApproval")  # not approved: does not count
    answer = pipeline_steps.handler(
        {"action": "approved_model", "group": PROJECT, "tolerance": "0.05"}, session=session
    )
    assert answer["approved_package_arn"] == newest
    assert answer["approved_ndcg_home"] == 0.20
    assert answer["floor_ndcg_home"] == pytest.approx(0.19)


def test_an_approved_package_without_an_evaluation_report_stops_the_step(aws, session):
    arn = approved_package(aws, ndcg=None)
    with pytest.raises(pipeline_steps.StepError, match=f"{arn} has no evaluation report"):
        pipeline_steps.handler({"action": "approved_model", "group": PROJECT, "tolerance": 0}, session=session)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"action": "approved_model", "group": PROJECT, "tolerance": 1.5}, r"tolerance must be in \[0, 1\)"),
        ({"action": "deploy"}, "unknown action 'deploy'"),
    ],
)
def test_the_steps_function_refuses_what_it_cannot_do(session, event, message):
    with pytest.raises(pipeline_steps.StepError, match=message):
        pipeline_steps.handler(event, session=session)


def guarded_endpoint(
    aws, *, guardrails: dict | None = GUARDRAILS, variants: tuple[str, ...] = ("AllTraffic",), ours: bool = True
):
    """An endpoint as deploy.sh leaves it after a `--rollout canary` redeploy: tagged as ours, its model's
    environment and role, and the blue/green guardrails it was last updated with."""
    sagemaker = aws("sagemaker")
    tags = [{"Key": "project", "Value": PROJECT}, MANAGED_BY] if ours else []
    sagemaker.create_model(
        ModelName=f"{PROJECT}-m-old",
        PrimaryContainer={
            "Image": "vr:0",
            "ModelDataUrl": f"s3://{BUCKET}/old/model.tar.gz",
            "Environment": {"VR_LOG_LEVEL": "WARNING"},
        },
        ExecutionRoleArn=ROLE,
        Tags=tags,
    )
    for name in ("c-first", "c-old"):
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{PROJECT}-{name}",
            ProductionVariants=[
                {
                    "VariantName": variant,
                    "ModelName": f"{PROJECT}-m-old",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "InitialVariantWeight": 1.0,
                }
                for variant in variants
            ],
            Tags=tags,
        )
    sagemaker.create_endpoint(EndpointName=PROJECT, EndpointConfigName=f"{PROJECT}-c-first", Tags=tags)
    update = {"DeploymentConfig": guardrails} if guardrails else {}
    sagemaker.update_endpoint(EndpointName=PROJECT, EndpointConfigName=f"{PROJECT}-c-old", **update)


def test_rollout_moves_the_only_variant_to_the_package_through_the_endpoint_s_guardrails(aws, session):
    guarded_endpoint(aws)
    package = approved_package(aws, ndcg=0.2)
    answer = pipeline_steps.handler({"action": "rollout", "package_arn": package, "endpoint": PROJECT}, session=session)
    sagemaker = aws("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=PROJECT)
    assert endpoint["EndpointConfigName"] == answer["endpoint_config"]
    assert endpoint["LastDeploymentConfig"] == GUARDRAILS
    (variant,) = sagemaker.describe_endpoint_config(EndpointConfigName=answer["endpoint_config"])["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic" and variant["ModelName"] == answer["model"]
    model = sagemaker.describe_model(ModelName=answer["model"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{BUCKET}/models/{PROJECT}/m/model.tar.gz"
    assert model["PrimaryContainer"]["Environment"] == {"VR_LOG_LEVEL": "WARNING"}
    assert model["ExecutionRoleArn"] == ROLE


@pytest.mark.parametrize(
    ("endpoint", "status", "message"),
    [
        ({"guardrails": None}, "Approved", "no blue/green guardrails"),
        ({"ours": False}, "Approved", "not created by deploy.sh"),
        ({"variants": ("AllTraffic", "Candidate")}, "Approved", "settle the A/B test first"),
        ({}, "PendingManualApproval", "only Approved ones roll out"),
    ],
)
def test_rollout_refuses_and_leaves_the_endpoint_as_it_was(aws, session, endpoint, status, message):
    guarded_endpoint(aws, **endpoint)
    package = approved_package(aws, ndcg=0.2, status=status)
    with pytest.raises(pipeline_steps.StepError, match=message):
        pipeline_steps.handler({"action": "rollout", "package_arn": package, "endpoint": PROJECT}, session=session)
    assert aws("sagemaker").describe_endpoint(EndpointName=PROJECT)["EndpointConfigName"] == f"{PROJECT}-c-old"


# --- deploy/pipeline.sh against moto ------------------------------------------------------------------------------


@pytest.fixture
def aws_env(moto_url, tmp_path):
    return cli_env(moto_url, tmp_path)


def pipeline_sh(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(PROJECT_ROOT / "deploy" / "pipeline.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def roles(aws) -> dict[str, str]:
    iam = aws("iam")
    trust = {"pipeline": "sagemaker", "steps": "lambda", "scheduler": "scheduler"}
    return {
        name: iam.create_role(
            RoleName=f"vr-{name}",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": f"{service}.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ]
                }
            ),
        )["Role"]["Arn"]
        for name, service in trust.items()
    }


def create_args(arns: dict[str, str], *extra: str) -> list[str]:
    return [
        "--image-uri",
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{PROJECT}:v1",
        "--role-arn",
        arns["pipeline"],
        "--lambda-role-arn",
        arns["steps"],
        "--scheduler-role-arn",
        arns["scheduler"],
        "--bucket",
        BUCKET,
        *extra,
    ]


def test_pipeline_sh_creates_updates_describes_and_removes_the_pipeline_and_its_schedule(aws, aws_env):
    arns = roles(aws)
    created = pipeline_sh(*create_args(arns, "--schedule", "cron(0 3 ? * SUN *)"), env=aws_env)
    assert created.returncode == 0, created.stderr
    pipeline_arn = created.stdout.strip()
    sagemaker = aws("sagemaker")
    described = sagemaker.describe_pipeline(PipelineName=f"{PROJECT}-retrain")
    assert described["PipelineArn"] == pipeline_arn and described["RoleArn"] == arns["pipeline"]
    steps = by_name(json.loads(described["PipelineDefinition"])["Steps"])
    assert steps["ApprovedModel"]["FunctionArn"].endswith(f":function:{PROJECT}-pipeline-steps")
    function = aws("lambda").get_function(FunctionName=f"{PROJECT}-pipeline-steps")["Configuration"]
    assert function["Handler"] == "deploy.pipeline_steps.handler" and function["Role"] == arns["steps"]
    assert sagemaker.describe_model_package_group(ModelPackageGroupName=PROJECT)["ModelPackageGroupName"] == PROJECT
    schedule = aws("scheduler").get_schedule(Name=f"{PROJECT}-retrain")
    assert schedule["ScheduleExpression"] == "cron(0 3 ? * SUN *)"
    target = schedule["Target"]
    assert target["Arn"] == pipeline_arn and target["RoleArn"] == arns["scheduler"]
    assert target["SageMakerPipelineParameters"]["PipelineParameterList"] == [
        {"Name": "ModelApprovalStatus", "Value": "PendingManualApproval"},
        {"Name": "Tolerance", "Value": "0.02"},
    ]

    updated = pipeline_sh(
        *create_args(arns, "--auto-approve", "--tolerance", "0.05"),
        "--image-uri",
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{PROJECT}:v2",
        env=aws_env,
    )
    assert updated.returncode == 0, updated.stderr
    assert "updated pipeline" in updated.stderr and "updated function" in updated.stderr
    again = json.loads(sagemaker.describe_pipeline(PipelineName=f"{PROJECT}-retrain")["PipelineDefinition"])
    assert by_name(again["Steps"])["Train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"].endswith(":v2")
    schedule = aws("scheduler").get_schedule(Name=f"{PROJECT}-retrain")
    assert schedule["ScheduleExpression"] == "rate(7 days)"
    assert schedule["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"] == [
        {"Name": "ModelApprovalStatus", "Value": "Approved"},
        {"Name": "Tolerance", "Value": "0.05"},
    ]

    for _ in range(2):  # the second removal finds nothing and still succeeds
        removed = pipeline_sh("--delete", env=aws_env)
        assert removed.returncode == 0, removed.stderr
    assert "deleted pipeline" not in removed.stderr and "nothing of" in removed.stderr
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []
    assert aws("scheduler").list_schedules()["Schedules"] == []
    assert aws("lambda").list_functions()["Functions"] == []


def test_pipeline_sh_refuses_to_take_over_a_pipeline_it_did_not_create(aws, aws_env):
    arns = roles(aws)
    foreign = {"Version": "2020-12-01", "Steps": []}
    aws("sagemaker").create_pipeline(
        PipelineName=f"{PROJECT}-retrain", PipelineDefinition=json.dumps(foreign), RoleArn=arns["pipeline"]
    )
    result = pipeline_sh(*create_args(arns), env=aws_env)
    assert result.returncode == 1 and "was not created by these scripts" in result.stderr
    assert aws("lambda").list_functions()["Functions"] == []  # refused before anything was made


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--schedule", "every week"], "--schedule must be rate(...), cron(...) or none"),
        (["--tolerance", "1.5"], r"--tolerance must be in \[0, 1\)"),
        (["--role-arn", "vr-pipeline"], "--role-arn 'vr-pipeline' is not an IAM role ARN"),
    ],
)
def test_pipeline_sh_refuses_bad_options_before_any_call(aws_env, change, message):
    arns = {"pipeline": ROLE, "steps": ROLE, "scheduler": ROLE}
    result = pipeline_sh(*create_args(arns, *change), env=aws_env)
    assert result.returncode == 1
    assert message.replace("\\", "") in result.stderr or pytest.fail(result.stderr)


def test_the_pipeline_policies_name_our_resources_only(aws, tmp_path):
    values = [
        f"REGION={REGION}",
        f"ACCOUNT_ID={ACCOUNT}",
        f"PROJECT={PROJECT}",
        f"MODEL_BUCKET={BUCKET}",
        f"REPOSITORY={PROJECT}",
        "PIPELINE_ROLE_NAME=vr-pipeline",
        "EXECUTION_ROLE_NAME=vr-execution",
        f"ENDPOINT_NAME_LOWER={PROJECT}",
    ]
    for name in (
        "pipeline-role-policy",
        "pipeline-steps-policy",
        "pipeline-steps-trust",
        "scheduler-policy",
        "scheduler-trust",
    ):
        rendered = tmp_path / f"{name}.json"
        subprocess.run(
            [
                "python3",
                str(PROJECT_ROOT / "deploy" / "render_config.py"),
                str(PROJECT_ROOT / "deploy" / "iam" / f"{name}.json"),
                str(rendered),
                *values,
            ],
            check=True,
        )
        statements = json.loads(rendered.read_text())["Statement"]
        assert [statement["Sid"] for statement in statements if statement.get("Resource") == "*"] in (
            [],
            ["EcrLoginHasNoResource"],  # ecr:GetAuthorizationToken takes no resource
        )
        if name.endswith("policy"):
            aws("iam").create_policy(PolicyName=name, PolicyDocument=rendered.read_text())
    scheduler = json.loads((tmp_path / "scheduler-policy.json").read_text())["Statement"][0]
    assert scheduler["Resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PROJECT}-retrain"


# --- the loop, run locally in the real image ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_session(moto_url, tmp_path_factory):
    """The SDK's local mode (docker-compose, the real image), its S3 on moto; no telemetry."""
    from sagemaker.local import LocalSession

    root = tmp_path_factory.mktemp("pipeline-root")
    with local_mode(root, AWS_ENDPOINT_URL=moto_url):
        local = LocalSession(
            boto_session=boto3.Session(region_name=REGION), s3_endpoint_url=moto_url, sagemaker_config=NO_TELEMETRY
        )
        local.config = {"local": {"container_root": str(root)}}
        yield local


def upload_platform(aws, events: pd.DataFrame) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket=BUCKET)
    body = io.BytesIO()
    with gzip.GzipFile(fileobj=body, mode="wb") as compressed:
        compressed.write(events.to_csv(index=False).encode())
    s3.put_object(Bucket=BUCKET, Key=f"data/{PROJECT}/events/events.csv.gz", Body=body.getvalue())
    s3.upload_file(
        str(PROJECT_ROOT / "data" / "sample" / "videos.csv.gz"), BUCKET, f"data/{PROJECT}/videos/videos.csv.gz"
    )


def runner(aws, local_session, session) -> PipelineRunner:
    handler = partial(pipeline_steps.handler, session=session)
    return PipelineRunner(
        local_session=local_session, sagemaker=aws("sagemaker"), s3=aws("s3"), lambdas={STEPS_FUNCTION: handler}
    )


def serve_rolled_out(aws, image: str, tmp_path: Path):
    """What SageMaker does after the rollout: the endpoint's model data unpacked into /opt/ml/model of a container
    of the image, reached through the runtime API (sagemaker_local.runtime)."""
    sagemaker = aws("sagemaker")
    config = sagemaker.describe_endpoint_config(
        EndpointConfigName=sagemaker.describe_endpoint(EndpointName=PROJECT)["EndpointConfigName"]
    )
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    bucket, _, key = model["PrimaryContainer"]["ModelDataUrl"].removeprefix("s3://").partition("/")
    model_dir = tmp_path / "opt-ml-model"
    model_dir.mkdir()
    with tarfile.open(fileobj=io.BytesIO(aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read())) as archive:
        archive.extractall(model_dir, filter="data")
    model_dir.chmod(0o755)
    container = run_server(image, "vr-test-pipeline-rollout", "serve", options=("-v", f"{model_dir}:/opt/ml/model:ro"))
    container.wait_ready()
    port = free_port()
    server = serve_runtime({PROJECT: container.url}, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return container, server, f"http://127.0.0.1:{port}"


AFTER_EVALUATE = ("ApprovedModel", "Gate", "Refused", "Register-RegisterModel", "AutoApproved", "Rollout")


@pytest.mark.container
@needs_engine
def test_a_local_run_rolls_out_a_model_that_answers_and_its_rerun_gate_refuses_it_below_a_better_approved_one(
    aws, image, local_session, session, tmp_path
):
    """A run trains, evaluates, registers Approved and rolls out; the rolled-out model answers. Then a better model
    is approved (0.5 at home, on last week's data say) and the run's gate is run again (a selective execution:
    its training and evaluation reused): below the floor of 0.49, nothing is registered or rolled out."""
    events = pd.read_csv(PROJECT_ROOT / "data" / "sample" / "events.csv.gz")
    upload_platform(aws, events)
    aws("sagemaker").create_model_package_group(ModelPackageGroupName=PROJECT)
    guarded_endpoint(aws)
    pipeline = runner(aws, local_session, session)
    execution = pipeline.run(the_definition(image_uri=image), {"ModelApprovalStatus": "Approved"})

    assert execution.status == "Succeeded", execution.failure
    assert execution.succeeded() == ["Train", "Evaluate", *AFTER_EVALUATE[:2], *AFTER_EVALUATE[3:]]
    assert execution.steps["Refused"].status == "NotRun"
    sagemaker, s3 = aws("sagemaker"), aws("s3")
    (summary,) = sagemaker.list_model_packages(ModelPackageGroupName=PROJECT)["ModelPackageSummaryList"]
    package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "Approved"
    report_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, _, key = report_uri.removeprefix("s3://").partition("/")
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert 0 < report["figures"]["ndcg_home"] < 0.49
    assert report["figures"]["ndcg_home"] >= report["figures"]["best_baseline_ndcg_home"]
    assert float(package["CustomerMetadataProperties"]["ndcg_home"]) == pytest.approx(report["figures"]["ndcg_home"])
    model_data = execution.steps["Train"].properties["ModelArtifacts"]["S3ModelArtifacts"]
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == model_data
    assert sagemaker.describe_endpoint(EndpointName=PROJECT)["LastDeploymentConfig"] == GUARDRAILS

    container, server, runtime_url = serve_rolled_out(aws, image, tmp_path)
    try:
        runtime = boto3.client(
            "sagemaker-runtime",
            endpoint_url=runtime_url,
            region_name=REGION,
            aws_access_key_id="t",
            aws_secret_access_key="t",
        )
        user = events["user_id"].iloc[0]
        answer = json.loads(
            runtime.invoke_endpoint(
                EndpointName=PROJECT, ContentType="application/json", Body=json.dumps({"user_id": user, "k": 3})
            )["Body"].read()
        )
        assert answer["userId"] == user and len(answer["recommendations"]) == 3
        assert httpx.get(f"{container.url}/info").json()["model"]["modelVersion"] == report["model_version"]
    finally:
        server.shutdown()
        container.remove()

    rolled_out = sagemaker.describe_endpoint(EndpointName=PROJECT)["EndpointConfigName"]
    better = approved_package(aws, ndcg=0.5)
    again = pipeline.run(
        the_definition(image_uri=image),
        {"ModelApprovalStatus": "Approved"},
        selected=AFTER_EVALUATE,
        reference=execution,
    )
    assert again.status == "Failed"
    assert [again.steps[name].status for name in ("Train", "Evaluate")] == ["Reused", "Reused"]
    assert again.succeeded() == ["ApprovedModel", "Gate"]
    assert again.failure.startswith("Refused: the new model's NDCG@10 at home, ")
    assert "the approved model's floor (0.49)" in again.failure
    for step in ("Register-RegisterModel", "AutoApproved", "Rollout"):
        assert again.steps[step].status == "NotRun"
    packages = sagemaker.list_model_packages(ModelPackageGroupName=PROJECT)["ModelPackageSummaryList"]
    assert sorted(item["ModelPackageArn"] for item in packages) == sorted([summary["ModelPackageArn"], better])
    assert sagemaker.describe_endpoint(EndpointName=PROJECT)["EndpointConfigName"] == rolled_out


# --- the pieces: the successor endpoint config, the local runner's rules --------------------------------------------


def test_the_successor_config_keeps_one_variant_its_settings_and_data_capture(tmp_path):
    config = {
        "EndpointConfigName": "vr-c-1",
        "ProductionVariants": [
            {"VariantName": "AllTraffic", "ModelName": "vr-m-1", "InstanceType": "ml.m5.large", "CurrentWeight": 0.9},
            {"VariantName": "Candidate", "ModelName": "vr-m-2", "InstanceType": "ml.m5.large", "CurrentWeight": 0.1},
        ],
        "DataCaptureConfig": {"EnableCapture": True, "DestinationS3Uri": "s3://b/capture"},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    command = [
        "python3",
        "-m",
        "deploy.rollout",
        str(path),
        "--keep",
        "AllTraffic",
        "--name",
        "vr-c-2",
        "--project",
        "vr",
    ]
    promoted = subprocess.run([*command, "--model-from", "Candidate"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    successor = json.loads(promoted.stdout)
    assert successor["EndpointConfigName"] == "vr-c-2"
    assert successor["ProductionVariants"] == [
        {"VariantName": "AllTraffic", "ModelName": "vr-m-2", "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}
    ]
    assert successor["DataCaptureConfig"] == config["DataCaptureConfig"]
    assert MANAGED_BY in successor["Tags"]
    unknown = subprocess.run([*command, "--model-from", "Shadow"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert unknown.returncode == 1 and "has no variant 'Shadow' (it has AllTraffic, Candidate)" in unknown.stderr


def lambda_definition(*steps: dict) -> dict:
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Floor", "Type": "Float", "DefaultValue": 0.5}],
        "Steps": list(steps),
    }


def ask(name: str, **extra) -> dict:
    return {
        "Name": name,
        "Type": "Lambda",
        "FunctionArn": "arn:f",
        "Arguments": extra,
        "OutputParameters": [{"OutputName": "score", "OutputType": "Float"}],
    }


def gate(left: dict, *, kind: str = "GreaterThanOrEqualTo") -> dict:
    refused = {
        "Name": "Refused",
        "Type": "Fail",
        "Arguments": {"ErrorMessage": {"Std:Join": {"On": " ", "Values": ["score", left]}}},
    }
    return {
        "Name": "Gate",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [{"Type": kind, "LeftValue": left, "RightValue": {"Get": "Parameters.Floor"}}],
            "IfSteps": [ask("After", seen={"Get": "Steps.Ask.OutputParameters['score']"})],
            "ElseSteps": [refused],
        },
    }


def local_runner(handler) -> PipelineRunner:
    class NoLocalMode:
        sagemaker_client = None

    return PipelineRunner(local_session=NoLocalMode(), sagemaker=None, s3=None, lambdas={"arn:f": handler})


def test_the_local_runner_takes_the_branch_the_condition_chooses():
    score = {"Get": "Steps.Ask.OutputParameters['score']"}
    passed = local_runner(lambda event: {"score": 0.7}).run(lambda_definition(ask("Ask"), gate(score)))
    assert passed.status == "Succeeded" and passed.succeeded() == ["Ask", "Gate", "After"]
    assert passed.steps["Refused"].status == "NotRun"
    refused = local_runner(lambda event: {"score": 0.7}).run(lambda_definition(ask("Ask"), gate(score)), {"Floor": 0.8})
    assert refused.status == "Failed" and refused.failure == "Refused: score 0.7"
    assert refused.steps["After"].status == "NotRun"


def test_a_selective_run_reuses_what_its_steps_need_and_runs_nothing_else():
    score = {"Get": "Steps.Ask.OutputParameters['score']"}
    calls = []
    runner = local_runner(lambda event: calls.append(event) or {"score": 0.7})
    first = runner.run(lambda_definition(ask("Ask"), gate(score)))
    assert first.status == "Succeeded" and len(calls) == 2  # Ask, then After

    refused = runner.run(
        lambda_definition(ask("Ask"), gate(score)), {"Floor": 0.8}, selected=["Gate", "Refused", "After"],
        reference=first,
    )  # fmt: skip
    assert refused.failure == "Refused: score 0.7" and refused.steps["Ask"].status == "Reused"
    assert refused.steps["After"].status == "NotRun" and len(calls) == 2  # nothing called again
    after = runner.run(lambda_definition(ask("Ask"), gate(score)), selected=["After"], reference=first)
    assert after.succeeded() == ["After"] and calls[-1] == {"seen": 0.7}
    assert after.steps["Gate"].status == "Reused"  # its branch holds After: its outcome is the reference's
    with pytest.raises(ValueError, match="no step Nope"):
        runner.run(lambda_definition(ask("Ask")), selected=["Nope"], reference=first)
    with pytest.raises(ValueError, match="need Ask, which the reference execution did not complete"):
        runner.run(lambda_definition(ask("Ask"), gate(score)), selected=["Gate"])


def test_the_local_runner_names_what_it_cannot_run():
    score = {"Get": "Steps.Ask.OutputParameters['score']"}
    with pytest.raises(ValueError, match="no parameter Ceiling"):
        local_runner(lambda event: {}).run(lambda_definition(), {"Ceiling": 1})
    failing = local_runner(lambda event: 1 / 0).run(lambda_definition(ask("Ask")))
    assert failing.failure == "Ask: ZeroDivisionError: division by zero"
    unhandled = local_runner(lambda event: {}).run(lambda_definition({**ask("Ask"), "FunctionArn": "arn:other"}))
    assert unhandled.failure == "Ask: no local handler for Lambda function arn:other"
    odd = local_runner(lambda event: {"score": 1}).run(lambda_definition(ask("Ask"), gate(score, kind="In")))
    assert odd.failure == "Gate: condition In is not evaluated locally"
    emr = local_runner(lambda event: {}).run(lambda_definition({"Name": "Spark", "Type": "EMR", "Arguments": {}}))
    assert emr.failure == "Spark: step type EMR is not run locally"
