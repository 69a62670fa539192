#!/usr/bin/env bash
# Train on an existing Spark cluster: spark-submit to a master URL, or an EMR step; the model lands in S3.
set -euo pipefail
# shellcheck source=deploy/common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

usage() {
  cat <<EOF_USAGE
Usage: deploy/spark_job.sh --events URI --output s3://BUCKET/PREFIX/ (--master URL | --emr-cluster-id ID --code-s3 s3://...)
                           [-- train_spark options]

Ships features/ and vrmodels/ as a zip (--py-files) and runs vrmodels/train_spark.py, which reads the events,
trains, writes the model directory on the driver and uploads model.tar.gz to --output, ready for
deploy/deploy.sh --model-data-url. The driver needs requirements.txt installed (on EMR: deploy/emr_bootstrap.sh as a
bootstrap action); executors need only Spark.

  --events URI           events to read: s3a://bucket/events/ (or hdfs://, or a local path with a local master)
  --output S3URI         where model.tar.gz goes, e.g. s3://my-bucket/models/video-recommender/spark-2026-11/
  --master URL           spark-submit --master URL (spark://host:7077, yarn, local[2], ...): client mode, from here
  --emr-cluster-id ID    add an EMR step instead (cluster mode); needs --code-s3 for the code
  --code-s3 S3URI        where the code zip and entry point are uploaded for EMR
  --spark-submit PATH    default: spark-submit on PATH (pip's pyspark installs one)
  -- ARGS                passed to vrmodels/train_spark.py (e.g. -- --rank 64 --reg-param 0.3 --min-user-events 2)
$COMMON_HELP
EOF_USAGE
}

EVENTS=""
OUTPUT=""
MASTER=""
CLUSTER_ID=""
CODE_S3=""
SPARK_SUBMIT="spark-submit"
EXTRA=()
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --events) EVENTS="${2:?}"; shift 2 ;;
    --output) OUTPUT="${2:?}"; shift 2 ;;
    --master) MASTER="${2:?}"; shift 2 ;;
    --emr-cluster-id) CLUSTER_ID="${2:?}"; shift 2 ;;
    --code-s3) CODE_S3="${2:?}"; shift 2 ;;
    --spark-submit) SPARK_SUBMIT="${2:?}"; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
[ -n "$EVENTS" ] || die "--events is required"
[[ "$OUTPUT" =~ ^s3://[^/]+/ ]] || die "--output must be s3://bucket/prefix/, got '${OUTPUT}'"
if [ -n "$MASTER" ] && [ -n "$CLUSTER_ID" ]; then die "give --master or --emr-cluster-id, not both"; fi
[ -n "$MASTER$CLUSTER_ID" ] || die "give --master URL (spark-submit) or --emr-cluster-id ID (an EMR step)"
need python3

WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
(cd "$REPO_ROOT" && python3 -m zipfile -c "$WORK/vr.zip" features vrmodels >/dev/null)
cp "$REPO_ROOT/vrmodels/train_spark.py" "$WORK/train_spark.py"
ARGS=(--upload "$OUTPUT" --events "$EVENTS" "${EXTRA[@]}")

if [ -n "$MASTER" ]; then
  need "$SPARK_SUBMIT" "pip install -r requirements-spark.txt"
  log "spark-submit to $MASTER: $EVENTS → $OUTPUT"
  # the driver runs here and uploads with boto3: the same S3 endpoint as this script's aws CLI calls
  if [ -n "$ENDPOINT_URL" ]; then export AWS_ENDPOINT_URL_S3="$ENDPOINT_URL"; fi
  ARGS+=(--models-root "$WORK/models")
  "$SPARK_SUBMIT" --master "$MASTER" --deploy-mode client --py-files "$WORK/vr.zip" \
    --conf spark.sql.session.timeZone=UTC "$WORK/train_spark.py" "${ARGS[@]}" --master "$MASTER"
else
  need aws "pip install -r requirements-dev.txt"
  [[ "$CODE_S3" =~ ^s3://[^/]+/ ]] || die "--code-s3 s3://bucket/prefix/ is required with --emr-cluster-id"
  code="${CODE_S3%/}"
  aws_api s3 cp "$WORK/vr.zip" "$code/vr.zip" >/dev/null
  aws_api s3 cp "$WORK/train_spark.py" "$code/train_spark.py" >/dev/null
  ARGS+=(--models-root models)  # relative to the driver's YARN container, which YARN cleans up
  python3 - "$code" "${ARGS[@]}" >"$WORK/steps.json" <<'EOF_PY'
import json, sys
code, args = sys.argv[1], sys.argv[2:]
print(json.dumps([{
    "Type": "Spark", "Name": "video-recommender train_spark", "ActionOnFailure": "CONTINUE",
    "Args": ["--deploy-mode", "cluster", "--py-files", f"{code}/vr.zip", "--conf", "spark.sql.session.timeZone=UTC",
             f"{code}/train_spark.py", *args, "--master", "yarn"],
}]))
EOF_PY
  step="$(aws_api emr add-steps --cluster-id "$CLUSTER_ID" --steps "file://$WORK/steps.json" --query 'StepIds[0]' --output text)"
  log "EMR step $step added to $CLUSTER_ID; follow it with: aws emr describe-step --cluster-id $CLUSTER_ID --step-id $step"
  echo "$step"
fi
