#!/usr/bin/env bash
# Wire an image (and optionally model data) to a SageMaker endpoint: model → endpoint config → endpoint.
set -euo pipefail
# shellcheck source=deploy/common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

usage() {
  cat <<EOF_USAGE
Usage: deploy/deploy.sh --image-uri URI --role-arn ARN [options]

Renders model.json and endpoint-config.json with unique, versioned names, creates the model(s) and the endpoint
config (aws ... --cli-input-json), then creates the endpoint, or updates it when it exists (a redeploy without
downtime), waits until it is InService, and sends a smoke invocation. Earlier models and configs are kept for
rollback; deploy/teardown.sh removes them.

Options:
  --image-uri URI                  ECR image (required; env IMAGE_URI), e.g. from deploy/build_and_push.sh
  --role-arn ARN                   SageMaker execution role (required unless --create-role; env SAGEMAKER_ROLE_ARN)
  --create-role                    create (or refresh) the role PROJECT-sagemaker-execution from deploy/iam/:
                                   pull from our ECR repository, read our model prefix in S3, write logs and
                                   metrics; needs --model-bucket or --model-data-url
  --model-bucket BUCKET            bucket whose models/PROJECT/ prefix the created role may read
  --model-data-url S3URL           model.tar.gz from deploy/package_model.sh (default: the model baked in the image)
  --model-package-arn ARN          an Approved model package (deploy/register.sh): its image and model data,
                                   instead of --image-uri and --model-data-url
  --variant-name NAME              the production variant (default AllTraffic)

Hosting modes (docs/hosting.md):
  --multi-model S3PREFIX           a multi-model endpoint: models are the .tar.gz files under S3PREFIX (ending in /;
                                   deploy/package_model.sh --multi-model-prefix uploads them), loaded on demand;
                                   callers name one with TargetModel (deploy/invoke.sh --target-model)
  --smoke-target-model PATH        with --multi-model: the model the smoke test invokes (default: no smoke test)
  --async-output S3URI             asynchronous inference: answers are written under S3URI
  --async-failure S3URI            where failures are written (default: under --async-output)
  --async-success-topic ARN        SNS topic told of each answer
  --async-error-topic ARN          SNS topic told of each failure
  --async-max-concurrent N         invocations in flight per instance (default 4)
  --async-timeout SECONDS          the container's own timeout: the longest InvocationTimeoutSeconds callers use
                                   (default 900, at most 3600); with --autoscale-min 0 the endpoint scales to zero

A/B, shadow and safe rollout:
  --candidate-image-uri URI        add a second production variant, Candidate (A/B); its model gets VR_VARIANT=Candidate
  --candidate-model-data-url S3URL the candidate's model (default: the one baked in its image)
  --candidate-weight W             share of traffic for the candidate, 0 < W < 1 (default 0.1); see deploy/traffic.sh
  --shadow-image-uri URI           a shadow variant, Shadow: gets a copy of every request, its answers are discarded
  --shadow-model-data-url S3URL    the shadow's model
  --rollout all-at-once|canary|linear
                                   on an update: shift traffic blue/green with SageMaker's deployment guardrails,
                                   rolling back automatically when an alarm fires (alarms on 5xx errors and
                                   ModelLatency are created; default all-at-once)
  --canary-percent P               canary size (default 10)
  --linear-percent P               linear step (default 20)
  --bake-seconds S                 wait between traffic shifts (default 300)
  --latency-alarm-ms MS            ModelLatency alarm threshold, average over a minute (default 100)

Data capture:
  --data-capture S3URI             capture requests and answers (JSON, JSON Lines) to S3URI; see monitoring/drift.py
  --capture-percent P              sampling percentage (default 20)

Instances:
  --endpoint-name NAME             endpoint (default the project name)
  --instance-type TYPE             default ml.m5.large
  --instance-count N               default 1
  --serverless-memory-mb MB        serverless variant instead of instances (1024..6144)
  --serverless-max-concurrency N   with --serverless-memory-mb (default 5)
  --autoscale-min N --autoscale-max N
                                   target-tracking autoscaling on SageMakerVariantInvocationsPerInstance
  --autoscale-target N             invocations per instance per minute (default 100); asynchronous: requests
                                   waiting per instance (default 5)
  --startup-timeout SECONDS        ContainerStartupHealthCheckTimeoutInSeconds (default 600)
  --workers N                      SAGEMAKER_MODEL_SERVER_WORKERS (default: one per vCPU)
  --no-smoke-test                  skip the test invocation
$COMMON_HELP
EOF_USAGE
}

IMAGE_URI="${IMAGE_URI:-}"
ROLE_ARN="${SAGEMAKER_ROLE_ARN:-}"
CREATE_ROLE=0
MODEL_BUCKET=""
MODEL_DATA_URL=""
MODEL_PACKAGE_ARN=""
CANDIDATE_IMAGE_URI=""
CANDIDATE_MODEL_DATA_URL=""
CANDIDATE_WEIGHT="0.1"
SHADOW_IMAGE_URI=""
SHADOW_MODEL_DATA_URL=""
ROLLOUT="all-at-once"
CANARY_PERCENT=10
LINEAR_PERCENT=20
BAKE_SECONDS=300
LATENCY_ALARM_MS=100
DATA_CAPTURE=""
CAPTURE_PERCENT=20
ENDPOINT_NAME="$PROJECT"
INSTANCE_TYPE="ml.m5.large"
INSTANCE_COUNT=1
SERVERLESS_MEMORY_MB=""
SERVERLESS_MAX_CONCURRENCY=5
AUTOSCALE_MIN=""
AUTOSCALE_MAX=""
AUTOSCALE_TARGET=""
STARTUP_TIMEOUT=600
WORKERS=""
SMOKE_TEST=1
VARIANT="AllTraffic"
MULTI_MODEL_PREFIX=""
SMOKE_TARGET_MODEL=""
ASYNC_OUTPUT=""
ASYNC_FAILURE=""
ASYNC_SUCCESS_TOPIC=""
ASYNC_ERROR_TOPIC=""
ASYNC_MAX_CONCURRENT=4
ASYNC_TIMEOUT=900
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --image-uri) IMAGE_URI="${2:?}"; shift 2 ;;
    --role-arn) ROLE_ARN="${2:?}"; shift 2 ;;
    --create-role) CREATE_ROLE=1; shift ;;
    --model-bucket) MODEL_BUCKET="${2:?}"; shift 2 ;;
    --model-data-url) MODEL_DATA_URL="${2:?}"; shift 2 ;;
    --model-package-arn) MODEL_PACKAGE_ARN="${2:?}"; shift 2 ;;
    --variant-name) VARIANT="${2:?}"; shift 2 ;;
    --multi-model) MULTI_MODEL_PREFIX="${2:?}"; shift 2 ;;
    --smoke-target-model) SMOKE_TARGET_MODEL="${2:?}"; shift 2 ;;
    --async-output) ASYNC_OUTPUT="${2:?}"; shift 2 ;;
    --async-failure) ASYNC_FAILURE="${2:?}"; shift 2 ;;
    --async-success-topic) ASYNC_SUCCESS_TOPIC="${2:?}"; shift 2 ;;
    --async-error-topic) ASYNC_ERROR_TOPIC="${2:?}"; shift 2 ;;
    --async-max-concurrent) ASYNC_MAX_CONCURRENT="${2:?}"; shift 2 ;;
    --async-timeout) ASYNC_TIMEOUT="${2:?}"; shift 2 ;;
    --candidate-image-uri) CANDIDATE_IMAGE_URI="${2:?}"; shift 2 ;;
    --candidate-model-data-url) CANDIDATE_MODEL_DATA_URL="${2:?}"; shift 2 ;;
    --candidate-weight) CANDIDATE_WEIGHT="${2:?}"; shift 2 ;;
    --shadow-image-uri) SHADOW_IMAGE_URI="${2:?}"; shift 2 ;;
    --shadow-model-data-url) SHADOW_MODEL_DATA_URL="${2:?}"; shift 2 ;;
    --rollout) ROLLOUT="${2:?}"; shift 2 ;;
    --canary-percent) CANARY_PERCENT="${2:?}"; shift 2 ;;
    --linear-percent) LINEAR_PERCENT="${2:?}"; shift 2 ;;
    --bake-seconds) BAKE_SECONDS="${2:?}"; shift 2 ;;
    --latency-alarm-ms) LATENCY_ALARM_MS="${2:?}"; shift 2 ;;
    --data-capture) DATA_CAPTURE="${2:?}"; shift 2 ;;
    --capture-percent) CAPTURE_PERCENT="${2:?}"; shift 2 ;;
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

# --- helpers ------------------------------------------------------------------------------------------------
check_image() {  # URI OPTION: an ECR image with a tag, in our region, that exists
  local pattern='^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/([a-z0-9._/-]+):([A-Za-z0-9._-]+)$'
  [[ "$1" =~ $pattern ]] || die "$2 '$1' is not an ECR image URI with a tag; SageMaker pulls only from ECR"
  local image_region="${BASH_REMATCH[2]}" repository="${BASH_REMATCH[4]}" tag="${BASH_REMATCH[5]}"
  [ "$image_region" = "$REGION" ] || die "$2: image is in $image_region but the endpoint is in $REGION; SageMaker needs them in one region"
  aws_api ecr describe-images --repository-name "$repository" --image-ids "imageTag=$tag" >/dev/null 2>&1 \
    || die "$2: image $repository:$tag not found in ECR ($REGION); push it with deploy/build_and_push.sh"
}

check_model_data() {  # S3URL: a model.tar.gz that exists
  [[ "$1" =~ ^s3://([^/]+)/(.+\.tar\.gz)$ ]] || die "model data must be s3://bucket/key.tar.gz, got $1"
  aws_api s3api head-object --bucket "${BASH_REMATCH[1]}" --key "${BASH_REMATCH[2]}" >/dev/null 2>&1 \
    || die "model data $1 not found; upload it with deploy/package_model.sh"
}

create_execution_role() {  # MODEL_BUCKET: create or refresh PROJECT-sagemaker-execution from deploy/iam/; print its ARN
  local name="$PROJECT-sagemaker-execution" account work
  account="$(account_id)"; work="$(mktemp -d)"
  local repository="${IMAGE_URI#*/}"; repository="${repository%:*}"   # the image's repository: the role may pull from it
  local values=(ACCOUNT_ID="$account" REGION="$REGION" REPOSITORY="$repository" MODEL_BUCKET="$1" PROJECT="$PROJECT")
  python3 "$DEPLOY_DIR/render_config.py" "$DEPLOY_DIR/iam/execution-role-trust.json" "$work/trust.json" "${values[@]}"
  python3 "$DEPLOY_DIR/render_config.py" "$DEPLOY_DIR/iam/execution-role-policy.json" "$work/policy.json" "${values[@]}"
  if aws_api iam get-role --role-name "$name" >/dev/null 2>&1; then
    [ "$(aws_api iam list-role-tags --role-name "$name" --query "Tags[?Key=='managed-by'].Value" --output text)" = vr-deploy ] \
      || die "role $name exists but was not created by these scripts; refusing to change it"
    log "refreshing the policy of role $name"
  else
    log "creating role $name"
    aws_api iam create-role --role-name "$name" --assume-role-policy-document "file://$work/trust.json" \
      --description "SageMaker execution role of $PROJECT (deploy/iam/)" \
      --tags "Key=project,Value=$PROJECT" "Key=managed-by,Value=vr-deploy" >/dev/null
  fi
  aws_api iam put-role-policy --role-name "$name" --policy-name "$PROJECT-serving" --policy-document "file://$work/policy.json"
  rm -rf "$work"
  aws_api iam get-role --role-name "$name" --query Role.Arn --output text
}

create_alarms() {  # the alarms a blue/green rollout rolls back on; print their names, comma-separated
  local errors="$ENDPOINT_NAME-$VARIANT-invocation-5xx" latency="$ENDPOINT_NAME-$VARIANT-model-latency"
  local dimensions=("Name=EndpointName,Value=$ENDPOINT_NAME" "Name=VariantName,Value=$VARIANT")
  aws_api cloudwatch put-metric-alarm --alarm-name "$errors" --namespace AWS/SageMaker --metric-name Invocation5XXErrors \
    --dimensions "${dimensions[@]}" --statistic Sum --period 60 --evaluation-periods 2 --threshold 1 \
    --comparison-operator GreaterThanOrEqualToThreshold --treat-missing-data notBreaching \
    --alarm-description "5xx answers from $ENDPOINT_NAME/$VARIANT (deploy.sh rollout guardrail)" \
    --tags "Key=project,Value=$PROJECT" "Key=managed-by,Value=vr-deploy"
  aws_api cloudwatch put-metric-alarm --alarm-name "$latency" --namespace AWS/SageMaker --metric-name ModelLatency \
    --dimensions "${dimensions[@]}" --statistic Average --period 60 --evaluation-periods 2 \
    --threshold "$((LATENCY_ALARM_MS * 1000))" --comparison-operator GreaterThanThreshold --treat-missing-data notBreaching \
    --alarm-description "ModelLatency (microseconds) of $ENDPOINT_NAME/$VARIANT (deploy.sh rollout guardrail)" \
    --tags "Key=project,Value=$PROJECT" "Key=managed-by,Value=vr-deploy"
  echo "$errors,$latency"
}

deployment_config() {  # ALARMS: SageMaker's blue/green deployment config for --rollout
  python3 - "$ROLLOUT" "$CANARY_PERCENT" "$LINEAR_PERCENT" "$BAKE_SECONDS" "$1" <<'EOF_PY'
import json, sys
rollout, canary, linear, bake, alarms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
routing = {"Type": rollout.upper(), "WaitIntervalInSeconds": bake}
routing["CanarySize" if rollout == "canary" else "LinearStepSize"] = {
    "Type": "CAPACITY_PERCENT", "Value": canary if rollout == "canary" else linear}
print(json.dumps({
    "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": bake,
                              "MaximumExecutionTimeoutInSeconds": 3600},
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarms.split(",")]},
}))
EOF_PY
}

# --- checks that fail fast, with what to fix --------------------------------------------------------------
if [ -n "$MODEL_PACKAGE_ARN" ]; then  # a registered model: its own image and data, once a person (or the gate) approved it
  [ -z "$IMAGE_URI$MODEL_DATA_URL" ] || die "--model-package-arn brings its image and model data: drop --image-uri and --model-data-url"
  read -r package_status IMAGE_URI MODEL_DATA_URL < <(aws_api sagemaker describe-model-package --model-package-name "$MODEL_PACKAGE_ARN" \
    --query '[ModelApprovalStatus, InferenceSpecification.Containers[0].Image, InferenceSpecification.Containers[0].ModelDataUrl]' \
    --output text 2>/dev/null) || die "model package $MODEL_PACKAGE_ARN not found"
  [ "$package_status" = Approved ] || die "model package $MODEL_PACKAGE_ARN is $package_status: approve it first \
(aws sagemaker update-model-package --model-package-arn ARN --model-approval-status Approved)"
  [ "$MODEL_DATA_URL" != None ] || MODEL_DATA_URL=""
  log "deploying model package $MODEL_PACKAGE_ARN: $IMAGE_URI ${MODEL_DATA_URL:-(the model baked in the image)}"
fi
[ -n "$ROLE_ARN" ] || [ "$CREATE_ROLE" = 1 ] \
  || die "--role-arn is required: the IAM role SageMaker assumes (needs ECR pull, S3 read, CloudWatch Logs), or --create-role"
[ -z "$ROLE_ARN" ] || [[ "$ROLE_ARN" =~ ^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+ ]] \
  || die "--role-arn '$ROLE_ARN' is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
[ -n "$IMAGE_URI" ] || die "--image-uri is required (deploy/build_and_push.sh prints it)"
check_image "$IMAGE_URI" --image-uri
for url in "$MODEL_DATA_URL" "$CANDIDATE_MODEL_DATA_URL" "$SHADOW_MODEL_DATA_URL"; do
  [ -z "$url" ] || check_model_data "$url"
done
[ -z "$CANDIDATE_IMAGE_URI" ] || check_image "$CANDIDATE_IMAGE_URI" --candidate-image-uri
[ -z "$SHADOW_IMAGE_URI" ] || check_image "$SHADOW_IMAGE_URI" --shadow-image-uri
[ -n "$CANDIDATE_IMAGE_URI" ] || [ -z "$CANDIDATE_MODEL_DATA_URL" ] || die "--candidate-model-data-url needs --candidate-image-uri"
[ -n "$SHADOW_IMAGE_URI" ] || [ -z "$SHADOW_MODEL_DATA_URL" ] || die "--shadow-model-data-url needs --shadow-image-uri"
[[ "$CANDIDATE_WEIGHT" =~ ^0?\.[0-9]*[1-9][0-9]*$ ]] || die "--candidate-weight must be between 0 and 1 (exclusive), got $CANDIDATE_WEIGHT"
case "$ROLLOUT" in all-at-once|canary|linear) ;; *) die "--rollout must be all-at-once, canary or linear, got $ROLLOUT" ;; esac
for value in "$CANARY_PERCENT" "$LINEAR_PERCENT" "$CAPTURE_PERCENT"; do
  [[ "$value" =~ ^[0-9]+$ ]] && [ "$value" -ge 1 ] && [ "$value" -le 100 ] || die "percentages are whole numbers from 1 to 100, got $value"
done
[ -z "$DATA_CAPTURE" ] || [[ "$DATA_CAPTURE" =~ ^s3://[^/]+(/.*)?$ ]] || die "--data-capture must be an s3:// URI, got $DATA_CAPTURE"
[[ "$ENDPOINT_NAME" =~ ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,40}$ ]] || die "--endpoint-name: letters, digits and hyphens, at most 41 characters"
if [ -n "$SERVERLESS_MEMORY_MB" ]; then
  [ -z "$AUTOSCALE_MAX" ] || die "autoscaling applies to instance variants, not serverless ones"
  [ -z "$CANDIDATE_IMAGE_URI$SHADOW_IMAGE_URI" ] || die "candidate and shadow variants need instance-backed variants, not serverless ones"
  [ "$ROLLOUT" = all-at-once ] || die "blue/green rollouts need instance-backed variants, not serverless ones"
  INSTANCE_TYPE=""; INSTANCE_COUNT=""; STARTUP_TIMEOUT=""   # not allowed on serverless variants
else
  SERVERLESS_MAX_CONCURRENCY=""
fi
if [ -n "$AUTOSCALE_MIN$AUTOSCALE_MAX" ] && { [ -z "$AUTOSCALE_MIN" ] || [ -z "$AUTOSCALE_MAX" ]; }; then
  die "give both --autoscale-min and --autoscale-max"
fi
MODEL_MODE=""
if [ -n "$MULTI_MODEL_PREFIX" ]; then
  [[ "$MULTI_MODEL_PREFIX" =~ ^s3://[^/]+/(.+/)?$ ]] || die "--multi-model must be an s3:// prefix ending in /, got $MULTI_MODEL_PREFIX"
  [ -z "$MODEL_DATA_URL" ] || die "--multi-model and --model-data-url exclude each other: the models live under the prefix"
  [ -z "$SERVERLESS_MEMORY_MB" ] || die "multi-model endpoints cannot be serverless (SageMaker hosts them on instances)"
  [ -z "$SHADOW_IMAGE_URI$CANDIDATE_IMAGE_URI" ] || die "multi-model endpoints take no shadow or candidate variant here"
  [ -z "$DATA_CAPTURE" ] || die "multi-model endpoints have no Model Monitor: drop --data-capture"
  MODEL_MODE="MultiModel"; MODEL_DATA_URL="$MULTI_MODEL_PREFIX"
  [[ "$MULTI_MODEL_PREFIX" =~ ^s3://([^/]+)/ ]] && MODEL_BUCKET="${MODEL_BUCKET:-${BASH_REMATCH[1]}}"
  [ -n "$SMOKE_TARGET_MODEL" ] || SMOKE_TEST=0
fi
[ -z "$SMOKE_TARGET_MODEL" ] || [ -n "$MULTI_MODEL_PREFIX" ] || die "--smoke-target-model needs --multi-model"
SERVER_TIMEOUT=""
AUTOSCALE_TARGET="${AUTOSCALE_TARGET:-$([ -n "$ASYNC_OUTPUT" ] && echo 5 || echo 100)}"
if [ -n "$ASYNC_OUTPUT" ]; then
  for uri in "$ASYNC_OUTPUT" "$ASYNC_FAILURE"; do
    [ -z "$uri" ] || [[ "$uri" =~ ^s3://[^/]+(/.*)?$ ]] || die "--async-output and --async-failure must be s3:// URIs, got $uri"
  done
  [ -z "$SERVERLESS_MEMORY_MB" ] || die "asynchronous inference needs instances, not a serverless variant"
  [[ "$ASYNC_TIMEOUT" =~ ^[0-9]+$ ]] && [ "$ASYNC_TIMEOUT" -ge 1 ] && [ "$ASYNC_TIMEOUT" -le 3600 ] \
    || die "--async-timeout must be 1..3600 seconds, got $ASYNC_TIMEOUT"
  [[ "$ASYNC_MAX_CONCURRENT" =~ ^[1-9][0-9]*$ ]] || die "--async-max-concurrent must be a positive whole number"
  SERVER_TIMEOUT="$ASYNC_TIMEOUT"
  SMOKE_TEST=0   # an asynchronous endpoint answers through S3: deploy/invoke.sh --async
else
  [ -z "$ASYNC_FAILURE$ASYNC_SUCCESS_TOPIC$ASYNC_ERROR_TOPIC" ] || die "--async-failure and the SNS topics need --async-output"
  ASYNC_MAX_CONCURRENT=""
fi
[ "${AUTOSCALE_MIN:-1}" != 0 ] || [ -n "$ASYNC_OUTPUT" ] || die "--autoscale-min 0 (scale to zero) needs asynchronous inference (--async-output)"
if [ "$CREATE_ROLE" = 1 ]; then
  [ -n "$MODEL_BUCKET" ] || [[ "$MODEL_DATA_URL" =~ ^s3://([^/]+)/ ]] || die "--create-role needs --model-bucket (or --model-data-url)"
  MODEL_BUCKET="${MODEL_BUCKET:-${BASH_REMATCH[1]}}"
  ROLE_ARN="$(create_execution_role "$MODEL_BUCKET")"
fi

# --- render -------------------------------------------------------------------------------------------------
STAMP="$(unique_stamp)"
CONFIG_NAME="$ENDPOINT_NAME-c-$STAMP"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
create_model() {  # NAME IMAGE MODEL_DATA VARIANT [MODE]: render model.json and create the model
  python3 "$DEPLOY_DIR/render_config.py" "$REPO_ROOT/model.json" "$WORK/$1.json" \
    MODEL_NAME="$1" EXECUTION_ROLE_ARN="$ROLE_ARN" IMAGE_URI="$2" MODEL_DATA_URL="$3" VARIANT_NAME="$4" \
    WORKERS="$WORKERS" PROJECT="$PROJECT" MODEL_MODE="${5:-}" SERVER_TIMEOUT="$SERVER_TIMEOUT"
  log "creating model $1 ($4)"
  aws_api sagemaker create-model --cli-input-json "file://$WORK/$1.json" >/dev/null
}
MODEL_NAME="$ENDPOINT_NAME-m-$STAMP"
VARIANT_WEIGHT=1.0; CANDIDATE_MODEL_NAME=""; CANDIDATE_VARIANT_NAME=""; SHADOW_MODEL_NAME=""; SHADOW_VARIANT_NAME=""
if [ -n "$CANDIDATE_IMAGE_URI" ]; then
  CANDIDATE_VARIANT_NAME="Candidate"; CANDIDATE_MODEL_NAME="$ENDPOINT_NAME-m-$STAMP-candidate"
  VARIANT_WEIGHT="$(python3 -c "print(round(1 - $CANDIDATE_WEIGHT, 6))")"
fi
if [ -n "$SHADOW_IMAGE_URI" ]; then
  SHADOW_VARIANT_NAME="Shadow"; SHADOW_MODEL_NAME="$ENDPOINT_NAME-m-$STAMP-shadow"
fi
CAPTURE=(CAPTURE_ENABLED= CAPTURE_PERCENT= CAPTURE_S3_URI= CAPTURE_INPUT= CAPTURE_OUTPUT= CAPTURE_JSON_TYPE= CAPTURE_JSONLINES_TYPE=)
if [ -n "$DATA_CAPTURE" ]; then
  CAPTURE=(CAPTURE_ENABLED=true CAPTURE_PERCENT="$CAPTURE_PERCENT" CAPTURE_S3_URI="$DATA_CAPTURE" CAPTURE_INPUT=Input
           CAPTURE_OUTPUT=Output CAPTURE_JSON_TYPE=application/json CAPTURE_JSONLINES_TYPE=application/jsonlines)
fi
python3 "$DEPLOY_DIR/render_config.py" "$REPO_ROOT/endpoint-config.json" "$WORK/endpoint-config.json" \
  ENDPOINT_CONFIG_NAME="$CONFIG_NAME" VARIANT_NAME="$VARIANT" MODEL_NAME="$MODEL_NAME" VARIANT_WEIGHT="$VARIANT_WEIGHT" \
  INSTANCE_TYPE="$INSTANCE_TYPE" INSTANCE_COUNT="$INSTANCE_COUNT" STARTUP_TIMEOUT_SECONDS="$STARTUP_TIMEOUT" \
  SERVERLESS_MEMORY_MB="$SERVERLESS_MEMORY_MB" SERVERLESS_MAX_CONCURRENCY="$SERVERLESS_MAX_CONCURRENCY" \
  CANDIDATE_VARIANT_NAME="$CANDIDATE_VARIANT_NAME" CANDIDATE_MODEL_NAME="$CANDIDATE_MODEL_NAME" \
  CANDIDATE_INSTANCE_TYPE="${CANDIDATE_VARIANT_NAME:+$INSTANCE_TYPE}" CANDIDATE_INSTANCE_COUNT="${CANDIDATE_VARIANT_NAME:+$INSTANCE_COUNT}" \
  CANDIDATE_WEIGHT="${CANDIDATE_VARIANT_NAME:+$CANDIDATE_WEIGHT}" CANDIDATE_STARTUP_TIMEOUT_SECONDS="${CANDIDATE_VARIANT_NAME:+$STARTUP_TIMEOUT}" \
  SHADOW_VARIANT_NAME="$SHADOW_VARIANT_NAME" SHADOW_MODEL_NAME="$SHADOW_MODEL_NAME" \
  SHADOW_INSTANCE_TYPE="${SHADOW_VARIANT_NAME:+$INSTANCE_TYPE}" SHADOW_INSTANCE_COUNT="${SHADOW_VARIANT_NAME:+$INSTANCE_COUNT}" \
  SHADOW_WEIGHT="${SHADOW_VARIANT_NAME:+1.0}" "${CAPTURE[@]}" PROJECT="$PROJECT" \
  ASYNC_OUTPUT="$ASYNC_OUTPUT" ASYNC_FAILURE="$ASYNC_FAILURE" ASYNC_SUCCESS_TOPIC="$ASYNC_SUCCESS_TOPIC" \
  ASYNC_ERROR_TOPIC="$ASYNC_ERROR_TOPIC" ASYNC_MAX_CONCURRENT="$ASYNC_MAX_CONCURRENT"

# --- create and wire ---------------------------------------------------------------------------------------
create_model "$MODEL_NAME" "$IMAGE_URI" "$MODEL_DATA_URL" "$VARIANT" "$MODEL_MODE"
[ -z "$CANDIDATE_MODEL_NAME" ] || create_model "$CANDIDATE_MODEL_NAME" "$CANDIDATE_IMAGE_URI" "$CANDIDATE_MODEL_DATA_URL" Candidate
[ -z "$SHADOW_MODEL_NAME" ] || create_model "$SHADOW_MODEL_NAME" "$SHADOW_IMAGE_URI" "$SHADOW_MODEL_DATA_URL" Shadow
log "creating endpoint config $CONFIG_NAME"
aws_api sagemaker create-endpoint-config --cli-input-json "file://$WORK/endpoint-config.json" >/dev/null

if existing="$(aws_api sagemaker describe-endpoint --endpoint-name "$ENDPOINT_NAME" \
    --query '[EndpointStatus, EndpointArn]' --output text 2>"$WORK/describe.err")"; then
  read -r status endpoint_arn <<<"$existing"
  managed_by_us "$endpoint_arn" || die "endpoint $ENDPOINT_NAME exists but was not created by these scripts; refusing to update it"
  DEPLOYMENT=()
  if [ "$ROLLOUT" != all-at-once ]; then
    alarms="$(create_alarms)"
    DEPLOYMENT=(--deployment-config "$(deployment_config "$alarms")")
    log "endpoint $ENDPOINT_NAME is $status: updating it to $CONFIG_NAME, $ROLLOUT blue/green, rolling back on $alarms"
  else
    log "endpoint $ENDPOINT_NAME is $status: updating it to $CONFIG_NAME (no downtime)"
  fi
  aws_api sagemaker update-endpoint --endpoint-name "$ENDPOINT_NAME" --endpoint-config-name "$CONFIG_NAME" "${DEPLOYMENT[@]}" >/dev/null
elif grep -q "Could not find endpoint" "$WORK/describe.err"; then
  [ "$ROLLOUT" = all-at-once ] || log "no endpoint yet: --rollout $ROLLOUT applies to later updates"
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
  if [ -z "$ASYNC_OUTPUT" ]; then
    METRIC='"PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}'
  else  # asynchronous: scale on the queue, requests waiting per instance
    METRIC="\"CustomizedMetricSpecification\": {\"MetricName\": \"ApproximateBacklogSizePerInstance\", \"Namespace\": \"AWS/SageMaker\", \"Dimensions\": [{\"Name\": \"EndpointName\", \"Value\": \"$ENDPOINT_NAME\"}], \"Statistic\": \"Average\"}"
  fi
  aws_api application-autoscaling put-scaling-policy --service-namespace sagemaker --resource-id "$RESOURCE" \
    --scalable-dimension sagemaker:variant:DesiredInstanceCount --policy-name "$ENDPOINT_NAME-invocations" \
    --policy-type TargetTrackingScaling --target-tracking-scaling-policy-configuration \
    "{\"TargetValue\": $AUTOSCALE_TARGET, $METRIC, \"ScaleInCooldown\": 300, \"ScaleOutCooldown\": 60}" >/dev/null
  if [ "$AUTOSCALE_MIN" = 0 ]; then  # target tracking never leaves zero: a step policy wakes the endpoint on a backlog
    log "scale to zero: a request waiting with no instance starts one"
    POLICY_ARN="$(aws_api application-autoscaling put-scaling-policy --service-namespace sagemaker --resource-id "$RESOURCE" \
      --scalable-dimension sagemaker:variant:DesiredInstanceCount --policy-name "$ENDPOINT_NAME-from-zero" \
      --policy-type StepScaling --step-scaling-policy-configuration \
      '{"AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average", "Cooldown": 300, "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}' \
      --query PolicyARN --output text)"
    aws_api cloudwatch put-metric-alarm --alarm-name "$ENDPOINT_NAME-backlog-without-capacity" --namespace AWS/SageMaker \
      --metric-name HasBacklogWithoutCapacity --dimensions "Name=EndpointName,Value=$ENDPOINT_NAME" \
      --statistic Average --period 60 --evaluation-periods 2 --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold \
      --treat-missing-data missing --alarm-actions "$POLICY_ARN" \
      --tags "Key=project,Value=$PROJECT" "Key=managed-by,Value=vr-deploy"
  fi
fi

DASHBOARD="$ENDPOINT_NAME-dashboard"
log "dashboard $DASHBOARD: invocations, latency, errors, fallbacks and fold-ins, attribution, per variant"
python3 "$DEPLOY_DIR/dashboard.py" --endpoint-name "$ENDPOINT_NAME" --region "$REGION" \
  --variants "$VARIANT${CANDIDATE_MODEL_NAME:+,Candidate}" >"$WORK/dashboard.json"
aws_api cloudwatch put-dashboard --dashboard-name "$DASHBOARD" --dashboard-body "file://$WORK/dashboard.json" >/dev/null

if [ "$SMOKE_TEST" = 1 ]; then
  log "smoke test"
  "$DEPLOY_DIR/invoke.sh" --endpoint-name "$ENDPOINT_NAME" --region "$REGION" \
    ${ENDPOINT_URL:+--endpoint-url "$ENDPOINT_URL"} ${RUNTIME_ENDPOINT_URL:+--runtime-endpoint-url "$RUNTIME_ENDPOINT_URL"} \
    ${SMOKE_TARGET_MODEL:+--target-model "$SMOKE_TARGET_MODEL"} --body '{"user_id": "smoke-test", "k": 1}' >/dev/null || die "smoke invocation of $ENDPOINT_NAME failed (see above)"
fi
log "endpoint $ENDPOINT_NAME is InService with $CONFIG_NAME (remember: endpoints bill while idle; deploy/teardown.sh)"
echo "$ENDPOINT_NAME"
