#!/usr/bin/env bash
# Create or update the scheduled retrain: its Lambda steps, its SageMaker Pipeline and its EventBridge schedule.
set -euo pipefail
# shellcheck source=deploy/common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

usage() {
  cat <<EOF_USAGE
Usage: deploy/pipeline.sh --image-uri URI --role-arn ARN --lambda-role-arn ARN --scheduler-role-arn ARN
                          --bucket BUCKET [options]
       deploy/pipeline.sh --delete [options]

Creates, or updates when they exist: the Lambda function of the pipeline's steps (PROJECT-pipeline-steps, from
deploy/pipeline_steps.py), the model package group, the SageMaker Pipeline PROJECT-retrain (Train, Evaluate,
ApprovedModel, Gate, Register, and Rollout when auto-approved: python -m deploy.pipeline) and the EventBridge
Scheduler schedule PROJECT-retrain that starts it. The pipeline trains on s3://BUCKET/data/PROJECT/events/ and
s3://BUCKET/data/PROJECT/videos/ (its parameters EventsUri, VideosUri) and writes under s3://BUCKET/models/PROJECT/.

Options:
  --image-uri URI             the image that trains, evaluates and serves (deploy/build_and_push.sh prints it)
  --role-arn ARN              the role the pipeline and its jobs run as (deploy/iam/pipeline-role-policy.json)
  --lambda-role-arn ARN       the steps function's role (deploy/iam/pipeline-steps-policy.json)
  --scheduler-role-arn ARN    the role the schedule starts the pipeline with (deploy/iam/scheduler-policy.json)
  --bucket BUCKET             data and models bucket
  --schedule EXPR             cron(...) or rate(...) (default "rate(7 days)", Amazon Personalize's retrain
                              period); "none" removes the schedule and keeps the pipeline
  --auto-approve              scheduled runs register a model that passes the gate Approved and roll it out on
                              the endpoint (through the blue/green guardrails of deploy.sh --rollout canary);
                              without it they register PendingManualApproval and a person approves and deploys
  --tolerance T               the gate's tolerance: a new model must reach (1 - T) × the approved one's NDCG@10
                              at home (default 0.02)
  --endpoint-name NAME        the endpoint Rollout updates (default the project name)
  --group NAME                model package group (default the project name)
  --start                     also start one execution now (with the schedule's parameters)
  --delete                    remove the schedule, the pipeline and the function (succeeds when already gone);
                              the model package group and its packages stay
$COMMON_HELP
EOF_USAGE
}

IMAGE_URI=""; ROLE_ARN=""; LAMBDA_ROLE_ARN=""; SCHEDULER_ROLE_ARN=""; BUCKET=""
SCHEDULE="rate(7 days)"; APPROVAL="PendingManualApproval"; TOLERANCE="0.02"
ENDPOINT_NAME=""; GROUP=""; START=0; DELETE=0
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --image-uri) IMAGE_URI="${2:?}"; shift 2 ;;
    --role-arn) ROLE_ARN="${2:?}"; shift 2 ;;
    --lambda-role-arn) LAMBDA_ROLE_ARN="${2:?}"; shift 2 ;;
    --scheduler-role-arn) SCHEDULER_ROLE_ARN="${2:?}"; shift 2 ;;
    --bucket) BUCKET="${2:?}"; shift 2 ;;
    --schedule) SCHEDULE="${2:?}"; shift 2 ;;
    --auto-approve) APPROVAL="Approved"; shift ;;
    --tolerance) TOLERANCE="${2:?}"; shift 2 ;;
    --endpoint-name) ENDPOINT_NAME="${2:?}"; shift 2 ;;
    --group) GROUP="${2:?}"; shift 2 ;;
    --start) START=1; shift ;;
    --delete) DELETE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
ENDPOINT_NAME="${ENDPOINT_NAME:-$PROJECT}"; GROUP="${GROUP:-$PROJECT}"
PIPELINE="$PROJECT-retrain"; FUNCTION="$PROJECT-pipeline-steps"
need aws "pip install -r requirements-dev.txt"

exists() { "$@" >/dev/null 2>&1; }

if [ "$DELETE" = 1 ]; then
  if exists aws_api scheduler get-schedule --name "$PIPELINE"; then
    aws_api scheduler delete-schedule --name "$PIPELINE" >/dev/null; log "deleted schedule $PIPELINE"
  fi
  if exists aws_api sagemaker describe-pipeline --pipeline-name "$PIPELINE"; then
    aws_api sagemaker delete-pipeline --pipeline-name "$PIPELINE" >/dev/null; log "deleted pipeline $PIPELINE"
  fi
  if exists aws_api lambda get-function --function-name "$FUNCTION"; then
    aws_api lambda delete-function --function-name "$FUNCTION"; log "deleted function $FUNCTION"
  fi
  log "nothing of $PIPELINE is left (model package group $GROUP kept)"
  exit 0
fi

for pair in "--image-uri:$IMAGE_URI" "--role-arn:$ROLE_ARN" "--lambda-role-arn:$LAMBDA_ROLE_ARN" \
            "--scheduler-role-arn:$SCHEDULER_ROLE_ARN" "--bucket:$BUCKET"; do
  [ -n "${pair#*:}" ] || die "${pair%%:*} is required (see --help)"
done
for pair in "--role-arn:$ROLE_ARN" "--lambda-role-arn:$LAMBDA_ROLE_ARN" "--scheduler-role-arn:$SCHEDULER_ROLE_ARN"; do
  [[ "${pair#*:}" =~ ^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+ ]] || die "${pair%%:*} '${pair#*:}' is not an IAM role ARN"
done
[[ "$SCHEDULE" =~ ^(none|rate\(.+\)|cron\(.+\))$ ]] || die "--schedule must be rate(...), cron(...) or none, got '$SCHEDULE'"
[[ "$TOLERANCE" =~ ^0?\.[0-9]+$|^0$ ]] || die "--tolerance must be in [0, 1), got '$TOLERANCE'"
need python3

PIPELINE_ARN="$(aws_api sagemaker describe-pipeline --pipeline-name "$PIPELINE" --query PipelineArn --output text 2>/dev/null)" \
  || PIPELINE_ARN=""
[ -z "$PIPELINE_ARN" ] || managed_by_us "$PIPELINE_ARN" \
  || die "pipeline $PIPELINE was not created by these scripts; refusing to change it"

WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
TAGS=("Key=project,Value=$PROJECT" "Key=managed-by,Value=vr-deploy")

# 1. The steps function: deploy/pipeline_steps.py and what it imports, as Lambda's Python runtime loads them.
(cd "$REPO_ROOT" && python3 - "$WORK/steps.zip" <<'EOF_PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as archive:
    for name in ("deploy/__init__.py", "deploy/pipeline_steps.py", "deploy/rollout.py"):
        archive.write(name)
EOF_PY
)
if exists aws_api lambda get-function --function-name "$FUNCTION"; then
  FUNCTION_ARN="$(aws_api lambda update-function-code --function-name "$FUNCTION" --zip-file "fileb://$WORK/steps.zip" \
    --query FunctionArn --output text)"
  log "updated function $FUNCTION"
else
  FUNCTION_ARN="$(aws_api lambda create-function --function-name "$FUNCTION" --runtime python3.12 \
    --handler deploy.pipeline_steps.handler --role "$LAMBDA_ROLE_ARN" --timeout 60 \
    --zip-file "fileb://$WORK/steps.zip" --tags "project=$PROJECT,managed-by=vr-deploy" \
    --description "$PIPELINE pipeline steps (deploy/pipeline.sh)" --query FunctionArn --output text)"
  log "created function $FUNCTION"
fi

# 2. Where its packages go.
ensure_model_package_group "$GROUP"

# 3. The pipeline, from its definition in deploy/pipeline.py.
(cd "$REPO_ROOT" && "$PYTHON" -m deploy.pipeline --image-uri "$IMAGE_URI" --role-arn "$ROLE_ARN" --bucket "$BUCKET" \
  --steps-function-arn "$FUNCTION_ARN" --project "$PROJECT" --group "$GROUP" --endpoint-name "$ENDPOINT_NAME" \
  --region "$REGION" --out "$WORK/definition.json" >/dev/null) 2>"$WORK/definition.err" \
  || die "cannot build the pipeline definition: $(tail -3 "$WORK/definition.err")"
if [ -n "$PIPELINE_ARN" ]; then
  aws_api sagemaker update-pipeline --pipeline-name "$PIPELINE" --role-arn "$ROLE_ARN" \
    --pipeline-definition "file://$WORK/definition.json" >/dev/null
  log "updated pipeline $PIPELINE"
else
  PIPELINE_ARN="$(aws_api sagemaker create-pipeline --pipeline-name "$PIPELINE" --role-arn "$ROLE_ARN" \
    --pipeline-definition "file://$WORK/definition.json" --pipeline-description "Scheduled retrain of $PROJECT" \
    --tags "${TAGS[@]}" --query PipelineArn --output text)"
  log "created pipeline $PIPELINE"
fi

# 4. The schedule: the pipeline with the run's parameters, as EventBridge Scheduler's SageMaker target starts it.
PARAMETERS="[{\"Name\": \"ModelApprovalStatus\", \"Value\": \"$APPROVAL\"}, {\"Name\": \"Tolerance\", \"Value\": \"$TOLERANCE\"}]"
if [ "$SCHEDULE" = none ]; then
  ! exists aws_api scheduler get-schedule --name "$PIPELINE" \
    || { aws_api scheduler delete-schedule --name "$PIPELINE" >/dev/null; log "deleted schedule $PIPELINE"; }
else
  cat >"$WORK/target.json" <<EOF_JSON
{"Arn": "$PIPELINE_ARN", "RoleArn": "$SCHEDULER_ROLE_ARN",
 "SageMakerPipelineParameters": {"PipelineParameterList": $PARAMETERS},
 "RetryPolicy": {"MaximumRetryAttempts": 2}}
EOF_JSON
  verb=create; ! exists aws_api scheduler get-schedule --name "$PIPELINE" || verb=update
  aws_api scheduler "$verb-schedule" --name "$PIPELINE" --schedule-expression "$SCHEDULE" \
    --flexible-time-window Mode=OFF --target "file://$WORK/target.json" \
    --description "Starts $PIPELINE (deploy/pipeline.sh)" >/dev/null
  log "${verb}d schedule $PIPELINE: $SCHEDULE, ModelApprovalStatus=$APPROVAL, Tolerance=$TOLERANCE"
fi

if [ "$START" = 1 ]; then
  log "started $(aws_api sagemaker start-pipeline-execution --pipeline-name "$PIPELINE" \
    --pipeline-parameters "Name=ModelApprovalStatus,Value=$APPROVAL" "Name=Tolerance,Value=$TOLERANCE" \
    --query PipelineExecutionArn --output text)"
fi
echo "$PIPELINE_ARN"
