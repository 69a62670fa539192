#!/usr/bin/env bash
# Delete what deploy.sh created for one endpoint: its autoscaling, the endpoint, its configs and models.
set -euo pipefail
# shellcheck source=deploy/common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

usage() {
  cat <<EOF_USAGE
Usage: deploy/teardown.sh [--endpoint-name NAME] [--yes] [--delete-repository] [options]

Deletes the endpoint (and its autoscaling), then every endpoint config and model named <endpoint>-c-* /
<endpoint>-m-* that carries the tag managed-by=vr-deploy. Anything without that tag is never touched.
Succeeds when things are already gone. Asks for confirmation unless --yes.

Options:
  --endpoint-name NAME     default the project name
  --yes                    do not ask
  --delete-repository      also delete the ECR repository (and its images) if this project created it
  --repository NAME        that repository (default \$ECR_REPOSITORY, else the project name)
$COMMON_HELP
EOF_USAGE
}

ENDPOINT_NAME="$PROJECT"
YES=0
DELETE_REPOSITORY=0
REPOSITORY="${ECR_REPOSITORY:-$PROJECT}"
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --endpoint-name) ENDPOINT_NAME="${2:?}"; shift 2 ;;
    --yes|-y) YES=1; shift ;;
    --delete-repository) DELETE_REPOSITORY=1; shift ;;
    --repository) REPOSITORY="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
need aws "pip install -r requirements-dev.txt"

if [ "$YES" != 1 ]; then
  [ -t 0 ] || die "refusing to delete without --yes when not run interactively"
  read -r -p "Delete endpoint $ENDPOINT_NAME and its configs and models in $REGION? [y/N] " answer
  [[ "$answer" =~ ^[Yy] ]] || { log "nothing deleted"; exit 0; }
fi

if ENDPOINT_ARN="$(aws_api sagemaker describe-endpoint --endpoint-name "$ENDPOINT_NAME" --query EndpointArn --output text 2>/dev/null)"; then
  managed_by_us "$ENDPOINT_ARN" || die "endpoint $ENDPOINT_NAME was not created by these scripts (no managed-by=vr-deploy tag); not deleting it"
  RESOURCE="endpoint/$ENDPOINT_NAME/variant/AllTraffic"
  aws_api application-autoscaling delete-scaling-policy --service-namespace sagemaker --resource-id "$RESOURCE" \
    --scalable-dimension sagemaker:variant:DesiredInstanceCount --policy-name "$ENDPOINT_NAME-invocations" >/dev/null 2>&1 || true
  aws_api application-autoscaling deregister-scalable-target --service-namespace sagemaker --resource-id "$RESOURCE" \
    --scalable-dimension sagemaker:variant:DesiredInstanceCount >/dev/null 2>&1 || true
  log "deleting endpoint $ENDPOINT_NAME"
  aws_api sagemaker delete-endpoint --endpoint-name "$ENDPOINT_NAME" >/dev/null
else
  log "endpoint $ENDPOINT_NAME: already gone"
fi

delete_tagged() {  # delete_tagged KIND LIST-COMMAND COLLECTION NAME-FIELD ARN-FIELD MARKER
  local kind="$1" list="$2" collection="$3" name_field="$4" arn_field="$5" prefix="$ENDPOINT_NAME-$6-"
  aws_api sagemaker "$list" --name-contains "$prefix" --max-items 1000 \
    --query "${collection}[].[${name_field},${arn_field}]" --output text |
    while read -r resource_name resource_arn; do
      if [ -z "$resource_name" ] || [ "$resource_name" = "None" ] || [[ "$resource_name" != "$prefix"* ]]; then
        continue
      fi
      if managed_by_us "$resource_arn"; then
        log "deleting $kind $resource_name"
        aws_api sagemaker "delete-$kind" "--$kind-name" "$resource_name" >/dev/null 2>&1 || log "$kind $resource_name: already gone"
      else
        log "skipping $kind $resource_name: not tagged managed-by=vr-deploy"
      fi
    done
}
delete_tagged endpoint-config list-endpoint-configs EndpointConfigs EndpointConfigName EndpointConfigArn c
delete_tagged model list-models Models ModelName ModelArn m

# the rollout guardrails deploy.sh --rollout created
aws_api cloudwatch describe-alarms --alarm-name-prefix "$ENDPOINT_NAME-" --query 'MetricAlarms[].[AlarmName,AlarmArn]' --output text |
  while read -r alarm_name alarm_arn; do
    [ -n "$alarm_name" ] && [ "$alarm_name" != "None" ] || continue
    managed="$(aws_api cloudwatch list-tags-for-resource --resource-arn "$alarm_arn" --query "Tags[?Key=='managed-by'].Value" --output text)"
    if [ "$managed" = "vr-deploy" ]; then
      log "deleting alarm $alarm_name"
      aws_api cloudwatch delete-alarms --alarm-names "$alarm_name"
    else
      log "skipping alarm $alarm_name: not tagged managed-by=vr-deploy"
    fi
  done

# the dashboard deploy.sh created (dashboards carry no tags: ours by its name)
if aws_api cloudwatch get-dashboard --dashboard-name "$ENDPOINT_NAME-dashboard" >/dev/null 2>&1; then
  log "deleting dashboard $ENDPOINT_NAME-dashboard"
  aws_api cloudwatch delete-dashboards --dashboard-names "$ENDPOINT_NAME-dashboard"
fi

if [ "$DELETE_REPOSITORY" = 1 ]; then
  if REPO_ARN="$(aws_api ecr describe-repositories --repository-names "$REPOSITORY" --query 'repositories[0].repositoryArn' --output text 2>/dev/null)"; then
    managed="$(aws_api ecr list-tags-for-resource --resource-arn "$REPO_ARN" --query "tags[?Key=='managed-by'].Value" --output text)"
    [ "$managed" = "vr-deploy" ] || die "ECR repository $REPOSITORY was not created by these scripts; not deleting it"
    log "deleting ECR repository $REPOSITORY and its images"
    aws_api ecr delete-repository --repository-name "$REPOSITORY" --force >/dev/null
  else
    log "ECR repository $REPOSITORY: already gone"
  fi
fi
log "done"
