#!/usr/bin/env bash
# Shift traffic between an endpoint's production variants, promote the candidate, or roll it back.
set -euo pipefail
# shellcheck source=deploy/common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"

usage() {
  cat <<EOF_USAGE
Usage: deploy/traffic.sh --weights VARIANT=W[,VARIANT=W...] | --promote | --rollback [options]

  --weights AllTraffic=0.9,Candidate=0.1
                          new traffic weights (update-endpoint-weights-and-capacities: no new instances, in
                          seconds); weights are relative, at least one must be positive, every variant named
                          must exist on the endpoint
  --promote               the candidate becomes the only variant: a new endpoint config whose primary variant
                          serves the candidate's model, then update-endpoint (the old config stays for rollback)
  --rollback              the candidate is removed: a new endpoint config with the primary variant only
  --if REPORT.json        with --promote: follow an attribution report (python -m monitoring.attribution, control
                          = the primary variant): promote when it judges the candidate better, roll back when
                          worse, change nothing when undecided (exit 2); its figures go to CloudWatch first
                          (namespace VideoRecommender, dimensions EndpointName and Variant)
  --candidate-variant N   the candidate's variant name (default Candidate)
  --endpoint-name NAME    endpoint (default the project name)
  --no-wait               do not wait for InService
$COMMON_HELP
EOF_USAGE
}

ENDPOINT_NAME="$PROJECT"
ACTION=""
WEIGHTS=""
CANDIDATE="Candidate"
REPORT=""
WAIT=1
while [ $# -gt 0 ]; do
  common_option "$@"; if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
  case "$1" in
    --weights) ACTION=weights; WEIGHTS="${2:?--weights needs VARIANT=W,...}"; shift 2 ;;
    --promote) ACTION=promote; shift ;;
    --rollback) ACTION=rollback; shift ;;
    --if) REPORT="${2:?--if needs an attribution report (attribution.json)}"; shift 2 ;;
    --candidate-variant) CANDIDATE="${2:?}"; shift 2 ;;
    --endpoint-name) ENDPOINT_NAME="${2:?}"; shift 2 ;;
    --no-wait) WAIT=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
[ -n "$ACTION" ] || { usage >&2; die "give --weights, --promote or --rollback"; }
[ -z "$REPORT" ] || [ "$ACTION" = promote ] || die "--if goes with --promote"
[ -z "$REPORT" ] || [ -r "$REPORT" ] || die "--if $REPORT: no such report"
need aws "pip install -r requirements-dev.txt"
need python3

WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
aws_api sagemaker describe-endpoint --endpoint-name "$ENDPOINT_NAME" >"$WORK/endpoint.json" 2>"$WORK/describe.err" \
  || die "endpoint $ENDPOINT_NAME not found ($(tr -d '\n' <"$WORK/describe.err"))"
managed_by_us "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["EndpointArn"])' "$WORK/endpoint.json")" \
  || die "endpoint $ENDPOINT_NAME was not created by these scripts; refusing to change it"

# Everything the three actions need to know or refuse, computed in one place from the endpoint's description.
python3 - "$WORK/endpoint.json" "$ACTION" "$WEIGHTS" "$CANDIDATE" "$WORK" <<'EOF_PY' || exit 1
import json, sys
endpoint, action, weights, candidate, work = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
variants = [variant["VariantName"] for variant in endpoint["ProductionVariants"]]
def fail(message):
    print(f"[traffic.sh] error: {message}", file=sys.stderr)
    sys.exit(1)
if action == "weights":
    desired = []
    for item in weights.split(","):
        name, _, value = item.partition("=")
        if name not in variants:
            fail(f"variant {name!r} is not on endpoint {endpoint['EndpointName']} (it has {', '.join(variants)})")
        try:
            weight = float(value)
        except ValueError:
            fail(f"weight of {name} must be a number, got {value!r}")
        if weight < 0:
            fail(f"weight of {name} must not be negative, got {weight}")
        desired.append({"VariantName": name, "DesiredWeight": weight})
    if sum(item["DesiredWeight"] for item in desired) <= 0:
        fail("weights must add up to a positive value: some variant has to take the traffic")
    json.dump(desired, open(f"{work}/weights.json", "w"))
else:
    if candidate not in variants:
        fail(f"endpoint {endpoint['EndpointName']} has no variant {candidate!r} to {action} (it has {', '.join(variants)})")
    if len(variants) != 2:
        fail(f"--{action} expects a primary variant and {candidate!r}, the endpoint has {', '.join(variants)}")
    open(f"{work}/primary", "w").write(next(name for name in variants if name != candidate))
EOF_PY

if [ -n "$REPORT" ]; then
  # The report decides: its verdict on the candidate against the primary variant, and its figures as metrics.
  python3 - "$REPORT" "$(cat "$WORK/primary")" "$CANDIDATE" "$ENDPOINT_NAME" "$WORK" <<'EOF_PY' || exit 1
import json, sys
path, primary, candidate, endpoint, work = sys.argv[1:]
def fail(message):
    print(f"[traffic.sh] error: --if {path}: {message}", file=sys.stderr)
    sys.exit(1)
try:
    report = json.load(open(path))
    control, variants, verdicts = report["control"], report["variants"], report["verdicts"]
except (OSError, ValueError, KeyError, TypeError) as error:
    fail(f"not an attribution report ({type(error).__name__}: {error})")
if control != primary:
    fail(f"it judges against {control!r}, but the endpoint's primary variant is {primary!r}")
if candidate not in verdicts:
    fail(f"it has no verdict on {candidate!r} (it judged {', '.join(verdicts) or 'nothing'})")
figures = {"TakeRate": ("take_rate", "None"), "SatisfyingTakeRate": ("satisfying_take_rate", "None"),
           "WatchMinutesPer1000Lists": ("minutes_per_1000_lists", "None")}
metrics = []
for variant, measured in variants.items():
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "Variant", "Value": variant}]
    metrics.append({"MetricName": "ListsServed", "Dimensions": dimensions, "Value": measured["lists"], "Unit": "Count"})
    metrics += [{"MetricName": name, "Dimensions": dimensions, "Value": measured[key]["value"], "Unit": unit}
                for name, (key, unit) in figures.items()]
json.dump(metrics, open(f"{work}/metrics.json", "w"))
open(f"{work}/verdict", "w").write(verdicts[candidate]["verdict"])
EOF_PY
  aws_api cloudwatch put-metric-data --namespace VideoRecommender --metric-data "file://$WORK/metrics.json"
  VERDICT="$(cat "$WORK/verdict")"
  case "$VERDICT" in
    better) log "the report judges $CANDIDATE better: promoting it" ;;
    worse) log "the report judges $CANDIDATE worse: rolling it back"; ACTION=rollback ;;
    *) log "the report is $VERDICT on $CANDIDATE: traffic unchanged"; exit 2 ;;
  esac
fi

if [ "$ACTION" = weights ]; then
  log "setting weights on $ENDPOINT_NAME: $WEIGHTS"
  aws_api sagemaker update-endpoint-weights-and-capacities --endpoint-name "$ENDPOINT_NAME" \
    --desired-weights-and-capacities "file://$WORK/weights.json" >/dev/null
else
  PRIMARY="$(cat "$WORK/primary")"
  CONFIG="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["EndpointConfigName"])' "$WORK/endpoint.json")"
  aws_api sagemaker describe-endpoint-config --endpoint-config-name "$CONFIG" >"$WORK/config.json"
  STAMP="$(unique_stamp)"
  NEW_CONFIG="$ENDPOINT_NAME-c-$STAMP"
  # The kept variant is the primary one (its name, instances and settings), serving the candidate's model on --promote.
  (cd "$REPO_ROOT" && "$PYTHON" -m deploy.rollout "$WORK/config.json" --keep "$PRIMARY" --name "$NEW_CONFIG" \
    --project "$PROJECT" --model-from "$( [ "$ACTION" = promote ] && echo "$CANDIDATE" || echo "$PRIMARY" )") \
    >"$WORK/new-config.json"
  log "$ACTION: $ENDPOINT_NAME moves to $NEW_CONFIG ($PRIMARY serving the $( [ "$ACTION" = promote ] && echo candidate\'s || echo current ) model)"
  aws_api sagemaker create-endpoint-config --cli-input-json "file://$WORK/new-config.json" >/dev/null
  aws_api sagemaker update-endpoint --endpoint-name "$ENDPOINT_NAME" --endpoint-config-name "$NEW_CONFIG" >/dev/null
fi
if [ "$WAIT" = 1 ]; then
  aws_api sagemaker wait endpoint-in-service --endpoint-name "$ENDPOINT_NAME" \
    || die "endpoint $ENDPOINT_NAME did not return to InService"
fi
aws_api sagemaker describe-endpoint --endpoint-name "$ENDPOINT_NAME" \
  --query 'ProductionVariants[].{variant: VariantName, weight: CurrentWeight, desired: DesiredWeight}'
