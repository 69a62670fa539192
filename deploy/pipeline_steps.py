"""The retrain pipeline's Lambda steps (deploy/pipeline.py), as one function: `handler(event, context)`.

- `{"action": "approved_model", "group": G, "tolerance": T}`: the newest Approved package of group G, its
  NDCG@10 at home read from its evaluation report (ModelMetrics, as register.sh and the pipeline write it), and
  the floor a new model must reach, (1 - T) × that figure; 0 when nothing is approved yet.
- `{"action": "rollout", "package_arn": ARN, "endpoint": E}`: the endpoint's only variant moves to the package's
  image and model data, through the blue/green guardrails the endpoint was last deployed with (deploy.sh
  --rollout canary|linear: traffic shifts step by step, and SageMaker rolls back by itself if an alarm fires).
  The new model keeps the current one's environment and execution role.

It runs in AWS Lambda's Python runtime: the standard library, boto3, and deploy/rollout.py (deploy/pipeline.sh
packs both). Locally, sagemaker_local.pipeline calls the same handler against moto.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlparse

import boto3

from deploy.rollout import MANAGED_BY, successor_config, unique_stamp

logger = logging.getLogger(__name__)
HOME_FIGURE = "ndcg_home"


class StepError(ValueError):
    """The step cannot go on; the message says why and what to do (the pipeline shows it as the failure)."""


def handler(event: dict, context: object = None, *, session: boto3.Session | None = None) -> dict:
    session = session or boto3.Session()
    action = event.get("action")
    if action == "approved_model":
        return approved_model(group=event["group"], tolerance=float(event["tolerance"]), session=session)
    if action == "rollout":
        return rollout(package_arn=event["package_arn"], endpoint=event["endpoint"], session=session)
    raise StepError(f"unknown action {action!r}: expected approved_model or rollout")


def approved_model(*, group: str, tolerance: float, session: boto3.Session) -> dict:
    if not 0 <= tolerance < 1:
        raise StepError(f"tolerance must be in [0, 1), got {tolerance}")
    sagemaker = session.client("sagemaker")
    listed = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    if not listed:
        logger.info(json.dumps({"event": "no_approved_model", "group": group}))
        return {"approved_package_arn": "", "approved_ndcg_home": 0.0, "floor_ndcg_home": 0.0}
    arn = listed[0]["ModelPackageArn"]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    try:
        location = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    except KeyError:
        raise StepError(f"approved package {arn} has no evaluation report (ModelMetrics.ModelQuality)") from None
    url = urlparse(location)
    report = json.loads(session.client("s3").get_object(Bucket=url.netloc, Key=url.path.lstrip("/"))["Body"].read())
    try:
        ndcg = float(report["figures"][HOME_FIGURE])
    except (KeyError, TypeError, ValueError):
        raise StepError(f"{location}: no figures.{HOME_FIGURE} in the approved package's report") from None
    return {
        "approved_package_arn": arn,
        "approved_ndcg_home": ndcg,
        "floor_ndcg_home": round((1 - tolerance) * ndcg, 6),
    }


def rollout(*, package_arn: str, endpoint: str, session: boto3.Session) -> dict:
    sagemaker = session.client("sagemaker")
    package = sagemaker.describe_model_package(ModelPackageName=package_arn)
    if package["ModelApprovalStatus"] != "Approved":
        raise StepError(f"package {package_arn} is {package['ModelApprovalStatus']}: only Approved ones roll out")
    current = sagemaker.describe_endpoint(EndpointName=endpoint)
    tags = sagemaker.list_tags(ResourceArn=current["EndpointArn"])["Tags"]
    if MANAGED_BY not in tags:
        raise StepError(f"endpoint {endpoint} was not created by deploy.sh; refusing to change it")
    guardrails = current.get("LastDeploymentConfig") or {}
    if "BlueGreenUpdatePolicy" not in guardrails or not guardrails.get("AutoRollbackConfiguration"):
        raise StepError(
            f"endpoint {endpoint} has no blue/green guardrails to roll out with: redeploy it once with "
            "deploy.sh --rollout canary (or linear), which creates the alarms SageMaker rolls back on"
        )
    config = sagemaker.describe_endpoint_config(EndpointConfigName=current["EndpointConfigName"])
    variants = [variant["VariantName"] for variant in config["ProductionVariants"]]
    if len(variants) != 1:
        raise StepError(
            f"endpoint {endpoint} serves {', '.join(variants)}: settle the A/B test first (deploy/traffic.sh)"
        )
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    container = package["InferenceSpecification"]["Containers"][0]
    stamp = unique_stamp()
    project = next((tag["Value"] for tag in tags if tag["Key"] == "project"), endpoint)
    model_name, config_name = f"{endpoint}-m-{stamp}", f"{endpoint}-c-{stamp}"
    sagemaker.create_model(
        ModelName=model_name,
        PrimaryContainer={
            "Image": container["Image"],
            "ModelDataUrl": container["ModelDataUrl"],
            "Environment": model["PrimaryContainer"].get("Environment", {}),
        },
        ExecutionRoleArn=model["ExecutionRoleArn"],
        Tags=[{"Key": "project", "Value": project}, MANAGED_BY, {"Key": "model-package", "Value": package_arn}],
    )
    sagemaker.create_endpoint_config(
        **successor_config(config, keep=variants[0], model_name=model_name, name=config_name, project=project)
    )
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config_name, DeploymentConfig=guardrails)
    logger.info(json.dumps({"event": "rollout", "endpoint": endpoint, "config": config_name, "package": package_arn}))
    return {"endpoint_config": config_name, "model": model_name}
