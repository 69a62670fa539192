# Shared by the deploy scripts: logging, failure, and the aws CLI pointed at the right endpoints.
# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this file

PROJECT="${VR_PROJECT:-video-recommender}"
REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
ENDPOINT_URL="${VR_AWS_ENDPOINT_URL:-}"                # all AWS APIs (e.g. moto); CLI v2 ignores AWS_ENDPOINT_URL
RUNTIME_ENDPOINT_URL="${VR_RUNTIME_ENDPOINT_URL:-}"    # sagemaker-runtime only (e.g. python -m sagemaker_local.runtime)
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEPLOY_DIR/.." && pwd)"
PYTHON="$REPO_ROOT/.venv/bin/python"; [ -x "$PYTHON" ] || PYTHON=python3  # the project's Python, for its modules
export AWS_PAGER=""

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not installed${2:+ ($2)}"; }

aws_api() {
  aws --region "$REGION" ${ENDPOINT_URL:+--endpoint-url "$ENDPOINT_URL"} --output json "$@"
}

aws_runtime() {
  local url="${RUNTIME_ENDPOINT_URL:-$ENDPOINT_URL}"
  aws --region "$REGION" ${url:+--endpoint-url "$url"} --output json sagemaker-runtime "$@"
}

account_id() {
  aws_api sts get-caller-identity --query Account --output text \
    || die "cannot call STS: are AWS credentials configured (aws configure, AWS_PROFILE, or a role)?"
}

# A suffix that orders names by creation time and keeps two deploys in the same second apart.
unique_stamp() {
  printf '%s-%s' "$(date -u +%Y%m%d-%H%M%S)" "$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')"
}

# True when the SageMaker resource ARN carries the tag managed-by=vr-deploy (created by these scripts).
managed_by_us() {
  [ "$(aws_api sagemaker list-tags --resource-arn "$1" --query "Tags[?Key=='managed-by'].Value" --output text 2>/dev/null)" = "vr-deploy" ]
}

# Creates the Model Package Group GROUP when missing (register.sh, pipeline.sh).
ensure_model_package_group() {
  if ! aws_api sagemaker describe-model-package-group --model-package-group-name "$1" >/dev/null 2>&1; then
    log "creating model package group $1"
    aws_api sagemaker create-model-package-group --model-package-group-name "$1" \
      --model-package-group-description "$PROJECT models (deploy/register.sh, deploy/pipeline.sh)" \
      --tags "Key=project,Value=$PROJECT" "Key=managed-by,Value=vr-deploy" >/dev/null
  fi
}

# Parses the options every script shares; sets SHIFT to how many arguments were consumed (0 if none matched).
common_option() {
  SHIFT=0
  case "$1" in
    --region) REGION="${2:?--region needs a value}"; SHIFT=2 ;;
    --endpoint-url) ENDPOINT_URL="${2:?--endpoint-url needs a value}"; SHIFT=2 ;;
    --runtime-endpoint-url) RUNTIME_ENDPOINT_URL="${2:?--runtime-endpoint-url needs a value}"; SHIFT=2 ;;
    --project) PROJECT="${2:?--project needs a value}"; SHIFT=2 ;;
  esac
}

COMMON_HELP="Common options:
  --region REGION               AWS region (default \$AWS_REGION, else us-east-1; now: $REGION)
  --endpoint-url URL            send every AWS API call there (e.g. a moto server); env VR_AWS_ENDPOINT_URL
  --runtime-endpoint-url URL    send sagemaker-runtime calls there (e.g. python -m sagemaker_local.runtime);
                                env VR_RUNTIME_ENDPOINT_URL
  --project NAME                tag value and default name prefix (default \$VR_PROJECT, else video-recommender)
  -h, --help                    this help"
