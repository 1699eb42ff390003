#!/usr/bin/env bash
# make images: both targets of the Dockerfile, built with BuildKit, cached.
#
#   images.sh    engine, base, operator, converter; prints the time each step took
#
# Knobs (the Makefile passes them):
#   TFLITE_OPERATOR_IMAGE   default tflite-operator:ci
#   TFLITE_CONVERTER_IMAGE  default tflite-converter:ci
#   IMAGES_BASE             the base image; empty: the Dockerfile's default (ARG BASE) when it
#                           is present or can be pulled within PULL_TIMEOUT seconds (default
#                           30), else a base made from Debian's packages (hack/debian-base.sh)
# (Not CONVERTER_IMAGE: that is the operator's own setting, read from the environment.)
#
# Warm runs cost little: the Debian base is tagged by a hash of its recipe and BuildKit reuses
# every layer whose inputs are unchanged (no change: under a second). A change to operator/,
# pyproject.toml or README.md reinstalls the venvs (~80 s): the Dockerfile's pip cache mount
# would keep the wheels, but on this kind of machine it stays empty, because the package
# index is reached through a proxy whose responses carry no caching headers, and pip stores
# only what HTTP caching allows (measured: 0 B in the cache mount after a full build).
# The build does not use this machine's pip settings (/etc/pip.conf, PIP_FIND_LINKS): a build
# sees neither, and everything it installs comes from the package index.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
operator_image="${TFLITE_OPERATOR_IMAGE:-tflite-operator:ci}"
converter_image="${TFLITE_CONVERTER_IMAGE:-tflite-converter:ci}"
base="${IMAGES_BASE:-}"
pull_timeout="${PULL_TIMEOUT:-30}"

log() { echo "images: $*" >&2; }
timings=()
step() { # step NAME COMMAND...: runs it, records its wall time
  local name="$1" start=$SECONDS
  shift
  "$@"
  timings+=("$(printf '%-36s %4ds' "$name" $((SECONDS - start)))")
}

engine() { docker="$(bash "$root/hack/docker-engine.sh" | tail -1)"; }

choose_base() {
  if [[ -n "$base" ]]; then
    log "base: $base (IMAGES_BASE)"
    return
  fi
  local default
  default="$(awk -F= '/^ARG BASE=/ { print $2; exit }' "$root/Dockerfile")"
  [[ -n "$default" ]] || {
    log "no 'ARG BASE=' line in the Dockerfile"
    exit 1
  }
  if "$docker" image inspect "$default" > /dev/null 2>&1; then
    base="$default"
  elif timeout "$pull_timeout" "$docker" pull -q "$default" > /dev/null 2>&1; then
    base="$default"
  else
    log "cannot pull $default (no registry within ${pull_timeout}s): a base from Debian's packages"
    base="$(bash "$root/hack/debian-base.sh" | tail -1)"
  fi
  log "base: $base"
}

build() { # build TARGET TAG
  log "building --target $1 -t $2"
  DOCKER_BUILDKIT=1 "$docker" build --progress="${BUILD_PROGRESS:-plain}" \
    --build-arg "BASE=$base" --target "$1" -t "$2" "$root"
}

step "docker engine" engine
step "base image" choose_base
step "operator ($operator_image)" build operator "$operator_image"
step "converter ($converter_image)" build converter "$converter_image"

printf '\nimages: time per step\n' >&2
printf '  %s\n' "${timings[@]}" >&2
"$docker" image ls --format '  {{.Repository}}:{{.Tag}}  {{.ID}}  {{.Size}}' \
  "$operator_image" >&2
"$docker" image ls --format '  {{.Repository}}:{{.Tag}}  {{.ID}}  {{.Size}}' \
  "$converter_image" >&2
