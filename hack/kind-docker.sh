#!/usr/bin/env bash
# The `docker` that kind runs (hack/e2e-kind.sh puts a symlink named docker to this file first
# on kind's PATH). It runs KIND_REAL_DOCKER (Debian's 20.10 client, hack/docker-engine.sh),
# passing everything through, except on a machine whose capability bounding set is not full:
#
# Docker 20.10 gives a --privileged container every capability the kernel knows, and runc
# cannot grant one that the engine itself lacks. On this kind of machine the bounding set
# misses CAP_SYS_RESOURCE (CapBnd 000001fffeffffff, cap_last_cap 40), so every kind node
# fails to start:
#   runc create failed: unable to start container process: unable to apply caps:
#   operation not permitted
# and so does kind's `docker exec --privileged`. There, this wrapper turns
#   run --privileged   into  --cap-add ALL --cap-drop <each missing capability>, unconfined
#                            seccomp, AppArmor and /proc paths, every device allowed
#                            (device cgroup), /dev/kmsg (the kubelet's OOM watcher reads it)
#   exec --privileged  into  exec (the node already holds every capability it can have)
# The one difference left, read-only cgroup mounts, the node image's entrypoint undoes
# (hack/kind-node-image.sh). Kubernetes then runs without CAP_SYS_RESOURCE, which it only
# uses to lower oom_score_adj (containerd: restrict_oom_score_adj, hack/kind-base.sh).
set -euo pipefail

real="${KIND_REAL_DOCKER:-/usr/bin/docker}"

missing_caps() {
  local last bnd i
  last="$(cat /proc/sys/kernel/cap_last_cap)"
  bnd="$((16#$(awk '/^CapBnd:/ {print $2}' /proc/self/status)))"
  for ((i = 0; i <= last; i++)); do
    ((bnd >> i & 1)) || echo "$i"
  done
}

mapfile -t missing < <(missing_caps)
if [[ ${#missing[@]} -eq 0 || $# -eq 0 || ("$1" != run && "$1" != exec) ]]; then
  exec "$real" "$@"
fi

# Capability numbers to the names docker takes (linux/capability.h order).
names=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
  LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE
  SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME
  SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG
  WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE)

cmd="$1"
shift
args=()
for a in "$@"; do
  if [[ "$a" != --privileged ]]; then
    args+=("$a")
  elif [[ "$cmd" == run ]]; then
    args+=(--cap-add ALL)
    for n in "${missing[@]}"; do args+=(--cap-drop "${names[$n]}"); done
    args+=(--security-opt seccomp=unconfined --security-opt apparmor=unconfined
      --security-opt systempaths=unconfined --device-cgroup-rule 'a *:* rwm')
    [[ -e /dev/kmsg ]] && args+=(--device /dev/kmsg)
  fi
done
exec "$real" "$cmd" "${args[@]}"
