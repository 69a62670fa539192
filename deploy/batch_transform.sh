#!/usr/bin/env bash
# Score every line of S3 JSON Lines files with a SageMaker Batch Transform job: create it, wait, report.
set -euo pipefail
# shellcheck source=deploy/common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

usage() {
  cat <<EOF_USAGE
Usage: deploy/batch_transform.sh --model-name NAME --input S3PREFIX --output S3PREFIX [options]

Creates a transform job over every object under --input (JSON Lines: one request per line, e.g.
{"user_id": "u001", "k": 10}), split by line and packed into mini-batches (SplitType=Line,
BatchStrategy=MultiRecord, AssembleWith=Line), waits until it ends and reports it: each input file's answers are
in <output>/<file>.out, one line per input line, in order (a bad line gets its error in its slot). The model is
one deploy.sh created (its name is in model.json's ModelName: PROJECT-m-...). SageMaker sets SAGEMAKER_BATCH in
the container, which then answers mini-batches of any number of lines.

Options:
  --model-name NAME            the SageMaker model (required)
  --input S3PREFIX             input files (required)
  --output S3PREFIX            where the .out files go (required)
  --job-name NAME              default PROJECT-batch-<stamp>
  --instance-type TYPE         default ml.m5.large
  --instance-count N           default 1
  --max-payload-mb N           MaxPayloadInMB, 1..100 (default 6, as the container advertises)
  --max-concurrent N           MaxConcurrentTransforms per instance (default: the container's
                               /execution-parameters); MaxPayloadInMB × this must stay within 100
  --strategy MultiRecord|SingleRecord
                               default MultiRecord
  --content-type TYPE          default application/jsonlines
  --invocation-timeout S       InvocationsTimeoutInSeconds per mini-batch, 1..3600 (default 600)
  --retries N                  InvocationsMaxRetries, 0..3 (default 3)
  --run-locally URL            after creating the job, run it here against the container at URL
                               (python -m sagemaker_local.transform), as SageMaker would: for testing
                               without SageMaker (e.g. against moto)
  --no-wait                    create the job and return
$COMMON_HELP
EOF_USAGE
}

MODEL_NAME=""
INPUT=""
OUTPUT=""
JOB_NAME=""
INSTANCE_TYPE="ml.m5.large"
INSTANCE_COUNT=1
MAX_PAYLOAD_MB=6
MAX_CONCURRENT=""
STRATEGY="MultiRecord"
CONTENT_TYPE="application/jsonlines"
INVOCATION_TIMEOUT=600
RETRIES=3
RUN_LOCALLY=""
WAIT=1
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --model-name) MODEL_NAME="${2:?}"; shift 2 ;;
    --input) INPUT="${2:?}"; shift 2 ;;
    --output) OUTPUT="${2:?}"; shift 2 ;;
    --job-name) JOB_NAME="${2:?}"; shift 2 ;;
    --instance-type) INSTANCE_TYPE="${2:?}"; shift 2 ;;
    --instance-count) INSTANCE_COUNT="${2:?}"; shift 2 ;;
    --max-payload-mb) MAX_PAYLOAD_MB="${2:?}"; shift 2 ;;
    --max-concurrent) MAX_CONCURRENT="${2:?}"; shift 2 ;;
    --strategy) STRATEGY="${2:?}"; shift 2 ;;
    --content-type) CONTENT_TYPE="${2:?}"; shift 2 ;;
    --invocation-timeout) INVOCATION_TIMEOUT="${2:?}"; shift 2 ;;
    --retries) RETRIES="${2:?}"; shift 2 ;;
    --run-locally) RUN_LOCALLY="${2:?}"; shift 2 ;;
    --no-wait) WAIT=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
need aws "pip install -r requirements-dev.txt"

# --- checks that fail fast, with what to fix --------------------------------------------------------------
[ -n "$MODEL_NAME" ] || die "--model-name is required: a model deploy.sh created (aws sagemaker list-models)"
for uri in "$INPUT" "$OUTPUT"; do
  [[ "$uri" =~ ^s3://[^/]+(/.*)?$ ]] || die "--input and --output must be s3:// prefixes, got '${uri}'"
done
whole() { [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || die "$1 must be a whole number from $3 to $4, got $2"; }
whole --max-payload-mb "$MAX_PAYLOAD_MB" 1 100
whole --invocation-timeout "$INVOCATION_TIMEOUT" 1 3600
whole --retries "$RETRIES" 0 3
whole --instance-count "$INSTANCE_COUNT" 1 100
if [ -n "$MAX_CONCURRENT" ]; then
  whole --max-concurrent "$MAX_CONCURRENT" 1 100
  [ $((MAX_CONCURRENT * MAX_PAYLOAD_MB)) -le 100 ] \
    || die "--max-concurrent $MAX_CONCURRENT × --max-payload-mb $MAX_PAYLOAD_MB is over SageMaker's 100 MB"
fi
case "$STRATEGY" in MultiRecord|SingleRecord) ;; *) die "--strategy must be MultiRecord or SingleRecord, got $STRATEGY" ;; esac
aws_api sagemaker describe-model --model-name "$MODEL_NAME" >/dev/null 2>&1 \
  || die "model $MODEL_NAME not found; deploy.sh creates models (aws sagemaker list-models)"
[[ "$INPUT" =~ ^s3://([^/]+)/?(.*)$ ]]
# shellcheck disable=SC2016  # backquotes are JMESPath's literal, not a command
[ "$(aws_api s3api list-objects-v2 --bucket "${BASH_REMATCH[1]}" --prefix "${BASH_REMATCH[2]}" --max-items 1 \
    --query 'length(Contents || `[]`)' --output text)" != 0 ] || die "no input files under $INPUT"
JOB_NAME="${JOB_NAME:-$PROJECT-batch-$(unique_stamp)}"
[[ "$JOB_NAME" =~ ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$ ]] || die "--job-name: letters, digits and hyphens, at most 63 characters"

# --- create -------------------------------------------------------------------------------------------------
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK/job.json" <<EOF_PY
import json, sys
job = {
    "TransformJobName": "$JOB_NAME",
    "ModelName": "$MODEL_NAME",
    "BatchStrategy": "$STRATEGY",
    "MaxPayloadInMB": $MAX_PAYLOAD_MB,
    "ModelClientConfig": {"InvocationsTimeoutInSeconds": $INVOCATION_TIMEOUT, "InvocationsMaxRetries": $RETRIES},
    "Environment": {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "$INVOCATION_TIMEOUT"},
    "TransformInput": {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "$INPUT"}},
        "ContentType": "$CONTENT_TYPE",
        "SplitType": "Line",
    },
    "TransformOutput": {"S3OutputPath": "$OUTPUT", "Accept": "$CONTENT_TYPE", "AssembleWith": "Line"},
    "TransformResources": {"InstanceType": "$INSTANCE_TYPE", "InstanceCount": $INSTANCE_COUNT},
    "Tags": [{"Key": "project", "Value": "$PROJECT"}, {"Key": "managed-by", "Value": "vr-deploy"}],
}
if "$MAX_CONCURRENT":
    job["MaxConcurrentTransforms"] = int("$MAX_CONCURRENT")
json.dump(job, open(sys.argv[1], "w"))
EOF_PY
log "creating transform job $JOB_NAME: $INPUT → $OUTPUT ($STRATEGY, up to $MAX_PAYLOAD_MB MB a mini-batch)"
aws_api sagemaker create-transform-job --cli-input-json "file://$WORK/job.json" >/dev/null

if [ -n "$RUN_LOCALLY" ]; then
  log "running it locally against $RUN_LOCALLY"
  (cd "$REPO_ROOT" && "$PYTHON" -m sagemaker_local.transform --container "$RUN_LOCALLY" --job-name "$JOB_NAME" \
    --region "$REGION" ${ENDPOINT_URL:+--endpoint-url "$ENDPOINT_URL"}) >"$WORK/local.json" \
    || { cat "$WORK/local.json" >&2; die "transform job $JOB_NAME failed locally (see above)"; }
  cat "$WORK/local.json" >&2
fi
if [ "$WAIT" = 0 ]; then
  echo "$JOB_NAME"
  exit 0
fi

# --- wait and report ---------------------------------------------------------------------------------------
log "waiting for $JOB_NAME"
aws_api sagemaker wait transform-job-completed-or-stopped --transform-job-name "$JOB_NAME" || true
read -r STATUS REASON < <(aws_api sagemaker describe-transform-job --transform-job-name "$JOB_NAME" \
  --query '[TransformJobStatus, FailureReason]' --output text)
[ "$STATUS" = Completed ] || die "transform job $JOB_NAME ended $STATUS: $REASON (CloudWatch: /aws/sagemaker/TransformJobs)"
[[ "$OUTPUT" =~ ^s3://([^/]+)/?(.*)$ ]]
log "transform job $JOB_NAME Completed; answers:"
aws_api s3api list-objects-v2 --bucket "${BASH_REMATCH[1]}" --prefix "${BASH_REMATCH[2]}" \
  --query 'Contents[].[Key, Size]' --output text >&2
echo "$JOB_NAME"
