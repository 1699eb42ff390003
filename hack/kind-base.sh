#!/usr/bin/env bash
# Builds (or reuses) a kind *base* image from Debian's packages, for machines that cannot pull
# kindest/base (no registry) and cannot run its Dockerfile (it clones containerd, runc, crictl
# and the CNI plugins from GitHub).
#
#   kind-base.sh          build if needed; last stdout line: the image tag
#   kind-base.sh --tag    print the tag this recipe gives, build nothing
#
# What kindest/base has, and where it comes from here:
#   systemd, iptables, nftables, conntrack, iproute2, ...   Debian (same list as kind's Dockerfile)
#   containerd + ctr                                       Debian containerd 1.6 (kind: 2.x)
#   runc                                                   Debian runc 1.1
#   CNI plugins (host-local, loopback, ptp, portmap, bridge) Debian containernetworking-plugins
#   entrypoint, systemd units, containerd config, sysctls  kind's own files, from the Go module
#                                                          sigs.k8s.io/kind@KIND_VERSION (images/base/files)
# Changes to kind's files, each because this machine needs it:
#   - containerd's config: restrict_oom_score_adj = true (this machine refuses to lower
#     oom_score_adj; without it every sandbox fails with runc's "can't get final child's PID").
#   - /usr/local/bin/containerd -> Debian's /usr/bin/containerd (kind's unit names that path).
# Tagged by a hash of the recipe (this file, the CA bundle, kind's version): a warm run is one
# `docker image inspect`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
suite="${DEBIAN_SUITE:-bookworm}"
kind_version="${KIND_VERSION:-v0.33.0}"
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
packages="systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz"
packages+=",e2fsprogs,bash,ca-certificates,curl,jq,procps"
packages+=",containerd,runc,containernetworking-plugins"
log() { echo "kind-base: $*" >&2; }

recipe="$(cat "${BASH_SOURCE[0]}" "$ca_bundle" <(echo "$kind_version") | sha256sum | cut -c1-12)"
tag="tflite-kind-base:$suite-$recipe"
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

kind_src="$(GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kind@$kind_version" | jq -r .Dir)"
files="$kind_src/images/base/files"
[[ -f "$files/usr/local/bin/entrypoint" ]] || {
  log "kind's base files not found in $files"
  exit 1
}

# The module cache is read-only (dirs 0555): stage a copy with ordinary modes, or sync-in would
# carry 0555 onto /etc and /usr.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -r "$files/." "$stage/"
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod 0644 {} +
chmod 0755 "$stage"

log "building $tag from Debian $suite and kind $kind_version's base files"
start=$(date +%s)
# The hooks replay kind's images/base/Dockerfile: copy its files, trim systemd's units,
# enable kubelet and containerd, write the OCI base spec containerd's config points at.
# shellcheck disable=SC2016
mmdebstrap --quiet --variant=minbase --include="$packages" \
  --customize-hook="copy-in $ca_bundle /etc/ssl/certs" \
  --customize-hook="sync-in $stage /" \
  --customize-hook='chroot "$1" sh -euc "
    chmod 0755 /usr/local/bin/* /kind/bin/*
    ln -sf /usr/bin/containerd /usr/local/bin/containerd
    sed -i \"s/restrict_oom_score_adj = false/restrict_oom_score_adj = true/\" /etc/containerd/config.toml
    mkdir -p /opt/cni/bin && for p in /usr/lib/cni/*; do ln -sf \$p /opt/cni/bin/; done
    find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/*
    rm -f /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev*
    rm -f /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo ReadKMsg=no >> /etc/systemd/journald.conf
    ln -sf /usr/lib/systemd/systemd /sbin/init
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service
    systemctl mask systemd-binfmt.service
    mkdir -p /etc/kubernetes/manifests
  "' \
  --customize-hook='chroot "$1" sh -c "ctr oci spec" |
    jq ".hooks.createContainer[.hooks.createContainer|length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" |
    jq "del(.process.rlimits)" > "$1/etc/containerd/cri-base.json"' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
  "$suite" - |
  "$docker" import \
    --change 'ENV container=docker' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    --message "tflite-operator kind base: Debian $suite + kind $kind_version base files" \
    - "$tag" > /dev/null
log "built $tag in $(($(date +%s) - start))s"
echo "$tag"
