#!/usr/bin/env bash
# EMR bootstrap action for deploy/spark_job.sh: the Python packages the Spark trainer's driver imports.
#   aws emr create-cluster ... --bootstrap-actions Path=s3://BUCKET/code/emr_bootstrap.sh,Args=[s3://BUCKET/code/requirements.txt]
set -euo pipefail
requirements="${1:?usage: emr_bootstrap.sh s3://BUCKET/code/requirements.txt}"
aws s3 cp "$requirements" /tmp/vr-requirements.txt
sudo python3 -m pip install --quiet -r /tmp/vr-requirements.txt
