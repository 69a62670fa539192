#!/usr/bin/env bash
# Make a Docker engine and the base image available for the container tests, on a machine that has neither
# a running daemon nor access to Docker Hub. Idempotent; safe to run before every test session.
#
#   tests/engine/ensure_engine.sh [BASE_IMAGE]      (default python:3.11-slim)
#
# 1. Installs Debian's docker.io (with docker-registry for the deploy tests and docker-compose for the SageMaker SDK's
#    local mode) if missing, and starts dockerd in the background with its own data root and
#    log file (no systemd here), unless a daemon already answers.
# 2. If BASE_IMAGE is absent and cannot be pulled, builds a LOCAL STAND-IN under that name with debootstrap
#    (bookworm minbase + python3, venv, pip, CA certificates incl. the host's extra CAs so pip can verify TLS
#    through this network's proxy) and `docker import`s it. The root filesystem tarball is cached in
#    $VR_ENGINE_CACHE. The stand-in is for local tests only: never push it to a real registry.
set -euo pipefail
# One at a time: the test run's workers may all ask at once, and apt and dockerd each allow one.
exec 9>/tmp/vr-ensure.lock
flock -w 1200 9 || { echo "$0: /tmp/vr-ensure.lock still held after 20 minutes (see: fuser /tmp/vr-ensure.lock)" >&2; exit 1; }

BASE_IMAGE="${1:-python:3.11-slim}"
DATA_ROOT="${VR_DOCKER_DATA_ROOT:-/var/lib/vr-docker}"
LOG_FILE="${VR_DOCKER_LOG:-/var/log/vr-dockerd.log}"
CACHE="${VR_ENGINE_CACHE:-/var/cache/vr-recommender}"
DEBIAN_MIRROR="${VR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { printf '[ensure_engine] %s\n' "$*" >&2; }

apt_install() {
  if [ ! -f /var/lib/apt/lists/.vr-updated ]; then
    apt-get update -qq && touch /var/lib/apt/lists/.vr-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v dockerd >/dev/null || ! command -v /usr/bin/docker >/dev/null; then
  log "installing docker.io"
  apt_install docker.io
fi
if ! command -v docker-registry >/dev/null; then  # the deploy tests' stand-in for ECR's registry
  log "installing docker-registry"
  apt_install docker-registry
fi
if ! command -v docker-compose >/dev/null; then  # what the sagemaker SDK's local mode runs containers with
  log "installing docker-compose"
  apt_install docker-compose
fi

if ! /usr/bin/docker info >/dev/null 2>&1; then
  log "starting dockerd (data root $DATA_ROOT, log $LOG_FILE)"
  mkdir -p "$DATA_ROOT"
  # 9>&-: the daemon outlives this script and must not keep holding the lock (ensure_java.sh waits on it).
  nohup dockerd --data-root "$DATA_ROOT" --log-level warn >"$LOG_FILE" 2>&1 9>&- &
  for _ in $(seq 1 60); do
    /usr/bin/docker info >/dev/null 2>&1 && break
    sleep 1
  done
  /usr/bin/docker info >/dev/null 2>&1 || { log "dockerd did not start; see $LOG_FILE"; tail -20 "$LOG_FILE" >&2; exit 1; }
fi

if /usr/bin/docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  exit 0
fi
if timeout 60 /usr/bin/docker pull "$BASE_IMAGE" >/dev/null 2>&1; then
  exit 0
fi

log "$BASE_IMAGE cannot be pulled: building a local stand-in with debootstrap (about a minute)"
mkdir -p "$CACHE"
TARBALL="$CACHE/bookworm-python3-slim-rootfs-v2.tar"
if [ ! -s "$TARBALL" ]; then
  command -v debootstrap >/dev/null || apt_install debootstrap
  ROOTFS="$(mktemp -d)"
  trap 'rm -rf "$ROOTFS"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$ROOTFS" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { log "debootstrap failed; see $CACHE/debootstrap.log"; tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
  fi
  chroot "$ROOTFS" update-ca-certificates >/dev/null
  rm -f "$ROOTFS"/usr/lib/python3*/EXTERNALLY-MANAGED
  ln -sf /usr/bin/python3 "$ROOTFS/usr/local/bin/python"
  ln -sf /usr/bin/pip3 "$ROOTFS/usr/local/bin/pip"
  # As lean as the real slim image: no apt caches or lists, documentation, man pages or translations.
  rm -rf "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* \
    "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/info/*
  tar -C "$ROOTFS" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
fi
/usr/bin/docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'LABEL vr.local-stand-in=true' \
  --change 'CMD ["python3"]' \
  "$TARBALL" "$BASE_IMAGE" >/dev/null
log "imported local stand-in $BASE_IMAGE (label vr.local-stand-in=true: never push it anywhere real)"
