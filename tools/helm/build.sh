#!/usr/bin/env bash
# Finds or builds the helm the chart tests use, from the Go module pinned in go.mod.
#
#   build.sh               build if needed; last stdout line: the helm binary's path
#   build.sh --print-path  locate only: print the path if a usable helm is there,
#                          exit 1 (with the reason on stderr) if not; never builds
#
# Order: HELM_BIN (a helm binary you name), then `helm` on PATH, then our own build
# cached in ${TFLITE_OPERATOR_CACHE:-~/.cache/tflite-operator}/helm/<version>/helm.
# HELM_FROM_SOURCE=1 ignores a helm on PATH (CI uses it so that every run tests the
# pinned version, not whatever the machine happens to have).
#
# Progress goes to stderr so that stdout stays machine-readable.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="build"
case "${1:-}" in
  "") ;;
  --print-path | --locate) mode="locate" ;;
  -h | --help)
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "build.sh: unknown argument: $1 (try --help)" >&2
    exit 2
    ;;
esac

log() { echo "helm: $*" >&2; }

if [[ -n "${HELM_BIN:-}" ]]; then
  if [[ ! -x "$HELM_BIN" ]]; then
    log "HELM_BIN is set but '$HELM_BIN' is not an executable file"
    exit 1
  fi
  echo "$HELM_BIN"
  exit 0
fi
if [[ "${HELM_FROM_SOURCE:-0}" != "1" ]] && on_path="$(command -v helm 2> /dev/null)"; then
  echo "$on_path"
  exit 0
fi

# The version comes from go.mod so that bumping it is a one-line change there.
version="$(awk '$1 == "helm.sh/helm/v4" { print $2; exit }' "$here/go.mod")"
dir="${TFLITE_OPERATOR_CACHE:-$HOME/.cache/tflite-operator}/helm/$version"
bin="$dir/helm"
# Ties the cache to the exact sources: a go.sum change under the same version rebuilds.
stamp="$(cat "$here/go.mod" "$here/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"

usable() { [[ -x "$bin" && -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$stamp" ]]; }

if usable; then
  echo "$bin"
  exit 0
fi
if [[ "$mode" == "locate" ]]; then
  log "helm $version is not built in $dir"
  log "build it with: bash tools/helm/build.sh (needs Go >= 1.26; about 4 min cold on 2 cores)"
  log "or put a helm on PATH, or set HELM_BIN=/path/to/helm"
  exit 1
fi
if ! command -v go > /dev/null; then
  log "Go is not installed: install Go >= 1.26, put a helm on PATH, or set HELM_BIN"
  exit 1
fi

mkdir -p "$dir"
# Parallel test workers or two terminals must not build twice.
exec 9> "$dir/.build.lock"
if command -v flock > /dev/null; then
  flock 9
  if usable; then
    echo "$bin"
    exit 0
  fi
fi

log "building helm $version with $(go version | awk '{print $3}') (cached in $dir afterwards)"
start=$(date +%s)
pkg=helm.sh/helm/v4/internal/version
# What upstream's Makefile sets for a tagged release, so `helm version` tells the truth.
ldflags="-s -w -X $pkg.version=$version -X $pkg.metadata= -X $pkg.gitTreeState=clean"
tmp="$dir/helm.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(
  cd "$here"
  # The checksums in go.sum are the trust anchor: no checksum database is consulted for
  # modules listed there, and -mod=readonly refuses anything that is not.
  GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp" \
    helm.sh/helm/v4/cmd/helm
)
mv -f "$tmp" "$bin"
echo "$stamp" > "$dir/.stamp"
log "built in $(($(date +%s) - start))s: $(du -h "$bin" | cut -f1) at $bin"
echo "$bin"
