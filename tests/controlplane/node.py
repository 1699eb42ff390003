"""A real node for the test cluster: kubelet + containerd + runc + CNI bridge.

The kubelet is the upstream one (the multi-call binary), the runtime is
Debian's containerd 1.6 run as a *second* instance with its own root, state,
socket and config under the cluster's workdir (the Docker daemon's containerd is
never touched), runc and the CNI plugins are Debian's. Pods sit on a private
bridge with a /24 and no default route: they reach each other and this
machine's address on the bridge (where the API server listens), nothing else.

Host state this creates and `stop()`/`sweep()` remove: the bridge, a cgroup
subtree per controller (the kubelet's cgroupRoot), the kubelet root bind mount
and whatever is mounted under the node directory, network namespaces of pods.
The kubelet would also rewrite kernel sysctls (vm.overcommit_memory,
kernel.panic, kernel.panic_on_oops, ...) that are machine-wide; it runs in its
own mount namespace where those /proc/sys files are bind-mounted copies
holding the values it wants, so it finds nothing to change (see _KUBELET_NS).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from controlplane.images import PAUSE_IMAGE

NODE_NAME = "tflite-node"
CNI_BIN_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
NETNS_DIR = Path("/var/run/netns")
CGROUP_FS = Path("/sys/fs/cgroup")
# The sysctls the kubelet insists on (pkg/kubelet/cm setupKernelTunables).
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": 1,
    "vm/panic_on_oom": 0,
    "kernel/panic": 10,
    "kernel/panic_on_oops": 1,
    "kernel/keys/root_maxkeys": 1000000,
    "kernel/keys/root_maxbytes": 25000000,
}
# Runs the kubelet in a new mount namespace. The kubelet's root dir is a shared
# mount (made so by start()), so the volumes the kubelet mounts there still
# propagate to the host, where containerd bind-mounts them into containers;
# /proc stays private, so the sysctl copies are seen by the kubelet only.
_KUBELET_NS = r"""
set -e
mount --make-rprivate /proc
for f in "$SYSCTL_DIR"/*; do
  mount --bind "$f" "/proc/sys/$(basename "$f" | tr . /)"
done
exec "$@"
"""


class NodeUnavailable(RuntimeError):
    """The runtime pieces are missing: the caller decides whether that skips or fails."""


class NodeError(RuntimeError):
    """The pieces are there but the node did not come up."""


class Process(Protocol):
    name: str
    log_path: Path

    def alive(self) -> bool: ...
    def tail(self, lines: int = 25) -> str: ...
    def stop(self, timeout: float = 10.0) -> None: ...


HOW_TO_INSTALL = (
    "run `sudo bash tests/controlplane/node-deps.sh` (what `make controlplane` does as root: "
    "apt-get install containerd runc containernetworking-plugins gcc libc6-dev)"
)


def missing_pieces() -> list[str]:
    """What this machine lacks for a real node (empty when it has everything)."""
    missing = [
        tool
        for tool in ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "ip", "unshare")
        if shutil.which(tool) is None
    ]
    missing += [
        f"CNI plugin {CNI_BIN_DIR}/{p}" for p in CNI_PLUGINS if not (CNI_BIN_DIR / p).exists()
    ]
    if os.geteuid() != 0:
        missing.append("root (the kubelet and containerd need it)")
    if not (CGROUP_FS / "memory").is_dir():
        missing.append(f"the cgroup v1 memory hierarchy at {CGROUP_FS}/memory")
    return missing


# ------------------------------------------------------------------ network


@dataclass(frozen=True)
class NodeNetwork:
    """The pods' bridge and its /24; the host is the first address (the gateway)."""

    bridge: str
    subnet: ipaddress.IPv4Network

    @property
    def gateway(self) -> str:
        return str(self.subnet[1])

    @classmethod
    def create(cls) -> NodeNetwork:
        """Makes the bridge on the first /24 of 10.213.0.0/16 no route or link uses yet."""
        routes = subprocess.run(
            ["ip", "-4", "-o", "route", "show", "table", "all"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        for i in range(1, 255):
            subnet = ipaddress.IPv4Network(f"10.213.{i}.0/24")
            bridge = f"tflnode{i}"
            if f"10.213.{i}." in routes or f" {bridge}:" in links:
                continue
            net = cls(bridge, subnet)
            try:
                _ip("link", "add", "name", bridge, "type", "bridge")
            except subprocess.CalledProcessError:
                continue  # taken between the check and now
            _ip("addr", "add", f"{net.gateway}/{subnet.prefixlen}", "dev", bridge)
            _ip("link", "set", bridge, "up")
            return net
        raise NodeError("no free 10.213.x.0/24 for the node's bridge")

    def delete(self) -> None:
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], capture_output=True, text=True, check=True)


def record_state(workdir: Path, network: NodeNetwork) -> None:
    """What sweep() needs to undo a node, written before anything is created."""
    (workdir / "node").mkdir(exist_ok=True)
    (workdir / "node" / "state.json").write_text(
        json.dumps({"bridge": network.bridge, "cgroup_root": f"/{workdir.name}"})
    )


# ------------------------------------------------------------ pure configs


def cni_config(net: NodeNetwork, ipam_dir: Path) -> dict[str, Any]:
    # No default route and no masquerade: a pod reaches the /24 (other pods and
    # this machine's gateway address) and nothing beyond.
    return {
        "cniVersion": "0.4.0",
        "name": "tflite-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": net.bridge,
                "isGateway": True,
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(net.subnet), "gateway": net.gateway}]],
                    "dataDir": str(ipam_dir),
                },
            },
            # Docker's engine (make images) sets the FORWARD policy to DROP, and with
            # br_netfilter on, pod-to-pod traffic on the bridge goes through FORWARD: the
            # firewall plugin accepts what comes from and returns to each pod's address.
            {"type": "firewall", "backend": "iptables"},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def containerd_config(d: Path, sandbox_image: str) -> str:
    """containerd 1.6 config (version 2) for an instance living entirely under `d`."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{d}/root"
state = "{d}/state"
# The opt plugin would install into /opt/containerd; the others need disks we lack.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[{cri}]
  sandbox_image = "{sandbox_image}"
  # runc cannot lower oom_score_adj here (-998 for sandboxes): every sandbox
  # would fail with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{shutil.which("runc") or "runc"}"
        # runc's state apart from the Docker daemon's containerd (/run/containerd/runc).
        Root = "{d}/state/runc"
  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{d}/cni"
    max_conf_num = 1
"""


def kubelet_config(
    d: Path,
    *,
    socket: Path,
    address: str,
    port: int,
    healthz_port: int,
    ca: Path,
    serving: tuple[Path, Path],
    cgroup_root: str,
) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # 1.37 refuses cgroup v1 hosts unless told otherwise.
        "failCgroupV1": False,
        # containerd 1.6 lacks the CRI RuntimeConfig call, so the kubelet uses its
        # own setting (a fallback removed in 1.38): it must match runc's cgroupfs.
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{socket}",
        "address": address,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "tlsCertFile": str(serving[0]),
        "tlsPrivateKeyFile": str(serving[1]),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        # Not the host's resolv.conf: pods must not learn of resolvers off this machine.
        "resolvConf": str(d / "resolv.conf"),
        "podLogsDir": str(d / "pod-logs"),
        # The test images are imported, never pulled: GC must not drop them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "mergeDefaultEvictionSettings": False,
        # Lowering its own oom_score_adj is refused on this kind of machine.
        "oomScoreAdj": 0,
        "makeIPTablesUtilChains": False,
        "maxPods": 30,
        "serializeImagePulls": False,
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
    }


# ------------------------------------------------------------------- node


class RealNode:
    """containerd + kubelet as Node NODE_NAME. Made and started by `KubeCluster`."""

    def __init__(self, workdir: Path, bin_dir: Path, network: NodeNetwork) -> None:
        self.dir = workdir / "node"
        self.bin_dir = bin_dir
        self.network = network
        self.name = NODE_NAME
        self.socket = self.dir / "containerd" / "containerd.sock"
        self.cgroup_root = f"/{workdir.name}"
        self._components: list[Process] = []
        self._imported: set[tuple[str, int]] = set()
        self.timings: dict[str, float] = {}
        self.dir.mkdir(parents=True, exist_ok=True)

    def start(
        self,
        spawn: Callable[[str, list[str]], Process],
        *,
        kubeconfig: Path,
        ca: Path,
        serving: tuple[Path, Path],
        ports: tuple[int, int],
        node_ready: Callable[[], bool],
        deadline: float,
    ) -> None:
        t0 = time.monotonic()
        cdir = self.socket.parent
        (cdir / "cni").mkdir(parents=True, exist_ok=True)
        (cdir / "cni" / "10-tflite-node.conflist").write_text(
            json.dumps(cni_config(self.network, self.dir / "ipam"))
        )
        (cdir / "config.toml").write_text(containerd_config(cdir, PAUSE_IMAGE))
        # Pulls go through a proxy that is nowhere (the discard port on loopback): an image
        # that was not imported fails at once instead of reaching a registry off this
        # machine, through a proxy the environment may name for the package registries.
        nowhere = "http://127.0.0.1:9"
        argv = ["env", f"HTTP_PROXY={nowhere}", f"HTTPS_PROXY={nowhere}", "NO_PROXY=",
                "containerd", f"--config={cdir / 'config.toml'}"]  # fmt: skip
        self._components.append(spawn("containerd", argv))
        self._wait(self.socket.exists, deadline, "the containerd socket")
        self.timings["containerd"] = time.monotonic() - t0

        from controlplane.images import build

        t1 = time.monotonic()
        self.import_image(build()[PAUSE_IMAGE])
        self.timings["pause_import"] = time.monotonic() - t1

        self._make_cgroup_root()
        kdir = self.dir / "kubelet"
        root = kdir / "root"
        for sub in (root, kdir / "pod-logs", kdir / "sysctl"):
            sub.mkdir(parents=True, exist_ok=True)
        (kdir / "resolv.conf").write_text("nameserver 127.0.0.1\noptions ndots:1 attempts:1\n")
        for key, value in KUBELET_SYSCTLS.items():
            (kdir / "sysctl" / key.replace("/", ".")).write_text(f"{value}\n")
        # A shared mount at the kubelet root, so mounts made in its namespace propagate.
        subprocess.run(["mount", "--bind", str(root), str(root)], check=True)
        subprocess.run(["mount", "--make-shared", str(root)], check=True)
        config = kubelet_config(
            kdir,
            socket=self.socket,
            address=self.network.gateway,
            port=ports[0],
            healthz_port=ports[1],
            ca=ca,
            serving=serving,
            cgroup_root=self.cgroup_root,
        )
        (kdir / "config.yaml").write_text(yaml.safe_dump(config))
        argv = [
            "unshare", "--mount", "--propagation", "unchanged",
            "env", f"SYSCTL_DIR={kdir / 'sysctl'}",
            "sh", "-c", _KUBELET_NS, "kubelet-ns",
            str(self.bin_dir / "kubelet"),
            f"--config={kdir / 'config.yaml'}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={root}",
            f"--cert-dir={kdir / 'pki'}",
            f"--hostname-override={self.name}",
            f"--node-ip={self.network.gateway}",
        ]  # fmt: skip
        self._components.append(spawn("kubelet", argv))
        self._wait(node_ready, deadline, f"Node {self.name} Ready")
        self.timings["start"] = time.monotonic() - t0

    def import_image(self, tar: Path) -> None:
        """Puts an image tarball (docker-archive or OCI) into the runtime; no registry involved.

        A tar already imported into this node is not read again (the converter's is 2.6 GB);
        the image tars are named by content (images.py, hack/image-tar.sh).
        """
        key = (str(tar), tar.stat().st_mtime_ns)
        if key in self._imported:
            return
        t0 = time.monotonic()
        self.ctr("images", "import", str(tar))
        self.timings[f"import {tar.name}"] = time.monotonic() - t0
        self._imported.add(key)

    def ctr(self, *args: str, timeout: float = 300) -> str:
        proc = subprocess.run(
            ["ctr", f"--address={self.socket}", "--namespace=k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise NodeError(f"ctr {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def pod_netns(self) -> set[str]:
        """Names (in NETNS_DIR) of the network namespaces of this node's pod sandboxes.

        containerd's own record, not "what appeared during the run": another test session
        on this machine makes its pods' namespaces in the same directory meanwhile.
        """
        names: set[str] = set()
        try:
            ids = self.ctr("containers", "ls", "-q", timeout=10).split()
        except (NodeError, subprocess.TimeoutExpired):
            return names
        for cid in ids:
            try:
                info = json.loads(self.ctr("containers", "info", cid, timeout=10))
            except (NodeError, subprocess.TimeoutExpired, ValueError):
                continue
            for ns in (info.get("Spec") or {}).get("linux", {}).get("namespaces", []):
                path = Path(ns.get("path") or "/")
                if ns.get("type") == "network" and path.parent == NETNS_DIR:
                    names.add(path.name)
        return names

    def task_status(self, container_id: str) -> str | None:
        """containerd's word on a container's task (RUNNING, STOPPED, ...); None once it has
        none. `container_id` as Pod status gives it (containerd://ID) or bare."""
        cid = container_id.removeprefix("containerd://")
        for line in self.ctr("tasks", "ls", timeout=10).splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == cid:
                return fields[-1]
        return None

    def running_tasks(self) -> int:
        try:
            out = self.ctr("tasks", "ls", timeout=10)
        except (NodeError, subprocess.TimeoutExpired):
            return 0
        return sum(1 for line in out.splitlines()[1:] if "RUNNING" in line)

    def logs(self) -> dict[str, Path]:
        return {c.name: c.log_path for c in self._components}

    def _wait(self, check: Callable[[], bool], deadline: float, what: str) -> None:
        while not check():
            for c in self._components:
                if not c.alive():
                    raise NodeError(f"{c.name} exited while waiting for {what}:\n{c.tail()}")
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {c.name}\n{c.tail(15)}" for c in self._components)
                raise NodeError(f"timed out waiting for {what}\n{tails}")
            time.sleep(0.1)

    def _make_cgroup_root(self) -> None:
        # The kubelet wants its cgroupRoot to exist in every hierarchy; one of
        # our own keeps the pods' cgroups apart and easy to remove.
        for hierarchy in CGROUP_FS.iterdir():
            if (hierarchy / "cgroup.procs").exists():
                (hierarchy / self.cgroup_root.lstrip("/")).mkdir(exist_ok=True)
        # A new cgroup weighs as one busy process (1024) against every process of the
        # machine; the node's pods together get the weight of as many as it has CPUs, what
        # the kubelet gives its kubepods cgroup below, so that on a machine shared with other
        # jobs a converter pod is not starved where a converter process would not be.
        shares = CGROUP_FS / "cpu" / self.cgroup_root.lstrip("/") / "cpu.shares"
        with contextlib.suppress(OSError):
            shares.write_text(str(1024 * (os.cpu_count() or 1)))

    def stop(self, drain: Callable[[], None] | None = None) -> None:
        """Lets the kubelet stop its pods (so the CNI plugin frees their network), then sweeps."""
        netns = self.pod_netns() if any(c.alive() for c in self._components) else set()
        if drain is not None and any(c.alive() for c in self._components):
            with contextlib.suppress(Exception):
                drain()
                deadline = time.monotonic() + 20
                while self.running_tasks() and time.monotonic() < deadline:
                    time.sleep(0.3)
        for c in reversed(self._components):
            c.stop()
        sweep(self.dir.parent, netns=netns)


def sweep(workdir: Path, *, netns: Iterable[str] = ()) -> None:
    """Undoes a node's host state; also used on the workdir of a crashed run."""
    node_dir = workdir / "node"
    try:
        state = json.loads((node_dir / "state.json").read_text())
    except (OSError, ValueError):
        return
    socket = str(node_dir / "containerd" / "containerd.sock")
    # Shims outlive containerd by design; ours are the ones naming our socket.
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError, ValueError):
            if socket.encode() in cmdline.read_bytes():
                os.kill(int(cmdline.parent.name), 9)
    cgroup_root = state["cgroup_root"].lstrip("/")
    pids_root = CGROUP_FS / "pids" / cgroup_root
    for procs in pids_root.rglob("cgroup.procs") if pids_root.is_dir() else ():
        for pid in procs.read_text().split():
            with contextlib.suppress(OSError):
                os.kill(int(pid), 9)
    # Mounts under the node dir (kubelet volumes, overlay rootfs, the shared
    # bind), deepest first; lazily, since a dying process may still hold one.
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(str(node_dir) + "/")
    ]
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)
    # Our pods' network namespaces that containerd did not get to remove (only ours:
    # see RealNode.pod_netns).
    for name in netns:
        if (NETNS_DIR / name).exists():
            subprocess.run(["umount", "-l", str(NETNS_DIR / name)], capture_output=True)
            with contextlib.suppress(OSError):
                (NETNS_DIR / name).unlink()
    NodeNetwork(state["bridge"], ipaddress.IPv4Network("0.0.0.0/32")).delete()
    for hierarchy in CGROUP_FS.iterdir():
        top = hierarchy / cgroup_root
        if top.is_dir():
            # rmdir only: a cgroup directory is removed empty, bottom-up.
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()
