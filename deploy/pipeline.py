"""The scheduled retrain as a SageMaker Pipeline (the `sagemaker` SDK's workflow module), printed as its JSON
definition for `aws sagemaker create-pipeline` / `update-pipeline` (deploy/pipeline.sh runs both).

    python -m deploy.pipeline --image-uri URI --role-arn ARN --bucket BUCKET --steps-function-arn ARN \\
        [--project P] [--group G] [--endpoint-name E] [--region R] --out definition.json

Steps, in the order they run:
  Train          the image's `train` on the events and catalogue under S3 (parameters EventsUri, VideosUri);
                 its NDCG figures are training metrics (vrmodels.training.registry's MetricDefinitions)
  Evaluate       the image reads the trained model.tar.gz and writes its evaluation report (evaluation.json)
  ApprovedModel  Lambda (deploy/pipeline_steps.py): the newest Approved package's NDCG@10 at home and the floor
                 (1 - Tolerance) × it
  Gate           the new model's NDCG@10 at home ≥ its best baseline's and ≥ the floor; else Refused fails
                 the execution with both figures
  Register       a package in the group, its report as ModelMetrics, approval ModelApprovalStatus
  AutoApproved   when ModelApprovalStatus is Approved: Rollout (Lambda) moves the endpoint to the package
                 through its blue/green canary with automatic rollback

Built offline: no AWS call is made to print the definition.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

from vrmodels.training.registry import REPORT_NAME, metric_definitions

if TYPE_CHECKING:
    from sagemaker.workflow.pipeline import Pipeline

DEFAULT_PROJECT = "video-recommender"
DEFAULT_TOLERANCE = 0.02
DEFAULT_TRAINING_INSTANCE = "ml.m5.xlarge"
EVALUATION_INSTANCE = "ml.t3.medium"
SERVING_CONTENT_TYPES = ["application/json", "application/jsonlines"]
ARCHIVE_DIR = "/opt/ml/processing/model"
REPORT_DIR = "/opt/ml/processing/evaluation"
# The SDK would report each call to an AWS telemetry endpoint; printing a definition must not reach anywhere.
NO_TELEMETRY = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def pipeline_name(project: str) -> str:
    return f"{project}-retrain"


def build(
    *,
    image_uri: str,
    role_arn: str,
    bucket: str,
    steps_function_arn: str,
    project: str = DEFAULT_PROJECT,
    group: str | None = None,
    endpoint_name: str | None = None,
    region: str = "us-east-1",
) -> Pipeline:
    # Imported here: importing the SDK prints its configuration search to stdout, which a definition must not
    # interleave with, and takes seconds nothing else of deploy needs.
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.lambda_helper import Lambda
    from sagemaker.model import Model
    from sagemaker.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals, ConditionGreaterThanOrEqualTo
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.steps import ProcessingStep, TrainingStep

    group = group or project
    endpoint_name = endpoint_name or project
    boto_session = boto3.Session(region_name=region)
    session = PipelineSession(boto_session=boto_session, default_bucket=bucket, sagemaker_config=NO_TELEMETRY)
    session._default_bucket = bucket  # the SDK would otherwise look the bucket up in S3 (a call to AWS)
    prefix = f"s3://{bucket}/models/{project}/pipeline"

    events = ParameterString("EventsUri", default_value=f"s3://{bucket}/data/{project}/events/")
    videos = ParameterString("VideosUri", default_value=f"s3://{bucket}/data/{project}/videos/")
    approval = ParameterString("ModelApprovalStatus", default_value="PendingManualApproval")
    tolerance = ParameterFloat("Tolerance", default_value=DEFAULT_TOLERANCE)
    instance = ParameterString("TrainingInstanceType", default_value=DEFAULT_TRAINING_INSTANCE)

    estimator = Estimator(
        image_uri=image_uri,
        role=role_arn,
        instance_count=1,
        instance_type=instance,
        output_path=prefix,
        metric_definitions=metric_definitions(),
        disable_profiler=True,
        sagemaker_session=session,
    )
    train = TrainingStep(
        "Train",
        step_args=estimator.fit({"training": TrainingInput(events), "videos": TrainingInput(videos)}),
    )
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts

    report = PropertyFile(name="evaluation", output_name="evaluation", path=REPORT_NAME)
    evaluator = Processor(
        role=role_arn,
        image_uri=image_uri,
        instance_count=1,
        instance_type=EVALUATION_INSTANCE,
        entrypoint=["python", "-m", "vrmodels.training.registry"],
        sagemaker_session=session,
    )
    evaluate = ProcessingStep(
        "Evaluate",
        step_args=evaluator.run(
            inputs=[ProcessingInput(source=model_data, destination=ARCHIVE_DIR, input_name="model")],
            outputs=[ProcessingOutput(output_name="evaluation", source=REPORT_DIR)],
            arguments=[f"{ARCHIVE_DIR}/model.tar.gz", "--out", REPORT_DIR],
        ),
        property_files=[report],
    )

    def figure(name: str) -> JsonGet:
        return JsonGet(step_name=evaluate.name, property_file=report, json_path=f"figures.{name}")

    steps_function = Lambda(function_arn=steps_function_arn, session=session)
    approved = LambdaStep(
        "ApprovedModel",
        lambda_func=steps_function,
        inputs={"action": "approved_model", "group": group, "tolerance": tolerance},
        outputs=[
            LambdaOutput("approved_package_arn", LambdaOutputTypeEnum.String),
            LambdaOutput("approved_ndcg_home", LambdaOutputTypeEnum.Float),
            LambdaOutput("floor_ndcg_home", LambdaOutputTypeEnum.Float),
        ],
    )
    floor = approved.properties.Outputs["floor_ndcg_home"]

    package = Model(image_uri=image_uri, model_data=model_data, role=role_arn, sagemaker_session=session)
    register = ModelStep(
        "Register",
        step_args=package.register(
            content_types=SERVING_CONTENT_TYPES,
            response_types=SERVING_CONTENT_TYPES,
            model_package_group_name=group,
            approval_status=approval,
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(
                    content_type="application/json",
                    s3_uri=Join(
                        on="/",
                        values=[
                            evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
                            REPORT_NAME,
                        ],
                    ),
                )
            ),
            customer_metadata_properties={
                name: Join(on="", values=[figure(name)]) for name in ("ndcg_home", "best_baseline_ndcg_home")
            },
            description=f"{project}: retrained by the {pipeline_name(project)} pipeline",
        ),
    )
    rollout = LambdaStep(
        "Rollout",
        lambda_func=steps_function,
        inputs={
            "action": "rollout",
            "package_arn": register.properties.ModelPackageArn,
            "endpoint": endpoint_name,
        },
        outputs=[
            LambdaOutput("endpoint_config", LambdaOutputTypeEnum.String),
            LambdaOutput("model", LambdaOutputTypeEnum.String),
        ],
    )
    auto_approved = ConditionStep(
        "AutoApproved", conditions=[ConditionEquals(approval, "Approved")], if_steps=[rollout], else_steps=[]
    )
    refused = FailStep(
        "Refused",
        error_message=Join(
            on="",
            values=[
                "the new model's NDCG@10 at home, ",
                figure("ndcg_home"),
                ", is below its best baseline's (",
                figure("best_baseline_ndcg_home"),
                ") or the approved model's floor (",
                floor,
                "): not registered",
            ],
        ),
    )
    gate = ConditionStep(
        "Gate",
        conditions=[
            ConditionGreaterThanOrEqualTo(figure("ndcg_home"), figure("best_baseline_ndcg_home")),
            ConditionGreaterThanOrEqualTo(figure("ndcg_home"), floor),
        ],
        if_steps=[register, auto_approved],
        else_steps=[refused],
    )
    return Pipeline(
        name=pipeline_name(project),
        parameters=[events, videos, approval, tolerance, instance],
        steps=[train, evaluate, approved, gate],
        sagemaker_session=session,
    )


def definition(**settings: str) -> dict:
    """The pipeline's JSON definition. The SDK explains at length what a PipelineSession does not do (start
    jobs, wait, log) and that v2 is deprecated; only its errors matter here."""
    logging.getLogger("sagemaker").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return json.loads(build(**settings).definition())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-uri", required=True, help="the image that trains, evaluates and serves")
    parser.add_argument("--role-arn", required=True, help="the role the pipeline's jobs and its model run as")
    parser.add_argument("--bucket", required=True, help="data under data/PROJECT/, models under models/PROJECT/")
    parser.add_argument("--steps-function-arn", required=True, help="the Lambda of deploy/pipeline_steps.py")
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    parser.add_argument("--group", help="model package group (default the project)")
    parser.add_argument("--endpoint-name", help="the endpoint Rollout updates (default the project)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--out", type=Path, required=True, help="where the definition goes (the SDK prints to stdout)")
    args = parser.parse_args(argv)
    settings = {key: value for key, value in vars(args).items() if value is not None and key != "out"}
    args.out.write_text(json.dumps(definition(**settings)))
    print(f"pipeline: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
