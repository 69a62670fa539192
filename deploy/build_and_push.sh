#!/usr/bin/env bash
# Build the linux/amd64 image, make sure its ECR repository exists, push it under an immutable tag and `latest`.
set -euo pipefail
# shellcheck source=deploy/common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

usage() {
  cat <<EOF_USAGE
Usage: deploy/build_and_push.sh [options]

Builds the image (linux/amd64, a Docker v2 manifest), creates the ECR repository if missing (scan on push),
logs in with 'aws ecr get-login-password', tags it with an immutable tag and 'latest', pushes both, and
prints the immutable image URI on stdout.

Options:
  --repository NAME     ECR repository (default \$ECR_REPOSITORY, else the project name)
  --tag TAG             immutable tag (default: git short sha + UTC timestamp, e.g. 3f2c1ab-20261124T0800Z)
  --registry HOST       push there instead of <account>.dkr.ecr.<region>.amazonaws.com (local testing only)
  --base-image IMAGE    BASE_IMAGE build argument (default python:3.11-slim)
  --docker PATH         docker client (default \$DOCKER, else docker)
$COMMON_HELP
EOF_USAGE
}

REPOSITORY="${ECR_REPOSITORY:-$PROJECT}"
TAG=""
REGISTRY=""
BASE_IMAGE="python:3.11-slim"
DOCKER="${DOCKER:-docker}"
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --repository) REPOSITORY="${2:?}"; shift 2 ;;
    --tag) TAG="${2:?}"; shift 2 ;;
    --registry) REGISTRY="${2:?}"; shift 2 ;;
    --base-image) BASE_IMAGE="${2:?}"; shift 2 ;;
    --docker) DOCKER="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
need aws "pip install -r requirements-dev.txt"
need "$DOCKER"
[[ "$REPOSITORY" =~ ^[a-z0-9][a-z0-9._/-]*$ ]] || die "repository name '$REPOSITORY' is not a valid ECR name"

if [ -z "$TAG" ]; then
  sha="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)"
  TAG="$sha-$(date -u +%Y%m%dT%H%M%SZ)"
fi
[ "$TAG" != "latest" ] || die "--tag must be immutable; 'latest' is added anyway"

ACCOUNT="$(account_id)"
REGISTRY="${REGISTRY:-$ACCOUNT.dkr.ecr.$REGION.amazonaws.com}"
IMAGE="$REGISTRY/$REPOSITORY"

if aws_api ecr describe-repositories --repository-names "$REPOSITORY" >/dev/null 2>&1; then
  log "ECR repository $REPOSITORY exists"
else
  log "creating ECR repository $REPOSITORY (scan on push)"
  aws_api ecr create-repository --repository-name "$REPOSITORY" \
    --image-scanning-configuration scanOnPush=true \
    --tags "Key=project,Value=$PROJECT" "Key=managed-by,Value=vr-deploy" >/dev/null
fi

log "logging in to $REGISTRY"
aws_api ecr get-login-password | "$DOCKER" login --username AWS --password-stdin "$REGISTRY" >/dev/null

log "building $IMAGE:$TAG for linux/amd64"
if "$DOCKER" buildx version >/dev/null 2>&1; then
  # buildx would add provenance attestations, making an OCI index that SageMaker's CreateModel rejects.
  "$DOCKER" buildx build --platform linux/amd64 --provenance=false --load \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE:$TAG" -t "$IMAGE:latest" "$REPO_ROOT" >&2
else
  DOCKER_BUILDKIT=1 "$DOCKER" build --platform linux/amd64 \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE:$TAG" -t "$IMAGE:latest" "$REPO_ROOT" >&2
fi
ARCH="$("$DOCKER" image inspect "$IMAGE:$TAG" --format '{{.Architecture}}')"
[ "$ARCH" = "amd64" ] || die "built image is $ARCH, SageMaker x86 instances need amd64"

log "pushing $IMAGE:$TAG and :latest"
"$DOCKER" push "$IMAGE:$TAG" >&2
"$DOCKER" push "$IMAGE:latest" >&2
echo "$IMAGE:$TAG"
