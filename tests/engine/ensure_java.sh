#!/usr/bin/env bash
# Make a Java 17+ runtime available for the Spark tests (pyspark 4 needs it). Idempotent.
# Installs Debian's openjdk-17-jre-headless when no suitable java answers and we are root; exits 1 otherwise, and
# the tests then skip with the reason printed here.
set -euo pipefail
# One at a time: the test run's workers may all ask at once, and apt and dockerd each allow one.
exec 9>/tmp/vr-ensure.lock
flock -w 1200 9 || { echo "$0: /tmp/vr-ensure.lock still held after 20 minutes (see: fuser /tmp/vr-ensure.lock)" >&2; exit 1; }

java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }

if command -v java >/dev/null && [ "$(java_major)" -ge 17 ] 2>/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "no Java 17+ runtime, and not root to install openjdk-17-jre-headless" >&2
  exit 1
fi
if [ ! -f /var/lib/apt/lists/.vr-updated ]; then
  apt-get update -qq && touch /var/lib/apt/lists/.vr-updated
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null \
  || { echo "could not install openjdk-17-jre-headless" >&2; exit 1; }
command -v java >/dev/null && [ "$(java_major)" -ge 17 ] || { echo "java still missing after the install" >&2; exit 1; }
