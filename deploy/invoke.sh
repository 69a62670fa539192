#!/usr/bin/env bash
# Call a SageMaker endpoint with a JSON body and pretty-print the answer.
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
$COMMON_HELP
EOF_USAGE
}

ENDPOINT_NAME="$PROJECT"
BODY='{"user_id": "u001", "k": 3}'
BODY_FILE=""
CONTENT_TYPE="application/json"
CUSTOM_ATTRIBUTES=""
TARGET_VARIANT=""
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --endpoint-name) ENDPOINT_NAME="${2:?}"; shift 2 ;;
    --body) BODY="${2?}"; shift 2 ;;
    --body-file) BODY_FILE="${2:?}"; shift 2 ;;
    --content-type) CONTENT_TYPE="${2:?}"; shift 2 ;;
    --custom-attributes) CUSTOM_ATTRIBUTES="${2:?}"; shift 2 ;;
    --target-variant) TARGET_VARIANT="${2:?}"; shift 2 ;;
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
aws_runtime invoke-endpoint --endpoint-name "$ENDPOINT_NAME" --content-type "$CONTENT_TYPE" \
  ${CUSTOM_ATTRIBUTES:+--custom-attributes "$CUSTOM_ATTRIBUTES"} ${TARGET_VARIANT:+--target-variant "$TARGET_VARIANT"} \
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
