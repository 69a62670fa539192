#!/usr/bin/env bash
# Package a model directory as model.tar.gz and upload it to S3, for ModelDataUrl (no image rebuild needed).
set -euo pipefail
# shellcheck source=deploy/common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

usage() {
  cat <<EOF_USAGE
Usage: deploy/package_model.sh --bucket BUCKET [options]
       deploy/package_model.sh --multi-model-prefix S3PREFIX [--target-model PATH] [options]

Verifies the model directory (manifest and checksums), writes model.tar.gz with the files at its root
(SageMaker extracts it into /opt/ml/model), uploads it to s3://BUCKET/PREFIX/<model version>/model.tar.gz,
and prints that URL on stdout. For a multi-model endpoint (deploy.sh --multi-model S3PREFIX), it uploads to
S3PREFIX<target model> instead, and prints the target model callers name (invoke.sh --target-model).

Options:
  --model-dir DIR       model directory (default artifacts/models/latest)
  --bucket BUCKET       S3 bucket (required; env VR_MODEL_BUCKET)
  --prefix PREFIX       key prefix (default models/<project>)
  --create-bucket       create the bucket if it does not exist
  --multi-model-prefix S3PREFIX
                        a multi-model endpoint's prefix (s3://bucket/path/, ending in /)
  --target-model PATH   the key under that prefix (default <model version>.tar.gz), e.g. country-fr.tar.gz
  --python PATH         Python with the project installed (default .venv/bin/python, else python3)
$COMMON_HELP
EOF_USAGE
}

MODEL_DIR="$REPO_ROOT/artifacts/models/latest"
BUCKET="${VR_MODEL_BUCKET:-}"
PREFIX=""
CREATE_BUCKET=0
MULTI_MODEL_PREFIX=""
TARGET_MODEL=""
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --model-dir) MODEL_DIR="${2:?}"; shift 2 ;;
    --bucket) BUCKET="${2:?}"; shift 2 ;;
    --prefix) PREFIX="${2:?}"; shift 2 ;;
    --create-bucket) CREATE_BUCKET=1; shift ;;
    --multi-model-prefix) MULTI_MODEL_PREFIX="${2:?}"; shift 2 ;;
    --target-model) TARGET_MODEL="${2:?}"; shift 2 ;;
    --python) PYTHON="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
need aws "pip install -r requirements-dev.txt"
if [ -n "$MULTI_MODEL_PREFIX" ]; then
  [[ "$MULTI_MODEL_PREFIX" =~ ^s3://([^/]+)/(.+/)?$ ]] || die "--multi-model-prefix must be s3://bucket/path/ (ending in /), got $MULTI_MODEL_PREFIX"
  BUCKET="${BASH_REMATCH[1]}"
elif [ -n "$TARGET_MODEL" ]; then
  die "--target-model needs --multi-model-prefix"
fi
if [ -n "$TARGET_MODEL" ]; then
  [[ "$TARGET_MODEL" =~ ^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*\.tar\.gz$ ]] && [[ ! "$TARGET_MODEL" =~ (^|/)\.\.(/|$) ]] \
    || die "--target-model must be a relative path ending in .tar.gz, got $TARGET_MODEL"
fi
[ -n "$BUCKET" ] || die "--bucket is required (or set VR_MODEL_BUCKET)"
[ -f "$MODEL_DIR/manifest.json" ] || die "$MODEL_DIR: no manifest.json; train a model first (make train)"
PREFIX="${PREFIX:-models/$PROJECT}"

VERSION="$(cd "$REPO_ROOT" && "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_version"])' "$MODEL_DIR/manifest.json")"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
(cd "$REPO_ROOT" && "$PYTHON" -m vrmodels.package "$MODEL_DIR" "$WORK/model.tar.gz") >&2 \
  || die "$MODEL_DIR: failed verification or packaging (see above)"

if ! aws_api s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1; then
  [ "$CREATE_BUCKET" = 1 ] || die "bucket $BUCKET not found or not accessible (use --create-bucket to create it)"
  log "creating bucket $BUCKET"
  if [ "$REGION" = "us-east-1" ]; then
    aws_api s3api create-bucket --bucket "$BUCKET" >/dev/null
  else
    aws_api s3api create-bucket --bucket "$BUCKET" --create-bucket-configuration "LocationConstraint=$REGION" >/dev/null
  fi
fi
if [ -n "$MULTI_MODEL_PREFIX" ]; then
  TARGET_MODEL="${TARGET_MODEL:-$VERSION.tar.gz}"
  URL="$MULTI_MODEL_PREFIX$TARGET_MODEL"
else
  URL="s3://$BUCKET/$PREFIX/$VERSION/model.tar.gz"
fi
log "uploading $URL"
aws_api s3 cp "$WORK/model.tar.gz" "$URL" --only-show-errors >&2
echo "${TARGET_MODEL:-$URL}"
