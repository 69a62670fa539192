#!/usr/bin/env bash
# Call a SageMaker endpoint with a JSON body and pretty-print the answer (in real time, or asynchronously via S3).
set -euo pipefail
# shellcheck source=deploy/common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

usage() {
  cat <<EOF_USAGE
Usage: deploy/invoke.sh [options]

Runs 'aws sagemaker-runtime invoke-endpoint' with the body from a file (fileb://, which works with CLI v1 and
v2 alike; v2 would otherwise need --cli-binary-format raw-in-base64-out) and pretty-prints the JSON answer.

Options:
  --endpoint-name NAME          endpoint (default the project name)
  --body JSON                   request (default '{"user_id": "u001", "k": 3}')
  --body-file FILE              request from a file instead
  --content-type TYPE           default application/json (application/jsonlines for many lines)
  --custom-attributes TEXT      X-Amzn-SageMaker-Custom-Attributes
  --target-variant NAME         send the request to this production variant (A/B: AllTraffic or Candidate)
  --target-model PATH           a multi-model endpoint's model (its key under the prefix, e.g. country-fr.tar.gz)

Asynchronous inference (an endpoint deployed with --async-output):
  --async                       upload the body to S3, invoke-endpoint-async, wait for the answer and print it
  --async-input S3PREFIX        where to upload the body (required with --async, unless --input-location)
  --input-location S3URI        a body already in S3 (nothing is uploaded)
  --invocation-timeout SECONDS  InvocationTimeoutSeconds (default 900, at most 3600)
  --wait SECONDS                how long to wait for the answer (default: the invocation timeout + 60)
$COMMON_HELP
EOF_USAGE
}

ENDPOINT_NAME="$PROJECT"
BODY='{"user_id": "u001", "k": 3}'
BODY_FILE=""
CONTENT_TYPE="application/json"
CUSTOM_ATTRIBUTES=""
TARGET_VARIANT=""
TARGET_MODEL=""
ASYNC=0
ASYNC_INPUT=""
INPUT_LOCATION=""
INVOCATION_TIMEOUT=900
WAIT=""
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --endpoint-name) ENDPOINT_NAME="${2:?}"; shift 2 ;;
    --body) BODY="${2?}"; shift 2 ;;
    --body-file) BODY_FILE="${2:?}"; shift 2 ;;
    --content-type) CONTENT_TYPE="${2:?}"; shift 2 ;;
    --custom-attributes) CUSTOM_ATTRIBUTES="${2:?}"; shift 2 ;;
    --target-variant) TARGET_VARIANT="${2:?}"; shift 2 ;;
    --target-model) TARGET_MODEL="${2:?}"; shift 2 ;;
    --async) ASYNC=1; shift ;;
    --async-input) ASYNC_INPUT="${2:?}"; shift 2 ;;
    --input-location) INPUT_LOCATION="${2:?}"; shift 2 ;;
    --invocation-timeout) INVOCATION_TIMEOUT="${2:?}"; shift 2 ;;
    --wait) WAIT="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
need aws "pip install -r requirements-dev.txt"

WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
if [ -n "$BODY_FILE" ]; then
  [ -f "$BODY_FILE" ] || die "--body-file $BODY_FILE not found"
  cp "$BODY_FILE" "$WORK/body"
else
  printf '%s' "$BODY" >"$WORK/body"
fi
if [ "$ASYNC" = 1 ]; then
  [ -z "$TARGET_MODEL$TARGET_VARIANT" ] || die "--async takes neither --target-model nor --target-variant"
  [[ "$INVOCATION_TIMEOUT" =~ ^[0-9]+$ ]] && [ "$INVOCATION_TIMEOUT" -ge 1 ] && [ "$INVOCATION_TIMEOUT" -le 3600 ] \
    || die "--invocation-timeout must be 1..3600 seconds, got $INVOCATION_TIMEOUT"
  if [ -z "$INPUT_LOCATION" ]; then
    [[ "$ASYNC_INPUT" =~ ^s3://[^/]+(/.*)?$ ]] || die "--async needs --async-input s3://bucket/prefix/ (or --input-location)"
    INPUT_LOCATION="${ASYNC_INPUT%/}/$(unique_stamp).json"
    aws_api s3 cp "$WORK/body" "$INPUT_LOCATION" --content-type "$CONTENT_TYPE" --only-show-errors >&2 \
      || die "cannot upload the body to $INPUT_LOCATION"
  fi
  aws_runtime invoke-endpoint-async --endpoint-name "$ENDPOINT_NAME" --content-type "$CONTENT_TYPE" \
    --input-location "$INPUT_LOCATION" --invocation-timeout-seconds "$INVOCATION_TIMEOUT" >"$WORK/meta" \
    || die "asynchronous invocation of endpoint $ENDPOINT_NAME failed (see the error above)"
  read -r OUTPUT FAILURE < <(python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print(m["OutputLocation"], m.get("FailureLocation", "-"))' "$WORK/meta")
  log "queued; waiting for $OUTPUT"
  deadline=$(( $(date +%s) + ${WAIT:-$((INVOCATION_TIMEOUT + 60))} ))
  while :; do
    if aws_api s3 cp "$OUTPUT" "$WORK/answer" --only-show-errors 2>/dev/null; then
      break
    fi
    if [ "$FAILURE" != "-" ] && aws_api s3 cp "$FAILURE" "$WORK/failure" --only-show-errors 2>/dev/null; then
      cat "$WORK/failure" >&2; echo >&2
      die "the asynchronous invocation failed; its error is at $FAILURE"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "no answer at $OUTPUT after waiting; it may still come"
    sleep 1
  done
  python3 -m json.tool "$WORK/answer" 2>/dev/null || cat "$WORK/answer"
  exit 0
fi
aws_runtime invoke-endpoint --endpoint-name "$ENDPOINT_NAME" --content-type "$CONTENT_TYPE" \
  ${CUSTOM_ATTRIBUTES:+--custom-attributes "$CUSTOM_ATTRIBUTES"} ${TARGET_VARIANT:+--target-variant "$TARGET_VARIANT"} \
  ${TARGET_MODEL:+--target-model "$TARGET_MODEL"} \
  --body "fileb://$WORK/body" "$WORK/answer" >"$WORK/meta" \
  || die "invocation of endpoint $ENDPOINT_NAME failed (see the error above)"
python3 - "$WORK/meta" >&2 <<'EOF_PY'
import json, sys
meta = json.load(open(sys.argv[1]))
attributes = dict(part.split("=", 1) for part in meta.get("CustomAttributes", "").split(";") if "=" in part)
variant, version = meta.get("InvokedProductionVariant", "?"), attributes.get("model-version", "?")
print(f"[invoke.sh] answered by variant {variant}, model version {version}")
EOF_PY
python3 -m json.tool "$WORK/answer" 2>/dev/null || cat "$WORK/answer"
