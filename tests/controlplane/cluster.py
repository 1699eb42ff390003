"""Start and stop a real Kubernetes control plane for tests.

etcd, kube-apiserver and kube-controller-manager are the upstream binaries
built by build.sh (or envtest's); they run as local processes on free loopback
ports, each in its own process group so that teardown can kill whatever they
spawned. With `real_node=True` (what the test session runs), kube-scheduler and
a real kubelet with containerd (node.py) run too, and the API server listens on
the node bridge's gateway address so that pods can reach it. Without it there
is no node at all: Pods are accepted by the API and never run (what the scale
benchmark wants, and what a machine without root or containerd can offer).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from controlplane import node as real_node_mod
from controlplane.pki import Pki
from controlplane.rest import ApiError, Rest

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

HERE = Path(__file__).resolve().parent
BUILD_SH = HERE / "build.sh"
WORKDIR_PREFIX = "tflite-controlplane-"
HOW_TO_GET = (
    "install Go >= 1.26 and run `bash tests/controlplane/build.sh` (what `make controlplane` "
    "does; ~25 min cold on 2 cores, cached afterwards), or set KUBEBUILDER_ASSETS to a "
    "directory of setup-envtest binaries"
)
# The Job controller and the garbage collector are what the operator's tests
# lean on; the others make namespaces behave (default ServiceAccount, deletion,
# kube-root-ca.crt) and aggregated ClusterRoles work like in a real cluster.
# node-lifecycle joins them only with a real node (it lifts the not-ready taint).
CONTROLLERS = (
    "job-controller",
    "cronjob-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "ttl-after-finished-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "deployment-controller",
    "replicaset-controller",
    # ResourceQuota admission needs the quota's usage, which this controller computes.
    "resourcequota-controller",
)


class ControlPlaneUnavailable(RuntimeError):
    """The binaries are not there: the caller decides whether that skips or fails."""


class ControlPlaneError(RuntimeError):
    """The binaries are there but the control plane did not come up."""


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def locate_bin_dir() -> Path:
    """Asks build.sh where the binaries are, without building.

    build.sh is the one place that knows the pinned version, the cache layout
    and the envtest overrides, so the fixture defers to it rather than
    duplicating that logic.
    """
    if shutil.which("bash") is None:
        raise ControlPlaneUnavailable(f"bash is needed to locate the control plane; {HOW_TO_GET}")
    proc = subprocess.run(
        ["bash", str(BUILD_SH), "--print-dir"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        first = (proc.stderr.strip().splitlines() or ["build.sh --print-dir failed"])[0]
        raise ControlPlaneUnavailable(
            f"no control-plane binaries ({first.removeprefix('controlplane: ')}). "
            f"To get them: {HOW_TO_GET}"
        )
    return Path(lines[-1])


def _free_port() -> int:
    # Racy by nature (the port is free now, not when the server binds it);
    # start() retries with new ports when a component reports a bind failure.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Component:
    def __init__(self, name: str, argv: Sequence[str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                # Own process group: teardown kills the whole group, and a
                # Ctrl-C in the terminal reaches pytest only, which then tears
                # down in order instead of the servers dying mid-test.
                start_new_session=True,
            )
        with (workdir / "pgids").open("a") as f:
            f.write(f"{self.proc.pid}\n")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        _kill_group(self.proc.pid, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=1)


def _kill_group(pgid: int, timeout: float) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Reap it if it is our child; otherwise it may linger as a zombie
        # (containers often run no reaper as PID 1), which counts as gone.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pgid, os.WNOHANG)
        if not _group_alive(pgid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    """Like kill(pid, 0), except that a zombie (killed, never reaped) counts as dead."""
    if not Path("/proc/self/stat").exists():  # not Linux: zombies count as alive there
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in the process group."""
    if not Path("/proc/self/stat").exists():  # not Linux: zombies count as alive there
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (field 2) may contain spaces: split after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _reap_stale(parent: Path) -> None:
    """Kills what a previous, hard-killed test run left behind (SIGKILL skips atexit).

    Only groups whose leader still runs one of our binaries from that very
    workdir are touched, so a recycled PID is never hit.
    """
    for workdir in parent.glob(f"{WORKDIR_PREFIX}*"):
        owner_file = workdir / "owner"
        try:
            owner = int(owner_file.read_text())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or _pid_alive(owner):
            continue
        pgids: list[int] = []
        for listing in workdir.rglob("pgids"):
            with contextlib.suppress(OSError, ValueError):
                pgids += [int(x) for x in listing.read_text().split()]
        for pgid in pgids:
            try:
                cmdline = Path(f"/proc/{pgid}/cmdline").read_bytes()
                cwd = os.readlink(f"/proc/{pgid}/cwd")
            except OSError:
                continue
            # Servers name the workdir in their flags; pods run inside it.
            if str(workdir).encode() in cmdline or cwd.startswith(str(workdir)):
                _kill_group(pgid, 5)
        # What the real node left on the host (bridge, mounts, cgroups, shims).
        real_node_mod.sweep(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


_live: set[KubeCluster] = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        clusters = list(_live)
    for cluster in clusters:
        cluster.stop()


class KubeCluster:
    """A running control plane. Create it with `KubeCluster.start()`; always `stop()` it."""

    def __init__(self, bin_dir: Path, workdir: Path) -> None:
        self.bin_dir = bin_dir
        self.workdir = workdir
        self.kubeconfig = str(workdir / "admin.kubeconfig")
        self.server = ""
        self.has_controller_manager = (bin_dir / "kube-controller-manager").exists()
        self.node: real_node_mod.RealNode | None = None
        self.network: real_node_mod.NodeNetwork | None = None
        self.rest: Rest
        self._components: list[_Component] = []
        self._stopped = False

    # ------------------------------------------------------------------ start

    @classmethod
    def start(
        cls,
        bin_dir: Path | None = None,
        *,
        real_node: bool = False,
        timeout: float = 90.0,
    ) -> KubeCluster:
        """Starts the control plane; with `real_node`, kube-scheduler and a real node too.

        `real_node=True` runs kube-scheduler, containerd and the real kubelet;
        raises NodeUnavailable when the machine lacks the runtime pieces (see
        node.missing_pieces()). Without it no Pod ever runs.
        """
        if real_node and (missing := real_node_mod.missing_pieces()):
            raise real_node_mod.NodeUnavailable(
                f"no real node possible, missing: {', '.join(missing)}; "
                + real_node_mod.HOW_TO_INSTALL
            )
        bin_dir = bin_dir or locate_bin_dir()
        parent = Path(tempfile.gettempdir())
        _reap_stale(parent)
        last: Exception | None = None
        for _attempt in range(3):
            workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=parent))
            (workdir / "owner").write_text(str(os.getpid()))
            cluster = cls(bin_dir, workdir)
            with _live_lock:
                _live.add(cluster)
            try:
                cluster._start(timeout, real_node)
                return cluster
            except _PortClash as exc:
                last = exc
                cluster.stop()
            except BaseException:
                cluster.stop(keep_workdir=True)
                raise
        raise ControlPlaneError(f"could not find free ports after 3 attempts: {last}")

    def _start(self, timeout: float, real_node: bool) -> None:
        t0 = time.monotonic()
        deadline = t0 + timeout
        pki = Pki(self.workdir / "pki")
        # Loopback unless pods must reach the API server: then the host's address
        # on the pods' bridge (the only host address pods can route to).
        host = "127.0.0.1"
        if real_node:
            self.network = real_node_mod.NodeNetwork.create()
            real_node_mod.record_state(self.workdir, self.network)
            host = self.network.gateway
        serving = pki.issue(
            "apiserver",
            "kube-apiserver",
            server=True,
            hosts=(
                *((host,) if host != "127.0.0.1" else ()),
                "127.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
            ),
        )
        admin = pki.issue("admin", "tflite-operator-test-admin", ("system:masters",), client=True)
        kcm_cert = pki.issue("controller-manager", "system:kube-controller-manager", client=True)
        # The API server's identity towards the kubelet (pods/log, exec): the kubelet
        # authenticates it by the cluster CA and asks the API server's authorizer about it.
        kubelet_client = pki.issue(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",),
            client=True,
        )  # fmt: skip
        sa = pki.service_account_keys()

        etcd_port, peer_port, api_port, kcm_port = (_free_port() for _ in range(4))
        self.server = f"https://{host}:{api_port}"
        self._write_kubeconfig(Path(self.kubeconfig), pki.ca.cert, admin.cert, admin.key)
        kcm_kubeconfig = self.workdir / "controller-manager.kubeconfig"
        self._write_kubeconfig(kcm_kubeconfig, pki.ca.cert, kcm_cert.cert, kcm_cert.key)

        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                # Test data is disposable; fsync is most of etcd's latency on a VM disk.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={host}",
                f"--advertise-address={host}",
                # The reconciler refuses a loopback address for the "kubernetes"
                # Service's endpoints; nothing here routes to it anyway (envtest
                # does the same).
                "--endpoint-reconciler-type=none",
                f"--secure-port={api_port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={pki.ca.cert}",
                "--authorization-mode=Node,RBAC",
                # PodSecurity is on by default too; naming it makes the intent
                # explicit and fails loudly if a release ever drops it.
                # OwnerReferencesPermissionEnforcement is what OpenShift and hardened
                # clusters run: setting blockOwnerDeletion on an ownerReference then needs
                # `update` on the owner's finalizers, which the operator's RBAC must grant.
                "--enable-admission-plugins=NodeRestriction,PodSecurity,"
                "OwnerReferencesPermissionEnforcement",
                # Privileged pods must be rejected by Pod Security admission,
                # not by this cluster-wide switch, or the PSA test proves nothing.
                "--allow-privileged=true",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                # pods/log is proxied to the kubelet's /containerLogs: verify its
                # serving cert (issued by the cluster CA, pki.py).
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-certificate-authority={pki.ca.cert}",
                f"--kubelet-client-certificate={kubelet_client.cert}",
                f"--kubelet-client-key={kubelet_client.key}",
                "--profiling=false",
            ],
        )
        self.rest = Rest(self.server, str(pki.ca.cert), str(admin.cert), str(admin.key))
        self._wait_for(
            lambda: self._get_text("/readyz") == "ok", deadline, "kube-apiserver /readyz"
        )

        if self.has_controller_manager:
            # A real kubelet registers its Node tainted not-ready; removing that
            # taint (and watching the heartbeats) is node-lifecycle's job.
            controllers = CONTROLLERS + (("node-lifecycle-controller",) if real_node else ())
            self._spawn(
                "kube-controller-manager",
                [
                    str(self.bin_dir / "kube-controller-manager"),
                    f"--kubeconfig={kcm_kubeconfig}",
                    f"--authentication-kubeconfig={kcm_kubeconfig}",
                    f"--authorization-kubeconfig={kcm_kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={kcm_port}",
                    f"--cert-dir={self.workdir / 'kcm-certs'}",
                    f"--controllers={','.join(controllers)}",
                    # Each controller acts as its own ServiceAccount, as in a
                    # real cluster, so RBAC is exercised for them too.
                    "--use-service-account-credentials=true",
                    f"--service-account-private-key-file={sa.key}",
                    f"--root-ca-file={pki.ca.cert}",
                    "--leader-elect=false",
                    "--profiling=false",
                ],
            )
            self._wait_for(lambda: _probe_insecure(kcm_port, "/healthz"), deadline, "kcm /healthz")
            # The ServiceAccount admission plugin rejects Pods in a namespace
            # without its "default" ServiceAccount; once the controller has
            # made one, it makes the others within milliseconds.
            self._wait_for(
                lambda: self._exists("/api/v1/namespaces/default/serviceaccounts/default"),
                deadline,
                "the default ServiceAccount (serviceaccount-controller)",
            )

        if real_node:
            self._start_real_node(pki, sa, deadline)
        self.startup_seconds = time.monotonic() - t0

    def _spawn(self, name: str, argv: list[str]) -> None:
        self._components.append(_Component(name, argv, self.workdir))

    def _start_real_node(self, pki: Pki, sa: Any, deadline: float) -> None:
        """kube-scheduler (nothing else binds Pods) and the node: containerd + kubelet."""
        assert self.network is not None
        sched = pki.issue("scheduler", "system:kube-scheduler", client=True)
        sched_kubeconfig = self.workdir / "scheduler.kubeconfig"
        self._write_kubeconfig(sched_kubeconfig, pki.ca.cert, sched.cert, sched.key)
        sched_port = _free_port()
        self._spawn(
            "kube-scheduler",
            [
                str(self.bin_dir / "kube-scheduler"),
                f"--kubeconfig={sched_kubeconfig}",
                f"--authentication-kubeconfig={sched_kubeconfig}",
                f"--authorization-kubeconfig={sched_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={sched_port}",
                f"--cert-dir={self.workdir / 'scheduler-certs'}",
                "--leader-elect=false",
                "--profiling=false",
            ],
        )
        self._wait_for(lambda: _probe_insecure(sched_port, "/healthz"), deadline, "scheduler")
        name = real_node_mod.NODE_NAME
        # The Node authorizer and NodeRestriction know a node by this identity.
        client = pki.issue("node", f"system:node:{name}", ("system:nodes",), client=True)
        node_kubeconfig = self.workdir / "node.kubeconfig"
        self._write_kubeconfig(node_kubeconfig, pki.ca.cert, client.cert, client.key)
        serving = pki.issue(
            "node-serving",
            f"system:node:{name}",
            ("system:nodes",),
            server=True,
            hosts=(self.network.gateway, "127.0.0.1"),
        )
        self.node = real_node_mod.RealNode(self.workdir, self.bin_dir, self.network)
        self.node.start(
            lambda n, argv: _Component(n, argv, self.workdir),
            kubeconfig=node_kubeconfig,
            ca=pki.ca.cert,
            serving=(serving.cert, serving.key),
            ports=(_free_port(), _free_port()),
            node_ready=lambda: self._node_ready(name),
            deadline=deadline,
        )

    def _drain_node(self) -> None:
        # Deleting the Pods makes the kubelet stop their sandboxes, which is
        # when containerd runs the CNI DEL and removes the network namespace.
        pods = self.rest.get(f"/api/v1/pods?fieldSelector=spec.nodeName={real_node_mod.NODE_NAME}")
        for pod in pods.get("items", []):
            meta = pod["metadata"]
            with contextlib.suppress(ApiError):
                self.rest.delete(
                    f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                    {"gracePeriodSeconds": 0},
                )

    def _node_ready(self, name: str) -> bool:
        try:
            node = self.rest.get(f"/api/v1/nodes/{name}")
        except ApiError:
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    @property
    def pod_apiserver_env(self) -> list[dict[str, str]]:
        """Container `env` entries that point an in-cluster client at this API server.

        There is no kube-proxy, so the `kubernetes` Service's ClusterIP, which
        the kubelet puts in KUBERNETES_SERVICE_HOST, routes nowhere; a
        container's own `env` wins over the kubelet's service variables, and
        in-cluster clients (client-go, the Python client) read exactly these two.
        """
        host, port = self.server.removeprefix("https://").rsplit(":", 1)
        return [
            {"name": "KUBERNETES_SERVICE_HOST", "value": host},
            {"name": "KUBERNETES_SERVICE_PORT", "value": port},
        ]

    def _write_kubeconfig(self, path: Path, ca: Path, cert: Path, key: Path) -> None:
        def b64(p: Path) -> str:
            return base64.b64encode(p.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.server, "certificate-authority-data": b64(ca)},
                }
            ],
            "users": [
                {
                    "name": "test",
                    "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
                }
            ],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            "current-context": "test",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)

    def _get_text(self, path: str) -> str:
        try:
            return self.rest.get_text(path)
        except (OSError, ApiError, http.client.HTTPException):
            return ""

    def _exists(self, path: str) -> bool:
        try:
            self.rest.get(path)
            return True
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise

    def _wait_for(self, check: Callable[[], bool], deadline: float, what: str) -> None:
        while True:
            for c in self._components:
                if not c.alive():
                    log = c.tail()
                    if "address already in use" in log:
                        raise _PortClash(f"{c.name}: {log.splitlines()[-1] if log else ''}")
                    raise ControlPlaneError(
                        f"{c.name} exited with {c.proc.returncode} while waiting for {what}; "
                        f"last log lines ({c.log_path}):\n{log}"
                    )
            if check():
                return
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {c.name}\n{c.tail(10)}" for c in self._components)
                raise ControlPlaneError(f"timed out waiting for {what}\n{tails}")
            time.sleep(0.1)

    # --------------------------------------------------------------- helpers

    @property
    def env(self) -> dict[str, str]:
        """The test process's environment plus KUBECONFIG, and kubectl on PATH: for subprocesses."""
        env = dict(os.environ)
        env["KUBECONFIG"] = self.kubeconfig
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Runs the real kubectl against this cluster; output is text."""
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def apply(
        self, manifest: str | dict[str, Any] | list[dict[str, Any]], namespace: str = ""
    ) -> str:
        """`kubectl apply` of YAML text or of objects; returns kubectl's output."""
        if not isinstance(manifest, str):
            docs = manifest if isinstance(manifest, list) else [manifest]
            manifest = yaml.safe_dump_all(docs)
        ns = [f"--namespace={namespace}"] if namespace else []
        return self.kubectl("apply", *ns, "-f", "-", input=manifest).stdout

    def api_client(self) -> ApiClient:
        """A new `kubernetes.client.ApiClient` for this cluster (the caller closes it)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig)

    def create_namespace(
        self, name: str | None = None, labels: dict[str, str] | None = None, *, prefix: str = "t-"
    ) -> str:
        """Creates a namespace (a generated name unless `name`) and returns its name.

        Waits for its "default" ServiceAccount, because Pods cannot be created
        in a namespace without it.
        """
        metadata: dict[str, Any] = {"labels": labels or {}}
        if name:
            metadata["name"] = name
        else:
            # generateName would do, but a uuid keeps names readable in logs and
            # unique across the whole session.
            metadata["name"] = f"{prefix}{uuid.uuid4().hex[:8]}"
        ns = self.rest.post("/api/v1/namespaces", {"metadata": metadata})
        name = ns["metadata"]["name"]
        sa_path = f"/api/v1/namespaces/{name}/serviceaccounts/default"
        if not self.has_controller_manager:
            # No serviceaccount-controller (envtest binaries): do its job.
            self.rest.post(
                f"/api/v1/namespaces/{name}/serviceaccounts", {"metadata": {"name": "default"}}
            )
        deadline = time.monotonic() + 30
        while not self._exists(sa_path):
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"namespace {name}: no default ServiceAccount after 30s")
            time.sleep(0.05)
        return name

    def delete_namespace(self, name: str, *, wait: bool = False, timeout: float = 60) -> None:
        """Deletes a namespace; with `wait`, until it is gone (needs kube-controller-manager)."""
        try:
            self.rest.delete(f"/api/v1/namespaces/{name}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            return
        if wait:
            deadline = time.monotonic() + timeout
            while self._exists(f"/api/v1/namespaces/{name}"):
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f"namespace {name} still there after {timeout}s")
                time.sleep(0.1)

    def logs(self) -> dict[str, Path]:
        """Log file of each component (etcd, kube-apiserver, kube-controller-manager)."""
        return {c.name: c.log_path for c in self._components}

    # ------------------------------------------------------------------ stop

    def stop(self, *, keep_workdir: bool | None = None) -> None:
        """Stops everything (idempotent). Keeps the workdir if TFLITE_CONTROLPLANE_KEEP=1."""
        if self._stopped:
            return
        self._stopped = True
        if self.node is not None:
            self.node.stop(drain=self._drain_node)
        # Reverse start order: controllers before the API server before etcd,
        # so nothing spends its shutdown logging connection errors.
        for c in reversed(self._components):
            c.stop()
        if self.network is not None:
            real_node_mod.sweep(self.workdir)  # the bridge, when the node never started
        with _live_lock:
            _live.discard(self)
        if keep_workdir is None:
            keep_workdir = os.environ.get("TFLITE_CONTROLPLANE_KEEP") == "1"
        if not keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> KubeCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _PortClash(ControlPlaneError):
    pass


def _probe_insecure(port: int, path: str) -> bool:
    # kube-controller-manager serves with a self-signed cert it made itself;
    # this is a liveness probe on loopback, not a trust decision.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status == 200 and resp.read().strip() == b"ok"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
