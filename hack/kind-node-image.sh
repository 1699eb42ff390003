#!/usr/bin/env bash
# Builds (or reuses) a kind node image without a registry: every part is made on this machine
# from Debian packages and Go modules.
#
#   kind-node-image.sh          build if needed; last stdout line: the node image tag
#   kind-node-image.sh --tag    print the tag this recipe gives, build nothing
#   kind-node-image.sh --binary build the Kubernetes binary only if needed; print its path
#                               (called as kubectl through a symlink, it is kubectl)
#
# `kind build node-image` cannot be used as it is: whatever Kubernetes source it is given, it
# pulls etcd, CoreDNS, pause, kindnetd and the local-path images from their registries
# (`ctr content fetch` in its build container). This script does what its buildImage does,
# with images made here:
#   1. the base: hack/kind-base.sh (systemd, Debian's containerd 1.6 and runc, the CNI plugins,
#      kind's entrypoint and units);
#   2. Kubernetes: hack/kind-node/main.go, a multi-call binary (kubeadm, kubelet, kubectl,
#      kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, etcd) built from
#      tests/controlplane/go.mod's pinned modules, so Kubernetes is bumped in one place;
#   3. images, tagged as `kubeadm config images list` names them: one Debian image
#      (iptables, conntrack, nftables for kube-proxy) holding the binary for the control plane,
#      kube-proxy and etcd; CoreDNS with the plugins kubeadm's Corefile uses (hack/kind-coredns,
#      FROM scratch); pause from tests/controlplane/images/pause.c (gcc -static, FROM scratch);
#   4. the node: a container of the base, the binary copied in as /usr/bin/{kubeadm,kubelet,
#      kubectl}, crictl (Go module sigs.k8s.io/cri-tools; `kind load` asks it what the node
#      has, and reloads every image without it), /kind/version written, the images imported
#      into its containerd (`ctr images import --no-unpack`, as kind does), `docker commit`.
# Networking: kindnetd's source is no longer in kind's Go module, so the node carries a bridge
#   CNI config (Debian's bridge + host-local plugins) for its pod CIDR instead, and kind's
#   default-cni manifest is replaced by a ConfigMap that says so: single-node clusters only.
# Storage: no local-path provisioner (its images are not built here); the default-storage
#   manifest is a ConfigMap that says so. The e2e test uses no volumes but emptyDir.
#
# Everything lands in TFLITE_OPERATOR_CACHE/kind (default ~/.cache/tflite-operator/kind) and
# in docker images tagged tflite-kind-*; the node tag carries a hash of every input, so a warm
# run is a few `docker image inspect`s.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cache="${TFLITE_OPERATOR_CACHE:-$HOME/.cache/tflite-operator}/kind"
suite="${DEBIAN_SUITE:-bookworm}"
crictl_version="${CRICTL_VERSION:-v1.37.0}"
log() { echo "kind-node-image: $*" >&2; }

gomod="$root/tests/controlplane/go.mod"
k8s_version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$gomod")"
minor="${k8s_version#v1.}"
minor="${minor%%.*}"

base_tag="$(bash "$here/kind-base.sh" --tag)"
bin_key="$(cat "$gomod" "$root/tests/controlplane/go.sum" "$here/kind-node/main.go" | sha256sum | cut -c1-12)"
recipe="$(cat "${BASH_SOURCE[0]}" "$root/tests/controlplane/images/pause.c" "$here"/kind-coredns/{main.go,go.mod,go.sum} \
  <(echo "$base_tag $bin_key $crictl_version") |
  sha256sum | cut -c1-12)"
node_tag="tflite-kind-node:$k8s_version-$recipe"
bin_dir="$cache/bin/$k8s_version-$bin_key"
binary="$bin_dir/kindnode"
build_binary() {
  if [[ ! -x "$binary" ]]; then
    command -v go > /dev/null || {
      log "Go is needed to build Kubernetes"
      exit 1
    }
    log "building kubeadm, kubelet, kube-proxy and the control plane $k8s_version (one binary)"
    src="$cache/src"
    rm -rf "$src" && mkdir -p "$src" "$bin_dir"
    cp "$here/kind-node/main.go" "$root/tests/controlplane/go.sum" "$src/"
    sed 's|^module .*|module tflite-operator/hack/kind-node|' "$gomod" > "$src/go.mod"
    pkg=k8s.io/component-base/version
    ldflags="-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    # -mod=mod: kubeadm and kube-proxy need a few modules the control plane does not; their
    # versions come from k8s.io/kubernetes's own go.mod (minimal version selection), nothing floats.
    # The flags match tests/controlplane/build.sh so the Go build cache is shared with it.
    (cd "$src" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build \
      -p "$(nproc 2> /dev/null || echo 2)" -trimpath -ldflags "$ldflags" -o "$binary.tmp" .)
    mv -f "$binary.tmp" "$binary"
  fi
}
if [[ "${1:-}" == "--binary" ]]; then
  build_binary
  echo "$binary"
  exit 0
fi
if [[ "${1:-}" == "--tag" ]]; then
  echo "$node_tag"
  exit 0
fi

docker="$(bash "$here/docker-engine.sh" | tail -1)"
if "$docker" image inspect "$node_tag" > /dev/null 2>&1; then
  log "$node_tag exists (recipe unchanged)"
  echo "$node_tag"
  exit 0
fi
mkdir -p "$cache"
timings=()
step() { timings+=("$1 $(($(date +%s) - $2))s"); }

# --- 1. base --------------------------------------------------------------------------------
t=$(date +%s)
base="$(bash "$here/kind-base.sh" | tail -1)"
step base "$t"

# --- 2. the Kubernetes binary ---------------------------------------------------------------
t=$(date +%s)
build_binary
step kubernetes "$t"

# --- 3. images ------------------------------------------------------------------------------
t=$(date +%s)
mapfile -t wanted < <("$binary" kubeadm config images list --kubernetes-version "$k8s_version")
image_for() { printf '%s\n' "${wanted[@]}" | grep "/$1:" | head -1; }
coredns_image="$(image_for coredns)"
coredns_version="${coredns_image##*:}"
pause_image="$(image_for pause)"

k8s_image="tflite-kind-k8s:$k8s_version-$bin_key"
if ! "$docker" image inspect "$k8s_image" > /dev/null 2>&1; then
  log "image $k8s_image: Debian $suite + iptables, conntrack, nftables + the binary"
  # shellcheck disable=SC2016
  mmdebstrap --quiet --variant=minbase --include=iptables,conntrack,nftables,ipset,kmod,ca-certificates \
    --customize-hook="copy-in $binary /usr/local/bin" \
    --customize-hook='for n in kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd kubectl; do
        ln -s kindnode "$1/usr/local/bin/$n"; done' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
    "$suite" - |
    "$docker" import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --message "kind: Kubernetes $k8s_version components" - "$k8s_image" > /dev/null
fi

pinned="$(awk '$1 == "require" && $2 == "github.com/coredns/coredns" { print $3 }' "$here/kind-coredns/go.mod")"
[[ "$pinned" == "$coredns_version" ]] || {
  log "kubeadm $k8s_version wants CoreDNS $coredns_version, hack/kind-coredns/go.mod pins $pinned:"
  log "  cd hack/kind-coredns && go get github.com/coredns/coredns@$coredns_version && go mod tidy"
  exit 1
}
coredns_key="$(cat "$here"/kind-coredns/{main.go,go.mod,go.sum} | sha256sum | cut -c1-12)"
coredns_tag="tflite-kind-coredns:$coredns_version-$coredns_key"
if ! "$docker" image inspect "$coredns_tag" > /dev/null 2>&1; then
  log "image $coredns_tag: CoreDNS $coredns_version, kubeadm's plugins (hack/kind-coredns)"
  cdir="$(mktemp -d)"
  (cd "$here/kind-coredns" && GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 go build \
    -trimpath -ldflags "-s -w" -o "$cdir/coredns" .)
  tar -C "$cdir" -c coredns |
    "$docker" import --change 'ENTRYPOINT ["/coredns"]' \
      --message "kind: CoreDNS $coredns_version" - "$coredns_tag" > /dev/null
  rm -rf "$cdir"
fi
crictl="$cache/crictl-$crictl_version/crictl"
if [[ ! -x "$crictl" ]]; then
  log "crictl $crictl_version from its Go module"
  GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOBIN="$(dirname "$crictl")" go install -trimpath \
    -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@$crictl_version"
fi

pause_tag="tflite-kind-pause:${pause_image##*:}-$(sha256sum < "$root/tests/controlplane/images/pause.c" | cut -c1-12)"
if ! "$docker" image inspect "$pause_tag" > /dev/null 2>&1; then
  log "image $pause_tag: tests/controlplane/images/pause.c"
  pdir="$(mktemp -d)"
  gcc -static -O2 -o "$pdir/pause" "$root/tests/controlplane/images/pause.c"
  tar -C "$pdir" -c pause |
    "$docker" import --change 'ENTRYPOINT ["/pause"]' --message "kind: pause" - "$pause_tag" > /dev/null
  rm -rf "$pdir"
fi
step images "$t"

# --- 4. the node ----------------------------------------------------------------------------
t=$(date +%s)
log "assembling $node_tag"
box="tflite-kind-build-$$"
work="$(mktemp -d)"
cleanup() {
  "$docker" rm -f -v "$box" > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$docker" run -d --name "$box" --entrypoint=sleep --security-opt seccomp=unconfined "$base" infinity > /dev/null
in_box() { "$docker" exec -i "$box" "$@"; }

"$docker" cp "$binary" "$box:/usr/bin/kindnode"
"$docker" cp "$crictl" "$box:/usr/local/bin/crictl"
# Where the engine cannot run --privileged, hack/kind-docker.sh starts the node with every
# capability it can have instead, and docker then mounts the cgroup hierarchies read-only;
# this entrypoint makes them writable, as --privileged would, then runs kind's own.
in_box mv /usr/local/bin/entrypoint /usr/local/bin/kind-entrypoint
in_box sh -c 'cat > /usr/local/bin/entrypoint && chmod 0755 /usr/local/bin/entrypoint' << 'EOF'
#!/bin/sh
for m in $(awk '$2 ~ "^/sys/fs/cgroup" {print $2}' /proc/self/mounts); do
  mount -o remount,bind,rw "$m" 2> /dev/null || true
done
exec /usr/local/bin/kind-entrypoint "$@"
EOF
for n in kubeadm kubelet kubectl; do in_box ln -sf kindnode "/usr/bin/$n"; done
echo -n "$k8s_version" | in_box sh -c 'cat > /kind/version'
# kind's containerd config names its own pause tag; kubeadm's is the one that gets imported.
in_box sed -i "s|sandbox_image = .*|sandbox_image = \"$pause_image\"|" /etc/containerd/config.toml

# The pod network: kind gives the node 10.244.0.0/24 (podSubnet 10.244.0.0/16) unless told
# otherwise; the bridge is what kindnetd would set up on a single node.
in_box sh -c 'mkdir -p /etc/cni/net.d && cat > /etc/cni/net.d/10-kind-bridge.conflist' << 'EOF'
{
  "cniVersion": "0.4.0",
  "name": "kind-bridge",
  "plugins": [
    {"type": "bridge", "bridge": "kind0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
for m in cni storage; do
  in_box sh -c "mkdir -p /kind/manifests && cat > /kind/manifests/default-$m.yaml" << EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: kind-default-$m, namespace: kube-system}
data:
  note: "tflite-operator's node image (hack/kind-node-image.sh): no registry, so no kind default $m image; see docs/kind.md"
EOF
done

# Images into the node's containerd, as kind's build does: containerd started in the build
# container, images imported without unpacking (no mounts needed), then stopped.
in_box bash -c 'nohup containerd > /var/log/containerd-build.log 2>&1 &'
for _ in $(seq 1 30); do
  if in_box ctr version > /dev/null 2>&1; then break; fi
  sleep 1
done
ctr_import() { "$docker" save "$1" | in_box ctr -n k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - > /dev/null; }
ctr_import "$k8s_image"
ctr_import "$coredns_tag"
ctr_import "$pause_tag"
for want in "${wanted[@]}"; do
  case "$want" in
    */coredns:*) from="$coredns_tag" ;;
    */pause:*) from="$pause_tag" ;;
    *) from="$k8s_image" ;;
  esac
  # docker save names an untagged-registry image docker.io/library/NAME.
  in_box ctr -n k8s.io images tag --force "docker.io/library/$from" "$want" > /dev/null
done
in_box ctr -n k8s.io images ls -q >&2
in_box pkill containerd || true
for _ in $(seq 1 20); do in_box pgrep containerd > /dev/null || break; sleep 0.5; done

"$docker" commit \
  --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
  --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
  "$box" "$node_tag" > /dev/null
step node "$t"
# Older node images of this recipe's name are this script's own: drop them (about 1 GB each).
"$docker" images --format '{{.Repository}}:{{.Tag}}' tflite-kind-node | grep -vx "$node_tag" |
  xargs -r "$docker" rmi > /dev/null 2>&1 || true
log "built $node_tag ($(printf '%s; ' "${timings[@]}"))"
echo "$node_tag"
