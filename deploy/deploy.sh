#!/usr/bin/env bash
# Wire an image (and optionally model data) to a SageMaker endpoint: model → endpoint config → endpoint.
set -euo pipefail
# shellcheck source=deploy/common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

usage() {
  cat <<EOF_USAGE
Usage: deploy/deploy.sh --image-uri URI --role-arn ARN [options]

Renders model.json and endpoint-config.json with unique, versioned names, creates the model and the endpoint
config (aws ... --cli-input-json), then creates the endpoint, or updates it when it exists (a redeploy without
downtime), waits until it is InService, and sends a smoke invocation. Earlier models and configs are kept for
rollback; deploy/teardown.sh removes them.

Options:
  --image-uri URI                  ECR image (required; env IMAGE_URI), e.g. from deploy/build_and_push.sh
  --role-arn ARN                   SageMaker execution role (required; env SAGEMAKER_ROLE_ARN)
  --model-data-url S3URL           model.tar.gz from deploy/package_model.sh (default: the model baked in the image)
  --endpoint-name NAME             endpoint (default the project name)
  --instance-type TYPE             default ml.m5.large
  --instance-count N               default 1
  --serverless-memory-mb MB        serverless variant instead of instances (1024..6144)
  --serverless-max-concurrency N   with --serverless-memory-mb (default 5)
  --autoscale-min N --autoscale-max N
                                   target-tracking autoscaling on SageMakerVariantInvocationsPerInstance
  --autoscale-target N             invocations per instance per minute (default 100)
  --startup-timeout SECONDS        ContainerStartupHealthCheckTimeoutInSeconds (default 600)
  --workers N                      SAGEMAKER_MODEL_SERVER_WORKERS (default: one per vCPU)
  --no-smoke-test                  skip the test invocation
$COMMON_HELP
EOF_USAGE
}

IMAGE_URI="${IMAGE_URI:-}"
ROLE_ARN="${SAGEMAKER_ROLE_ARN:-}"
MODEL_DATA_URL=""
ENDPOINT_NAME="$PROJECT"
INSTANCE_TYPE="ml.m5.large"
INSTANCE_COUNT=1
SERVERLESS_MEMORY_MB=""
SERVERLESS_MAX_CONCURRENCY=5
AUTOSCALE_MIN=""
AUTOSCALE_MAX=""
AUTOSCALE_TARGET=100
STARTUP_TIMEOUT=600
WORKERS=""
SMOKE_TEST=1
VARIANT="AllTraffic"
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --image-uri) IMAGE_URI="${2:?}"; shift 2 ;;
    --role-arn) ROLE_ARN="${2:?}"; shift 2 ;;
    --model-data-url) MODEL_DATA_URL="${2:?}"; shift 2 ;;
    --endpoint-name) ENDPOINT_NAME="${2:?}"; shift 2 ;;
    --instance-type) INSTANCE_TYPE="${2:?}"; shift 2 ;;
    --instance-count) INSTANCE_COUNT="${2:?}"; shift 2 ;;
    --serverless-memory-mb) SERVERLESS_MEMORY_MB="${2:?}"; shift 2 ;;
    --serverless-max-concurrency) SERVERLESS_MAX_CONCURRENCY="${2:?}"; shift 2 ;;
    --autoscale-min) AUTOSCALE_MIN="${2:?}"; shift 2 ;;
    --autoscale-max) AUTOSCALE_MAX="${2:?}"; shift 2 ;;
    --autoscale-target) AUTOSCALE_TARGET="${2:?}"; shift 2 ;;
    --startup-timeout) STARTUP_TIMEOUT="${2:?}"; shift 2 ;;
    --workers) WORKERS="${2:?}"; shift 2 ;;
    --no-smoke-test) SMOKE_TEST=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
need aws "pip install -r requirements-dev.txt"
need python3

# --- checks that fail fast, with what to fix --------------------------------------------------------------
[ -n "$ROLE_ARN" ] || die "--role-arn is required: the IAM role SageMaker assumes (needs ECR pull, S3 read, CloudWatch Logs)"
[[ "$ROLE_ARN" =~ ^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+ ]] || die "--role-arn '$ROLE_ARN' is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
[ -n "$IMAGE_URI" ] || die "--image-uri is required (deploy/build_and_push.sh prints it)"
ECR_PATTERN='^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/([a-z0-9._/-]+):([A-Za-z0-9._-]+)$'
[[ "$IMAGE_URI" =~ $ECR_PATTERN ]] || die "--image-uri '$IMAGE_URI' is not an ECR image URI with a tag; SageMaker pulls only from ECR"
IMAGE_REGION="${BASH_REMATCH[2]}"; IMAGE_REPOSITORY="${BASH_REMATCH[4]}"; IMAGE_TAG="${BASH_REMATCH[5]}"
[ "$IMAGE_REGION" = "$REGION" ] || die "image is in $IMAGE_REGION but the endpoint is in $REGION; SageMaker needs them in one region"
aws_api ecr describe-images --repository-name "$IMAGE_REPOSITORY" --image-ids "imageTag=$IMAGE_TAG" >/dev/null 2>&1 \
  || die "image $IMAGE_REPOSITORY:$IMAGE_TAG not found in ECR ($REGION); push it with deploy/build_and_push.sh"
if [ -n "$MODEL_DATA_URL" ]; then
  [[ "$MODEL_DATA_URL" =~ ^s3://([^/]+)/(.+\.tar\.gz)$ ]] || die "--model-data-url must be s3://bucket/key.tar.gz"
  aws_api s3api head-object --bucket "${BASH_REMATCH[1]}" --key "${BASH_REMATCH[2]}" >/dev/null 2>&1 \
    || die "model data $MODEL_DATA_URL not found; upload it with deploy/package_model.sh"
fi
[[ "$ENDPOINT_NAME" =~ ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,40}$ ]] || die "--endpoint-name: letters, digits and hyphens, at most 41 characters"
if [ -n "$SERVERLESS_MEMORY_MB" ]; then
  [ -z "$AUTOSCALE_MAX" ] || die "autoscaling applies to instance variants, not serverless ones"
  INSTANCE_TYPE=""; INSTANCE_COUNT=""; STARTUP_TIMEOUT=""   # not allowed on serverless variants
else
  SERVERLESS_MAX_CONCURRENCY=""
fi
if [ -n "$AUTOSCALE_MIN$AUTOSCALE_MAX" ] && { [ -z "$AUTOSCALE_MIN" ] || [ -z "$AUTOSCALE_MAX" ]; }; then
  die "give both --autoscale-min and --autoscale-max"
fi

# --- render ------------------------------------------------------------------------------------------------
STAMP="$(date -u +%Y%m%d-%H%M%S)-$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')"
MODEL_NAME="$ENDPOINT_NAME-m-$STAMP"
CONFIG_NAME="$ENDPOINT_NAME-c-$STAMP"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
python3 "$DEPLOY_DIR/render_config.py" "$REPO_ROOT/model.json" "$WORK/model.json" \
  MODEL_NAME="$MODEL_NAME" EXECUTION_ROLE_ARN="$ROLE_ARN" IMAGE_URI="$IMAGE_URI" \
  MODEL_DATA_URL="$MODEL_DATA_URL" WORKERS="$WORKERS" PROJECT="$PROJECT"
python3 "$DEPLOY_DIR/render_config.py" "$REPO_ROOT/endpoint-config.json" "$WORK/endpoint-config.json" \
  ENDPOINT_CONFIG_NAME="$CONFIG_NAME" VARIANT_NAME="$VARIANT" MODEL_NAME="$MODEL_NAME" \
  INSTANCE_TYPE="$INSTANCE_TYPE" INSTANCE_COUNT="$INSTANCE_COUNT" STARTUP_TIMEOUT_SECONDS="$STARTUP_TIMEOUT" \
  SERVERLESS_MEMORY_MB="$SERVERLESS_MEMORY_MB" SERVERLESS_MAX_CONCURRENCY="$SERVERLESS_MAX_CONCURRENCY" PROJECT="$PROJECT"

# --- create and wire ---------------------------------------------------------------------------------------
log "creating model $MODEL_NAME"
aws_api sagemaker create-model --cli-input-json "file://$WORK/model.json" >/dev/null
log "creating endpoint config $CONFIG_NAME"
aws_api sagemaker create-endpoint-config --cli-input-json "file://$WORK/endpoint-config.json" >/dev/null

if existing="$(aws_api sagemaker describe-endpoint --endpoint-name "$ENDPOINT_NAME" \
    --query '[EndpointStatus, EndpointArn]' --output text 2>"$WORK/describe.err")"; then
  read -r status endpoint_arn <<<"$existing"
  managed_by_us "$endpoint_arn" || die "endpoint $ENDPOINT_NAME exists but was not created by these scripts; refusing to update it"
  log "endpoint $ENDPOINT_NAME is $status: updating it to $CONFIG_NAME (no downtime)"
  aws_api sagemaker update-endpoint --endpoint-name "$ENDPOINT_NAME" --endpoint-config-name "$CONFIG_NAME" >/dev/null
elif grep -q "Could not find endpoint" "$WORK/describe.err"; then
  log "creating endpoint $ENDPOINT_NAME"
  aws_api sagemaker create-endpoint --endpoint-name "$ENDPOINT_NAME" --endpoint-config-name "$CONFIG_NAME" \
    --tags "Key=project,Value=$PROJECT" "Key=managed-by,Value=vr-deploy" >/dev/null
else
  cat "$WORK/describe.err" >&2
  die "cannot tell whether endpoint $ENDPOINT_NAME exists (see above)"
fi

log "waiting for $ENDPOINT_NAME to be InService"
aws_api sagemaker wait endpoint-in-service --endpoint-name "$ENDPOINT_NAME" \
  || die "endpoint $ENDPOINT_NAME did not reach InService: $(aws_api sagemaker describe-endpoint --endpoint-name "$ENDPOINT_NAME" --query FailureReason --output text)"

if [ -n "$AUTOSCALE_MAX" ]; then
  RESOURCE="endpoint/$ENDPOINT_NAME/variant/$VARIANT"
  log "autoscaling $RESOURCE between $AUTOSCALE_MIN and $AUTOSCALE_MAX instances at $AUTOSCALE_TARGET invocations/instance"
  aws_api application-autoscaling register-scalable-target --service-namespace sagemaker --resource-id "$RESOURCE" \
    --scalable-dimension sagemaker:variant:DesiredInstanceCount \
    --min-capacity "$AUTOSCALE_MIN" --max-capacity "$AUTOSCALE_MAX" >/dev/null
  aws_api application-autoscaling put-scaling-policy --service-namespace sagemaker --resource-id "$RESOURCE" \
    --scalable-dimension sagemaker:variant:DesiredInstanceCount --policy-name "$ENDPOINT_NAME-invocations" \
    --policy-type TargetTrackingScaling --target-tracking-scaling-policy-configuration \
    "{\"TargetValue\": $AUTOSCALE_TARGET, \"PredefinedMetricSpecification\": {\"PredefinedMetricType\": \"SageMakerVariantInvocationsPerInstance\"}, \"ScaleInCooldown\": 300, \"ScaleOutCooldown\": 60}" >/dev/null
fi

if [ "$SMOKE_TEST" = 1 ]; then
  log "smoke test"
  "$DEPLOY_DIR/invoke.sh" --endpoint-name "$ENDPOINT_NAME" --region "$REGION" \
    ${ENDPOINT_URL:+--endpoint-url "$ENDPOINT_URL"} ${RUNTIME_ENDPOINT_URL:+--runtime-endpoint-url "$RUNTIME_ENDPOINT_URL"} \
    --body '{"user_id": "smoke-test", "k": 1}' >/dev/null || die "smoke invocation of $ENDPOINT_NAME failed (see above)"
fi
log "endpoint $ENDPOINT_NAME is InService with $CONFIG_NAME (remember: endpoints bill while idle; deploy/teardown.sh)"
echo "$ENDPOINT_NAME"
