#!/usr/bin/env bash
# Builds (or reuses) a Python base image from Debian's packages, for machines where the
# Dockerfile's default base (python:3.11.x-slim from Docker Hub) cannot be pulled.
#
#   debian-base.sh           build if needed; last stdout line: the image tag
#   debian-base.sh --tag     print the tag this recipe gives, build nothing
#
# mmdebstrap (installed with apt when missing, as root) makes a minbase Debian root with
# python3 (3.11 on bookworm, the project's version), python3-venv, ca-certificates and passwd
# (groupadd/useradd for the runtime stage), streamed into `docker import`. The tag carries a
# hash of the recipe (this file and the CA bundle it copies in), so an unchanged recipe is not
# rebuilt: `docker image inspect` of the tag is the whole warm run.
#
# The machine's CA bundle (CA_BUNDLE, default /etc/ssl/certs/ca-certificates.crt) replaces
# Debian's in the image: pip inside the build only trusts the package registry's TLS chain
# when it is there (a proxy on this kind of machine re-signs TLS). Keep such a base to CI.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
suite="${DEBIAN_SUITE:-bookworm}"
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
packages="python3,python3-venv,ca-certificates,passwd"
log() { echo "debian-base: $*" >&2; }

[[ -r "$ca_bundle" ]] || {
  log "no CA bundle at $ca_bundle: set CA_BUNDLE to the PEM file this machine trusts"
  exit 1
}
recipe="$(cat "${BASH_SOURCE[0]}" "$ca_bundle" | sha256sum | cut -c1-12)"
tag="tflite-python-base:$suite-$recipe"
if [[ "${1:-}" == "--tag" ]]; then
  echo "$tag"
  exit 0
fi

docker="$(bash "$here/docker-engine.sh" | tail -1)"
if "$docker" image inspect "$tag" > /dev/null 2>&1; then
  log "$tag exists (recipe unchanged)"
  echo "$tag"
  exit 0
fi

if ! command -v mmdebstrap > /dev/null; then
  [[ "$(id -u)" == 0 ]] || {
    log "mmdebstrap is missing and this is not root: sudo apt-get install mmdebstrap"
    exit 1
  }
  log "installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >&2
fi

log "building $tag from Debian $suite ($packages)"
# The ENV lines give the imported image what a Dockerfile base provides: a PATH (an imported
# image has none, and the runtime stage extends $PATH) and a UTF-8 locale for Python.
# "$1" in a hook is mmdebstrap's root directory, expanded by the hook's own shell.
# shellcheck disable=SC2016
mmdebstrap --quiet --variant=minbase --include="$packages" \
  --customize-hook="copy-in $ca_bundle /etc/ssl/certs" \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
  "$suite" - |
  "$docker" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "tflite-operator CI base: Debian $suite minbase + $packages + this machine's CA bundle" \
    - "$tag" > /dev/null
echo "$tag"
