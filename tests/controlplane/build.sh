#!/usr/bin/env bash
# Builds the real control-plane binaries (kube-apiserver, kube-controller-manager,
# kubectl, etcd) from the Go modules pinned in go.mod, once, and caches them.
#
#   build.sh               build if needed; last stdout line: the bin directory
#   build.sh --print-dir   locate only: print the bin directory if it is usable,
#                          exit 1 (with the reason on stderr) if not; never builds
#
# Envtest conventions are honoured, so setup-envtest binaries skip the build:
#   KUBEBUILDER_ASSETS         directory with kube-apiserver, etcd, kubectl
#   TEST_ASSET_KUBE_APISERVER, TEST_ASSET_ETCD, TEST_ASSET_KUBECTL
#                              individual binaries (win over KUBEBUILDER_ASSETS)
#   TEST_ASSET_KUBE_CONTROLLER_MANAGER
#                              not an envtest variable (envtest ships no kcm); set
#                              it to get the Job controller and the GC with envtest
#                              binaries, otherwise those tests skip.
# Other knobs:
#   TFLITE_OPERATOR_CACHE      cache root (default ~/.cache/tflite-operator)
#   CONTROLPLANE_BUILD_JOBS    go build -p (default: number of CPUs)
#
# Progress goes to stderr so that stdout stays machine-readable.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="build"
case "${1:-}" in
  "") ;;
  --print-dir | --locate) mode="locate" ;;
  -h | --help)
    sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "build.sh: unknown argument: $1 (try --help)" >&2
    exit 2
    ;;
esac

log() { echo "controlplane: $*" >&2; }

# The versions come from go.mod so there is a single place to bump them.
k8s_version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$here/go.mod")"
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$here/go.mod")"
cache_root="${TFLITE_OPERATOR_CACHE:-$HOME/.cache/tflite-operator}/controlplane"
tools=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl etcd)

# --- envtest-style overrides -------------------------------------------------
# Any of these set means "use my binaries": we assemble a directory of symlinks
# so that callers always get one bin dir with the same file names.
if [[ -n "${KUBEBUILDER_ASSETS:-}${TEST_ASSET_KUBE_APISERVER:-}${TEST_ASSET_ETCD:-}" ]]; then
  assets="${KUBEBUILDER_ASSETS:-}"
  declare -A src=(
    [kube-apiserver]="${TEST_ASSET_KUBE_APISERVER:-${assets:+$assets/kube-apiserver}}"
    [etcd]="${TEST_ASSET_ETCD:-${assets:+$assets/etcd}}"
    [kubectl]="${TEST_ASSET_KUBECTL:-${assets:+$assets/kubectl}}"
    [kube-controller-manager]="${TEST_ASSET_KUBE_CONTROLLER_MANAGER:-${assets:+$assets/kube-controller-manager}}"
    # Envtest ships neither; our own variables, for a real node with such binaries.
    [kube-scheduler]="${TEST_ASSET_KUBE_SCHEDULER:-${assets:+$assets/kube-scheduler}}"
    [kubelet]="${TEST_ASSET_KUBELET:-${assets:+$assets/kubelet}}"
  )
  for required in kube-apiserver etcd kubectl; do
    if [[ ! -x "${src[$required]}" ]]; then
      log "envtest assets are set but '$required' is missing or not executable: '${src[$required]}'"
      exit 1
    fi
  done
  key="$(printf '%s\n' "${src[@]}" | sha256sum | cut -c1-12)"
  dir="$cache_root/external-$key"
  mkdir -p "$dir"
  for t in "${tools[@]}"; do
    rm -f "$dir/$t"
    if [[ -x "${src[$t]}" ]]; then
      ln -s "$(readlink -f "${src[$t]}")" "$dir/$t"
    fi
  done
  [[ -e "$dir/kube-controller-manager" ]] ||
    log "no kube-controller-manager among the envtest assets: Job-controller and GC tests will skip"
  echo "$dir"
  exit 0
fi

# --- our own build -------------------------------------------------------------
dir="$cache_root/$k8s_version"
# The stamp ties the cache to the exact sources, so editing main.go or go.sum
# (e.g. an etcd bump under the same Kubernetes version) rebuilds, and so does
# editing this script (the tool list and the link flags live here).
stamp="$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"

usable() {
  [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$stamp" ]] || return 1
  local t
  for t in controlplane "${tools[@]}"; do [[ -x "$dir/$t" ]] || return 1; done
}

if usable; then
  echo "$dir"
  exit 0
fi
if [[ "$mode" == "locate" ]]; then
  log "not built (or built from other sources) for Kubernetes $k8s_version in $dir"
  log "build it with: bash tests/controlplane/build.sh   (needs Go >= 1.26, ~25 min on 2 cores)"
  log "or point KUBEBUILDER_ASSETS at setup-envtest binaries"
  exit 1
fi

if ! command -v go > /dev/null; then
  log "Go is not installed: install Go >= 1.26, or set KUBEBUILDER_ASSETS to setup-envtest binaries"
  exit 1
fi

mkdir -p "$dir"
# Two concurrent builds (two terminals, parallel CI steps) would double a
# 20-minute job; the second waits and then finds the first one's result.
exec 9> "$cache_root/.build-$k8s_version.lock"
if command -v flock > /dev/null; then
  flock 9
  if usable; then
    echo "$dir"
    exit 0
  fi
fi

log "building Kubernetes $k8s_version and etcd $etcd_version with $(go version | awk '{print $3}')"
log "cold builds take about 25 minutes on 2 cores; later runs reuse $dir"
start=$(date +%s)
# The version variables are what upstream's hack/lib/version.sh sets; without
# them the servers report v0.0.0-master and kubectl warns about version skew.
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
pkg=k8s.io/component-base/version
ldflags="-s -w"
ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
tmp="$dir/controlplane.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(
  cd "$here"
  # GOFLAGS from the environment could carry -mod=vendor or similar; ours are
  # explicit. No VCS stamping: the version is pinned in go.mod, not in git.
  GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 go build \
    -p "${CONTROLPLANE_BUILD_JOBS:-$(nproc 2> /dev/null || echo 2)}" \
    -trimpath -ldflags "$ldflags" -o "$tmp" .
)
mv -f "$tmp" "$dir/controlplane"
for t in "${tools[@]}"; do ln -sfn controlplane "$dir/$t"; done
echo "$stamp" > "$dir/.stamp"
log "built in $(($(date +%s) - start))s: $(du -h "$dir/controlplane" | cut -f1) in $dir"
echo "$dir"
