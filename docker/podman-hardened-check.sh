#!/usr/bin/env bash
# Runs the nn-service image under podman with docker/compose.yaml's hardening flags, and checks
# that the API and a worker still work that way: read-only root filesystem with a /tmp tmpfs,
# all capabilities dropped, no-new-privileges, CPU/memory/pids limits, tini-style init.
#
#   sudo apt-get install -y podman runc debootstrap      # once (Debian/Ubuntu)
#   sudo bash docker/podman-hardened-check.sh            # from the repository root
#
# Needs root (debootstrap, podman storage in a scratch folder), and, for the worker, a PostgreSQL
# and a Redis the containers reach on the host network: NNS_CHECK_DATABASE_URL and
# NNS_CHECK_REDIS_URL (defaults: the local test servers). Without `python:3.11-slim` in reach it
# makes a stand-in from Debian bookworm (python3 3.11), as /work/shared/CONTAINERS.md describes.
# Everything it makes lives in a scratch folder that is removed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATABASE_URL=${NNS_CHECK_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
REDIS_URL=${NNS_CHECK_REDIS_URL:-redis://127.0.0.1:6379/0}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PORT=${NNS_CHECK_PORT:-18000}

S=$(mktemp -d)
mkdir -p "$S/tmp"
export CONTAINERS_CONF=$S/containers.conf TMPDIR=$S/tmp
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
P=(podman --root "$S/root" --runroot "$S/run" --storage-driver vfs --tmpdir "$S/tmp")

cleanup() {
    "${P[@]}" rm -f -t 5 nns-api nns-worker >/dev/null 2>&1 || true
    "${P[@]}" system reset -f >/dev/null 2>&1 || true
    rm -rf "$S"
}
trap cleanup EXIT

# The flags docker/compose.yaml gives the api and worker containers.
HARDENED=(--read-only --tmpfs /tmp:size=256m,mode=1777 --cap-drop ALL
          --security-opt no-new-privileges --init --pids-limit 512)

step() { printf '\n== %s\n' "$*"; }

step "base image (Debian bookworm stand-in for python:3.11-slim)"
debootstrap --variant=minbase bookworm "$S/rootfs" "$MIRROR" >"$S/debootstrap.log"
mkdir -p "$S/rootfs/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/* "$S/rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
tar -C "$S/rootfs" -c . | "${P[@]}" import - localhost/debian-base >/dev/null
rm -rf "$S/rootfs"
mkdir -p "$S/base"
cat >"$S/base/Dockerfile" <<'EOF'
FROM localhost/debian-base
# pip's own CA bundle does not know a site's extra CAs (copied in above); the system store does.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
      python3-pip python-is-python3 ca-certificates && update-ca-certificates \
 && rm -rf /var/lib/apt/lists/*
EOF
"${P[@]}" build -q -t docker.io/library/python:3.11-slim "$S/base" >/dev/null

step "nn-service image (docker/Dockerfile)"
"${P[@]}" build -q --format docker -f "$ROOT/docker/Dockerfile" -t nn-service "$ROOT" >/dev/null

step "api: hardened, SQLite on a volume, published on 127.0.0.1:$PORT"
"${P[@]}" run -d --name nns-api "${HARDENED[@]}" --cpus 2 --memory 2g \
    -v nns-data:/data -p "127.0.0.1:$PORT:8000" nn-service >/dev/null
for _ in $(seq 120); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/readyz"; echo
KEY=$("${P[@]}" exec nns-api cat /data/admin-key)
curl -fsS -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/whoami"; echo
echo "uid in the container: $("${P[@]}" exec nns-api id -u)"
if "${P[@]}" exec nns-api sh -c 'touch /app/x' 2>/dev/null; then
    echo "FAIL: the root filesystem is writable"; exit 1
fi
echo "root filesystem: read-only; capabilities: $("${P[@]}" exec nns-api grep CapEff /proc/1/status)"

step "worker: hardened, host network to $(echo "$REDIS_URL" | sed 's#//[^@]*@#//***@#')"
"${P[@]}" run -d --name nns-worker "${HARDENED[@]}" --cpus 1 --memory 2g --network host \
    -e NNS_DATABASE_URL="$DATABASE_URL" -e NNS_REDIS_URL="$REDIS_URL" -e NNS_RUNNER=rq \
    -e NNS_RQ_QUEUE="nns-podman-check-$$" nn-service nn-service worker >/dev/null
for _ in $(seq 60); do
    "${P[@]}" exec nns-worker nn-service worker --check >/dev/null 2>&1 && break
    sleep 1
done
"${P[@]}" exec nns-worker nn-service worker --check

step "all checks passed"
