#!/usr/bin/env bash
# Installs what the real node (node.py) needs and is not there yet, then builds
# its images (the static pause and probe programs, images.py).
#
#   node-deps.sh     install if missing (apt-get, as root), build the images
#
# Packages: containerd (1.6 in Debian 12: a second instance runs per test
# cluster, never the system one), runc, containernetworking-plugins (bridge,
# host-local, loopback, portmap), gcc + libc6-dev (gcc -static), iproute2 and
# util-linux (ip, unshare, mount). Without root it only reports what is missing:
# the real-node tests then skip (CI=true makes them fail).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "node-deps: $*" >&2; }

declare -A need=(
  [containerd]=containerd [containerd-shim-runc-v2]=containerd [ctr]=containerd
  [runc]=runc [gcc]=gcc [ip]=iproute2 [unshare]=util-linux
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" > /dev/null || missing+=("${need[$cmd]}")
done
for plugin in bridge host-local loopback portmap; do
  [[ -x /usr/lib/cni/$plugin ]] || missing+=(containernetworking-plugins)
done
[[ -e /usr/lib/x86_64-linux-gnu/libc.a || -e /usr/lib/aarch64-linux-gnu/libc.a ]] ||
  missing+=(libc6-dev)
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get > /dev/null; then
    log "missing: ${missing[*]}; install them as root (apt-get install ${missing[*]}): real-node tests will skip"
    exit 0
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: containerd must not pull docker.io's services in.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi

if command -v gcc > /dev/null; then
  (cd "$here/.." && "${PYTHON:-python3}" -m controlplane.images) >&2
fi
