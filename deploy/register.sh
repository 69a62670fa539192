#!/usr/bin/env bash
# Register a trained model (its model.tar.gz in S3) in a SageMaker Model Package Group, with its evaluation.
set -euo pipefail
# shellcheck source=deploy/common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

usage() {
  cat <<EOF_USAGE
Usage: deploy/register.sh --model-data-url s3://BUCKET/KEY/model.tar.gz --image-uri URI [options]

Reads the archive's manifest, writes its evaluation report (python -m vrmodels.training.registry) beside it as
evaluation.json, creates the Model Package Group when missing, and registers a model package: the image and
model data as its inference specification, the report as ModelMetrics (ModelQuality statistics), the headline
figures (NDCG@10 home, in session, up next, and their best baselines) as metadata. Prints the package's ARN.
deploy.sh --model-package-arn ARN deploys it once it is Approved.

Options:
  --group NAME          model package group (default the project name)
  --approve             register it Approved (default PendingManualApproval: a person approves it with
                        aws sagemaker update-model-package --model-approval-status Approved)
  --description TEXT    the package's description
$COMMON_HELP
EOF_USAGE
}

MODEL_DATA_URL=""
IMAGE_URI=""
GROUP="$PROJECT"
STATUS="PendingManualApproval"
DESCRIPTION=""
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --model-data-url) MODEL_DATA_URL="${2:?}"; shift 2 ;;
    --image-uri) IMAGE_URI="${2:?}"; shift 2 ;;
    --group) GROUP="${2:?}"; shift 2 ;;
    --approve) STATUS="Approved"; shift ;;
    --description) DESCRIPTION="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
[[ "$MODEL_DATA_URL" =~ ^s3://[^/]+/.+\.tar\.gz$ ]] || die "--model-data-url must be s3://bucket/key.tar.gz, got '${MODEL_DATA_URL}'"
[ -n "$IMAGE_URI" ] || die "--image-uri is required (the image that serves the model)"
need aws "pip install -r requirements-dev.txt"

WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
aws_api s3 cp --only-show-errors "$MODEL_DATA_URL" "$WORK/model.tar.gz" || die "cannot read $MODEL_DATA_URL"
tar -xzf "$WORK/model.tar.gz" -C "$WORK" manifest.json 2>/dev/null || die "$MODEL_DATA_URL: no manifest.json at its root"
(cd "$REPO_ROOT" && "$PYTHON" -m vrmodels.training.registry "$WORK/manifest.json") >"$WORK/evaluation.json" \
  || die "$MODEL_DATA_URL: its manifest cannot be read (see above)"
REPORT_URL="${MODEL_DATA_URL%/*}/evaluation.json"
aws_api s3 cp --only-show-errors "$WORK/evaluation.json" "$REPORT_URL"

ensure_model_package_group "$GROUP"

python3 - "$WORK/evaluation.json" "$GROUP" "$IMAGE_URI" "$MODEL_DATA_URL" "$REPORT_URL" "$STATUS" "$DESCRIPTION" \
  >"$WORK/package.json" <<'EOF_PY'
import json, sys
report_path, group, image, data, report_url, status, description = sys.argv[1:]
report = json.load(open(report_path))
package = {
    "ModelPackageGroupName": group,
    "ModelPackageDescription": description or f"{report['model_version']} ({report['kind']})",
    "InferenceSpecification": {
        "Containers": [{"Image": image, "ModelDataUrl": data}],
        "SupportedContentTypes": ["application/json", "application/jsonlines"],
        "SupportedResponseMIMETypes": ["application/json", "application/jsonlines"],
    },
    "ModelApprovalStatus": status,
    "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": report_url}}},
    "CustomerMetadataProperties": {
        "model_version": report["model_version"], **{name: f"{value:.6f}" for name, value in report["figures"].items()}
    },
}
print(json.dumps(package))
EOF_PY
ARN="$(aws_api sagemaker create-model-package --cli-input-json "file://$WORK/package.json" --query ModelPackageArn --output text)"
log "registered $ARN ($STATUS), evaluation in $REPORT_URL"
echo "$ARN"
