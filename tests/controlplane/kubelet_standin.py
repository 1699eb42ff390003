"""A STAND-IN FOR THE KUBELET, for tests only. It is not a kubelet.

The real control plane (etcd, kube-apiserver, kube-controller-manager) runs
here, but there is no container runtime, so no kubelet and no scheduler. This
module plays both parts just enough for the real Job controller, garbage
collector and the operator to see Pods behave as on a node:

* it registers a Node `standin-node` (Ready) and binds every pending Pod to it
  through the Binding subresource, as the scheduler would (node selectors,
  affinity, taints and resources are ignored);
* it runs each container's `command + args` as a local process, found on the
  PATH of the test process with the running Python's bin directory put first
  (images are ignored, so `command` is required);
  init containers run first, one by one;
* it writes Pod status as a kubelet does: Running with containerStatuses, then
  Succeeded/Failed with exit code, reason and termination message; restartPolicy
  OnFailure/Always restarts the process in place and counts restartCount;
* deleting a Pod (which is what the Job controller does on activeDeadlineSeconds,
  and what the garbage collector does) sends SIGTERM to the process group, then
  SIGKILL after the grace period (at most 30 s), and then removes the Pod;
  a Pod's own spec.activeDeadlineSeconds fails it with reason DeadlineExceeded;
* logs go to one file per container (see `log_path`), and are also served on
  the kubelet's /containerLogs endpoint, so `kubectl logs` and the API's
  pods/log work through the real API server.

Filesystem paths, since nothing can be mounted: every Pod gets a directory
(KUBELET_STANDIN_ROOT); volumes become directories in it (emptyDir empty,
configMap/secret/downwardAPI/projected with their files, a ServiceAccount token
included; hostPath is the host path itself). Each container path that has a
host directory — every volumeMount's mountPath and the terminationMessagePath —
is rewritten to that host path wherever it appears as a path in the
container's command, args, env values and workingDir. So a program must get its
paths from its arguments or environment (the usual style); a path hard-coded in
the program is not rewritten. The full mapping is in KUBELET_STANDIN_PATHS (a
JSON object container path -> host path) for programs that want it.

Credentials: when the Pod automounts a ServiceAccount token (the default), the
stand-in requests a token for the Pod's ServiceAccount and sets KUBECONFIG to a
kubeconfig using it, so the process talks to the API as that ServiceAccount and
RBAC applies. With automountServiceAccountToken: false, KUBECONFIG is removed.
The rest of the environment is the test process's, with the container's env on
top (value with $(VAR) expansion, fieldRef, configMapKeyRef, secretKeyRef,
envFrom).

Not done: probes (containers are Ready once started), resource limits,
securityContext, image entrypoints, sidecar init containers, ephemeral
containers, exec/attach/port-forward, node heartbeats and events.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from controlplane.rest import JSON, ApiError, Rest

NODE_NAME = "standin-node"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
MAX_TERMINATION_MESSAGE = 4096
# What a kubelet keeps of the log for FallbackToLogsOnError.
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048
MAX_GRACE_SECONDS = 30.0

log = logging.getLogger("kubelet-standin")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _exit_code(returncode: int) -> int:
    # Popen reports death by signal N as -N; a container runtime reports 128+N.
    return 128 - returncode if returncode < 0 else returncode


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: `$$` escapes, unknown references stay as they are."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env.get(name, text[i : end + 1]))
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


class PathMap:
    """Rewrites container paths (mount points, termination-message path) to host paths."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = dict(mapping)
        # Longest first, so /data/models wins over /data.
        keys = sorted((k.rstrip("/") or "/" for k in mapping), key=len, reverse=True)
        keys = [k for k in keys if k != "/"]
        self._host = {k.rstrip("/"): v for k, v in mapping.items()}
        self._re = (
            re.compile(
                r"(?<![\w.\-/])(" + "|".join(re.escape(k) for k in keys) + r")(?=/|$|[^\w.\-])"
            )
            if keys
            else None
        )

    def __call__(self, text: str) -> str:
        if self._re is None:
            return text
        return self._re.sub(lambda m: self._host[m.group(1)], text)


class _ConfigError(RuntimeError):
    """What a kubelet reports as CreateContainerConfigError: retried, the Pod stays Pending."""


class KubeletStandin:
    def __init__(
        self,
        rest: Rest,
        root: Path,
        *,
        server: str,
        ca_file: Path,
        serving_cert: tuple[Path, Path] | None = None,
        node_name: str = NODE_NAME,
    ) -> None:
        self.rest = rest
        self.root = root
        self.server = server
        self.ca_file = ca_file
        self.node_name = node_name
        self._serving_cert = serving_cert
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._runs: dict[str, _PodRun] = {}
        self._by_name: dict[tuple[str, str], _PodRun] = {}
        self._force_deleted: set[str] = set()
        self._bound: set[str] = set()
        self._thread: threading.Thread | None = None
        self._http: ThreadingHTTPServer | None = None
        self.errors: list[str] = []

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        port = self._start_log_server()
        self._register_node(port)
        self._thread = threading.Thread(target=self._loop, name="kubelet-standin", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.rest.close_watches()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.kill("stand-in stopping", grace=2.0)
        for run in runs:
            run.join(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    # ----------------------------------------------------------- public API

    def pod_dir(self, namespace: str, pod: str) -> Path:
        """The host directory of the most recent Pod of that name (volumes, logs)."""
        return self._run_for(namespace, pod).dir

    def log_path(self, namespace: str, pod: str, container: str | None = None) -> Path:
        """The log file (stdout and stderr) of a container; the first container by default."""
        run = self._run_for(namespace, pod)
        return run.log_path(container or run.container_names()[0])

    def running(self, namespace: str, pod: str) -> bool:
        """Whether a process of that Pod is still alive here."""
        try:
            run = self._run_for(namespace, pod)
        except KeyError:
            return False
        return not run.finished.is_set()

    def logs(self, namespace: str, pod: str, container: str | None = None) -> str:
        try:
            return self.log_path(namespace, pod, container).read_text(errors="replace")
        except (KeyError, FileNotFoundError):
            return ""

    def _run_for(self, namespace: str, pod: str) -> _PodRun:
        with self._lock:
            run = self._by_name.get((namespace, pod))
        if run is None:
            raise KeyError(f"the kubelet stand-in never ran a Pod {namespace}/{pod}")
        return run

    # ------------------------------------------------------------------ node

    def _register_node(self, port: int) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "tflite-operator.test/kubelet-standin": "true",
                },
            },
        }
        with contextlib.suppress(ApiError):
            self.rest.post("/api/v1/nodes", node)
        cpus = str(os.cpu_count() or 1)
        resources = {"cpu": cpus, "memory": "16Gi", "pods": "250", "ephemeral-storage": "50Gi"}
        status = {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet stand-in is running processes locally",
                    "lastHeartbeatTime": _now(),
                    "lastTransitionTime": _now(),
                }
            ],
            "nodeInfo": {
                "machineID": "standin",
                "systemUUID": "standin",
                "bootID": "standin",
                "kernelVersion": os.uname().release,
                "osImage": "kubelet stand-in",
                "containerRuntimeVersion": "standin://local-processes",
                "kubeletVersion": "standin",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        self.rest.merge_patch(f"/api/v1/nodes/{self.node_name}/status", {"status": status})

    # ------------------------------------------------------------ pod loop

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                listing = self.rest.get("/api/v1/pods")
                seen = set()
                for pod in listing.get("items", []):
                    seen.add(pod["metadata"]["uid"])
                    self._sync(pod)
                with self._lock:
                    gone = [uid for uid in self._runs if uid not in seen]
                for uid in gone:
                    self._forget(uid)
                rv = listing["metadata"]["resourceVersion"]
                # The watch ends by itself within 30 s and we relist: that is
                # our resync, and it also recovers from "resourceVersion too old".
                for event in self.rest.watch("/api/v1/pods", rv, timeout_seconds=30):
                    if self._stop.is_set():
                        return
                    kind, obj = event.get("type"), event.get("object", {})
                    if kind == "ERROR":
                        break
                    if kind == "DELETED":
                        self._forget(obj["metadata"]["uid"])
                    else:
                        self._sync(obj)
            except Exception as exc:
                if self._stop.is_set():
                    return
                self._error(f"pod loop: {exc!r}")
                self._stop.wait(0.5)

    def _error(self, message: str) -> None:
        log.warning("%s", message)
        self.errors.append(message)

    def _sync(self, pod: JSON) -> None:
        meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
        uid = meta["uid"]
        terminal = status.get("phase") in ("Succeeded", "Failed")
        node = spec.get("nodeName")
        if not node:
            if (
                meta.get("deletionTimestamp")
                or terminal
                or spec.get("schedulingGates")
                or spec.get("schedulerName", "default-scheduler") != "default-scheduler"
                or uid in self._bound
            ):
                return
            self._bind(pod)
            return
        if node != self.node_name:
            return
        with self._lock:
            run = self._runs.get(uid)
        if meta.get("deletionTimestamp"):
            if run is not None and not run.finished.is_set():
                grace = meta.get("deletionGracePeriodSeconds")
                run.kill("deleted", grace=float(grace) if grace is not None else None)
            else:
                self._force_delete(pod)
            return
        if run is None and not terminal:
            run = _PodRun(self, pod)
            with self._lock:
                self._runs[uid] = run
                self._by_name[(meta["namespace"], meta["name"])] = run
            run.start()

    def _forget(self, uid: str) -> None:
        with self._lock:
            run = self._runs.pop(uid, None)
        self._force_deleted.discard(uid)
        self._bound.discard(uid)
        if run is not None and not run.finished.is_set():
            run.kill("deleted", grace=0.0)

    def _bind(self, pod: JSON) -> None:
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            self.rest.post(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding", binding
            )
            self._bound.add(meta["uid"])
        except ApiError as exc:
            # 409: already bound (we raced our own relist); 404: deleted meanwhile.
            if exc.status not in (404, 409):
                self._error(f"bind {meta['namespace']}/{meta['name']}: {exc}")

    def _force_delete(self, pod: JSON) -> None:
        """What a kubelet does once a deleted Pod's containers are gone: delete with grace 0."""
        meta = pod["metadata"]
        if meta["uid"] in self._force_deleted:
            return
        self._force_deleted.add(meta["uid"])
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": meta["uid"]},
        }
        try:
            self.rest.delete(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body)
        except ApiError as exc:
            if exc.status not in (404, 409):
                self._error(f"delete {meta['namespace']}/{meta['name']}: {exc}")

    # ----------------------------------------------------------- log server

    def _start_log_server(self) -> int:
        """Serves /containerLogs like a kubelet, so the API server's pods/log works."""
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self.send_error(404)
                    return
                _, namespace, pod, container = parts
                query = urllib.parse.parse_qs(url.query)
                try:
                    run = standin._run_for(namespace, pod)
                    path = run.log_path(container)
                except KeyError:
                    self.send_error(404, "no such pod on the stand-in")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                tail = query.get("tailLines", [""])[0]
                follow = query.get("follow", ["false"])[0] == "true"
                try:
                    for chunk in _read_log(path, run, int(tail) if tail else None, follow):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        if self._serving_cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self._serving_cert[0]), str(self._serving_cert[1]))
            self._http.socket = ctx.wrap_socket(self._http.socket, server_side=True)
        threading.Thread(target=self._http.serve_forever, name="standin-logs", daemon=True).start()
        return int(self._http.server_address[1])


def _read_log(path: Path, run: _PodRun, tail: int | None, follow: bool) -> Iterator[bytes]:
    data = path.read_bytes() if path.exists() else b""
    if tail is not None:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-tail:]) if tail > 0 else b""
    yield data
    if not follow:
        return
    offset = path.stat().st_size if path.exists() else 0
    while True:
        done = run.finished.is_set()
        if path.exists():
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            if chunk:
                offset += len(chunk)
                yield chunk
        if done:
            return
        time.sleep(0.2)


class _PodRun:
    """One Pod on the stand-in: its directory, its processes and its status."""

    def __init__(self, standin: KubeletStandin, pod: JSON) -> None:
        self.standin = standin
        self.rest = standin.rest
        self.pod = pod
        meta = pod["metadata"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.spec: JSON = pod["spec"]
        self.dir = standin.root / "pods" / f"{self.namespace}_{self.name}_{self.uid[:8]}"
        self.finished = threading.Event()
        self._kill = threading.Event()
        self._kill_reason = ""
        self._grace: float | None = None
        self._status_lock = threading.Lock()
        self._statuses: dict[str, JSON] = {}
        self._init_statuses: dict[str, JSON] = {}
        self._start_time = _now()
        self._started = time.monotonic()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._thread = threading.Thread(target=self._main, name=f"pod-{self.name}", daemon=True)

    def container_names(self) -> list[str]:
        return [c["name"] for c in self.spec.get("containers", [])]

    def log_path(self, container: str) -> Path:
        names = self.container_names() + [c["name"] for c in self.spec.get("initContainers", [])]
        if container not in names:
            raise KeyError(container)
        return self.dir / "logs" / f"{container}.log"

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def kill(self, reason: str, grace: float | None) -> None:
        if self._kill.is_set():
            return
        self._kill_reason = reason
        self._grace = grace
        self._kill.set()

    # ---------------------------------------------------------------- main

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:
            self.standin._error(f"pod {self.namespace}/{self.name}: {exc!r}")
        finally:
            self.finished.set()
            if self._kill_reason == "deleted" or self._deleting():
                self.standin._force_delete(self.pod)

    def _deleting(self) -> bool:
        try:
            pod = self.rest.get(f"/api/v1/namespaces/{self.namespace}/pods/{self.name}")
        except ApiError:
            return False
        return bool(pod["metadata"].get("deletionTimestamp")) and pod["metadata"]["uid"] == self.uid

    def _run(self) -> None:
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        inits = self.spec.get("initContainers", [])
        mains = self.spec.get("containers", [])
        for c in inits:
            self._init_statuses[c["name"]] = _waiting(c, "PodInitializing")
        for c in mains:
            self._statuses[c["name"]] = _waiting(
                c, "PodInitializing" if inits else "ContainerCreating"
            )
        volumes = self._prepare_volumes()
        self._publish("Pending")
        deadline = self.spec.get("activeDeadlineSeconds")
        if deadline is not None:
            threading.Thread(target=self._deadline, args=(float(deadline),), daemon=True).start()

        for c in inits:
            code = self._run_container(c, volumes, init=True)
            if code != 0 or self._kill.is_set():
                self._finish()
                return
        threads = [
            threading.Thread(target=self._run_container, args=(c, volumes), daemon=True)
            for c in mains
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._finish()

    def _deadline(self, seconds: float) -> None:
        if not self._kill.wait(seconds) and not self.finished.is_set():
            self.kill("DeadlineExceeded", grace=None)

    def _finish(self) -> None:
        codes = [
            s["state"]["terminated"]["exitCode"]
            for s in self._statuses.values()
            if "terminated" in s["state"]
        ]
        init_failed = any(
            s["state"].get("terminated", {}).get("exitCode", 0) != 0
            for s in self._init_statuses.values()
        )
        ok = not init_failed and len(codes) == len(self._statuses) and all(c == 0 for c in codes)
        extra: JSON = {}
        if self._kill_reason == "DeadlineExceeded":
            ok = False
            extra = {
                "reason": "DeadlineExceeded",
                "message": "Pod was active on the node longer than the specified deadline",
            }
        for s in self._statuses.values():
            if "terminated" not in s["state"]:
                # Never started (init failure or killed while initializing).
                s["state"] = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown"}}
        self._publish("Succeeded" if ok else "Failed", extra)

    # ------------------------------------------------------------- status

    def _publish(self, phase: str, extra: JSON | None = None) -> None:
        with self._status_lock:
            running = phase == "Running" or (
                phase == "Pending" and any("running" in s["state"] for s in self._statuses.values())
            )
            all_ready = bool(self._statuses) and all(
                s.get("ready") for s in self._statuses.values()
            )
            if running:
                phase = "Running"
            initialized = all(
                "terminated" in s["state"] and s["state"]["terminated"]["exitCode"] == 0
                for s in self._init_statuses.values()
            )
            now = _now()

            def cond(kind: str, ok: bool, reason: str = "") -> JSON:
                c = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now}
                if reason and not ok:
                    c["reason"] = reason
                return c

            done_reason = (
                "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
            )
            status: JSON = {
                "phase": phase,
                "hostIP": "127.0.0.1",
                "hostIPs": [{"ip": "127.0.0.1"}],
                "podIP": "127.0.0.1",
                "podIPs": [{"ip": "127.0.0.1"}],
                "startTime": self._start_time,
                "qosClass": self.pod.get("status", {}).get("qosClass", "BestEffort"),
                "conditions": [
                    cond("PodScheduled", True),
                    cond("PodReadyToStartContainers", True),
                    cond("Initialized", initialized, "ContainersNotInitialized"),
                    cond("ContainersReady", all_ready, done_reason),
                    cond("Ready", all_ready, done_reason),
                ],
                "containerStatuses": list(self._statuses.values()),
            }
            if self._init_statuses:
                status["initContainerStatuses"] = list(self._init_statuses.values())
            if extra:
                status.update(extra)
            try:
                # Merge patch replaces lists whole: every call sends the full
                # picture, so no stale "running" state can survive a merge.
                self.rest.merge_patch(
                    f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status",
                    {"metadata": {"uid": self.uid}, "status": status},
                )
            except ApiError as exc:
                if exc.status not in (404, 409):
                    self.standin._error(f"status of {self.namespace}/{self.name}: {exc}")

    def _set(self, init: bool, name: str, status: JSON) -> None:
        with self._status_lock:
            (self._init_statuses if init else self._statuses)[name] = status

    # ---------------------------------------------------------- containers

    def _run_container(self, c: JSON, volumes: dict[str, Path], init: bool = False) -> int:
        name = c["name"]
        restart_count = 0
        last_state: JSON = {}
        backoff = 1.0
        while True:
            if self._kill.is_set():
                return 137
            try:
                argv, env, cwd, term_file = self._container_setup(c, volumes)
            except _ConfigError as exc:
                status = _waiting(c, "CreateContainerConfigError", str(exc))
                self._set(init, name, status)
                self._publish("Pending")
                if self._kill.wait(1.0):
                    return 137
                continue
            started_at = _now()
            code, message, reason = self._exec(c, init, argv, env, cwd, restart_count, last_state)
            if not message:
                message = _read_termination_message(term_file, c, code, self.log_path(name))
            finished_at = _now()
            terminated: JSON = {
                "exitCode": code,
                "reason": reason or ("Completed" if code == 0 else "Error"),
                "startedAt": started_at,
                "finishedAt": finished_at,
                "containerID": f"standin://{self.uid[:8]}-{name}-{restart_count}",
            }
            if message:
                terminated["message"] = message
            policy = self.spec.get("restartPolicy", "Always")
            restart = not self._kill.is_set() and (
                (policy == "Always" and not init) or (policy != "Never" and code != 0)
            )
            status = _container_status(c, {"terminated": terminated}, restart_count, last_state)
            status["containerID"] = terminated["containerID"]
            if not restart:
                self._set(init, name, status)
                if not init:
                    self._publish("Running")
                return code
            # Restart in place, as a kubelet does for OnFailure/Always.
            last_state = {"terminated": terminated}
            restart_count += 1
            self._set(init, name, _waiting(c, "CrashLoopBackOff", "", restart_count, last_state))
            self._publish("Running")
            if self._kill.wait(backoff):
                return code
            backoff = min(backoff * 2, 10.0)

    def _exec(
        self,
        c: JSON,
        init: bool,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        restart_count: int,
        last_state: JSON,
    ) -> tuple[int, str, str]:
        """Runs one container process to its end; returns (exit code, message, reason)."""
        name = c["name"]
        log_path = self.log_path(name)
        with log_path.open("ab") as logf:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    # Its own process group, so a kill reaches whatever it spawned.
                    start_new_session=True,
                )
            except OSError as exc:
                # A runtime reports a missing executable as StartError, exit code 128.
                logf.write(f"kubelet-standin: cannot start {argv[0]!r}: {exc}\n".encode())
                return 128, f"failed to start container process: {exc}", "StartError"
        with (self.standin.root / "pgids").open("a") as f:
            f.write(f"{proc.pid}\n")
        self._procs[name] = proc
        running = _container_status(
            c,
            {"running": {"startedAt": _now()}},
            restart_count,
            last_state,
            ready=not init,
        )
        running["containerID"] = f"standin://{self.uid[:8]}-{name}-{restart_count}"
        self._set(init, name, running)
        self._publish("Running" if not init else "Pending")
        killed = False
        while proc.poll() is None:
            if self._kill.wait(0.05) and not killed:
                killed = True
                grace = self._grace
                if grace is None:
                    grace = float(self.spec.get("terminationGracePeriodSeconds", 30))
                _terminate(proc, min(grace, MAX_GRACE_SECONDS))
        return _exit_code(proc.returncode), "", ""

    def _container_setup(
        self, c: JSON, volumes: dict[str, Path]
    ) -> tuple[list[str], dict[str, str], Path, Path]:
        name = c["name"]
        term_dir = self.dir / "termination"
        term_dir.mkdir(exist_ok=True)
        term_file = term_dir / name
        term_file.write_bytes(b"")
        mapping: dict[str, str] = {}
        for m in c.get("volumeMounts", []):
            host = volumes.get(m["name"])
            if host is None:
                raise _ConfigError(f"volume {m['name']!r} is not declared in the Pod")
            if m.get("subPath"):
                host = host / m["subPath"]
                host.mkdir(parents=True, exist_ok=True)
            mapping[m["mountPath"]] = str(host)
        mapping[c.get("terminationMessagePath", DEFAULT_TERMINATION_PATH)] = str(term_file)
        rewrite = PathMap(mapping)

        pod_env = self._container_env(c)
        env = dict(os.environ)
        # The running interpreter's bin directory first, so that `python` and the
        # project's console scripts (tflite-operator) resolve to the test venv
        # even when it was not activated.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update(
            {
                "HOSTNAME": self.name,
                "KUBELET_STANDIN": "1",
                "KUBELET_STANDIN_ROOT": str(self.dir),
                "KUBELET_STANDIN_PATHS": json.dumps(mapping, sort_keys=True),
            }
        )
        kubeconfig = self._service_account_kubeconfig()
        if kubeconfig is None:
            env.pop("KUBECONFIG", None)
        else:
            env["KUBECONFIG"] = str(kubeconfig)
        env.update({k: rewrite(v) for k, v in pod_env.items()})

        command = [expand(x, pod_env) for x in c.get("command", [])]
        args = [expand(x, pod_env) for x in c.get("args", [])]
        if not command:
            raise _ConfigError(
                "the kubelet stand-in cannot run an image's entrypoint: "
                "give the container a `command`"
            )
        argv = [rewrite(x) for x in command + args]
        cwd = self.dir
        if c.get("workingDir"):
            wd = Path(rewrite(c["workingDir"]))
            if wd.is_dir():
                cwd = wd
        return argv, env, cwd, term_file

    # ------------------------------------------------------------------ env

    def _container_env(self, c: JSON) -> dict[str, str]:
        env: dict[str, str] = {}
        for src in c.get("envFrom", []):
            prefix = src.get("prefix", "")
            if "configMapRef" in src:
                ref = src["configMapRef"]
                data = self._config_map(ref["name"], ref.get("optional", False))
            else:
                ref = src["secretRef"]
                data = self._secret(ref["name"], ref.get("optional", False))
            env.update({prefix + k: v for k, v in data.items()})
        for e in c.get("env", []):
            if "valueFrom" in e:
                value = self._value_from(e["valueFrom"], c)
                if value is None:
                    continue
            else:
                value = expand(e.get("value", ""), env)
            env[e["name"]] = value
        return env

    def _value_from(self, source: JSON, c: JSON) -> str | None:
        if "fieldRef" in source:
            return self._field(source["fieldRef"]["fieldPath"])
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            data = self._config_map(ref["name"], ref.get("optional", False))
            return _key(data, ref, "configmap")
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            data = self._secret(ref["name"], ref.get("optional", False))
            return _key(data, ref, "secret")
        if "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            kind, _, resource = ref["resource"].partition(".")
            value = c.get("resources", {}).get(kind, {}).get(resource)
            if value is None:
                raise _ConfigError(f"the stand-in has no default for {ref['resource']}")
            return str(value)
        raise _ConfigError(f"unsupported valueFrom: {sorted(source)}")

    def _field(self, path: str) -> str:
        meta = self.pod["metadata"]
        m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if m:
            return str(meta.get(m.group(1), {}).get(m.group(2), ""))
        values = {
            "metadata.name": meta["name"],
            "metadata.namespace": meta["namespace"],
            "metadata.uid": meta["uid"],
            "spec.nodeName": self.standin.node_name,
            "spec.serviceAccountName": self.spec.get("serviceAccountName", "default"),
            "status.hostIP": "127.0.0.1",
            "status.hostIPs": "127.0.0.1",
            "status.podIP": "127.0.0.1",
            "status.podIPs": "127.0.0.1",
        }
        if path not in values:
            raise _ConfigError(f"unsupported fieldRef {path!r}")
        return values[path]

    def _config_map(self, name: str, optional: bool) -> dict[str, str]:
        try:
            cm = self.rest.get(f"/api/v1/namespaces/{self.namespace}/configmaps/{name}")
        except ApiError as exc:
            if exc.status == 404 and optional:
                return {}
            raise _ConfigError(f'configmap "{name}" not found') from exc
        data = dict(cm.get("data", {}))
        for k, v in cm.get("binaryData", {}).items():
            data[k] = base64.b64decode(v).decode(errors="replace")
        return data

    def _secret(self, name: str, optional: bool) -> dict[str, str]:
        try:
            secret = self.rest.get(f"/api/v1/namespaces/{self.namespace}/secrets/{name}")
        except ApiError as exc:
            if exc.status == 404 and optional:
                return {}
            raise _ConfigError(f'secret "{name}" not found') from exc
        return {
            k: base64.b64decode(v).decode(errors="replace")
            for k, v in secret.get("data", {}).items()
        }

    # -------------------------------------------------------------- volumes

    def _prepare_volumes(self) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for v in self.spec.get("volumes", []):
            name = v["name"]
            if "hostPath" in v:
                out[name] = Path(v["hostPath"]["path"])
                continue
            path = self.dir / "volumes" / name
            path.mkdir(parents=True, exist_ok=True)
            out[name] = path
            try:
                if "configMap" in v:
                    self._write_items(path, v["configMap"], self._config_map)
                elif "secret" in v:
                    src = dict(v["secret"], name=v["secret"].get("secretName", ""))
                    self._write_items(path, src, self._secret)
                elif "downwardAPI" in v:
                    self._write_downward(path, v["downwardAPI"].get("items", []))
                elif "projected" in v:
                    for source in v["projected"].get("sources", []):
                        self._write_projection(path, source)
            except _ConfigError as exc:
                self.standin._error(f"volume {name} of {self.namespace}/{self.name}: {exc}")
        return out

    def _write_items(self, path: Path, src: JSON, read: Any) -> None:
        data: dict[str, str] = read(src.get("name", ""), src.get("optional", False))
        items = src.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            if item["key"] in data:
                target = path / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(data[item["key"]])

    def _write_downward(self, path: Path, items: list[JSON]) -> None:
        for item in items:
            if "fieldRef" in item:
                target = path / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(self._field(item["fieldRef"]["fieldPath"]))

    def _write_projection(self, path: Path, source: JSON) -> None:
        if "serviceAccountToken" in source:
            sat = source["serviceAccountToken"]
            token = self._token(sat.get("audience"), sat.get("expirationSeconds", 3600))
            (path / sat["path"]).write_text(token)
        elif "configMap" in source:
            self._write_items(path, source["configMap"], self._config_map)
        elif "secret" in source:
            self._write_items(path, source["secret"], self._secret)
        elif "downwardAPI" in source:
            self._write_downward(path, source["downwardAPI"].get("items", []))

    # --------------------------------------------------------- credentials

    def _token(self, audience: str | None, seconds: int) -> str:
        sa = self.spec.get("serviceAccountName", "default")
        body: JSON = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": max(int(seconds), 600),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": self.name,
                    "uid": self.uid,
                },
            },
        }
        if audience:
            body["spec"]["audiences"] = [audience]
        try:
            resp = self.rest.post(
                f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{sa}/token", body
            )
        except ApiError as exc:
            raise _ConfigError(f"token for serviceaccount {sa}: {exc}") from exc
        return str(resp["status"]["token"])

    def _service_account_kubeconfig(self) -> Path | None:
        automount = self.spec.get("automountServiceAccountToken")
        has_api_volume = any(
            v["name"].startswith("kube-api-access-") for v in self.spec.get("volumes", [])
        )
        if automount is False or not has_api_volume:
            return None
        path = self.dir / "serviceaccount.kubeconfig"
        if path.exists():
            return path
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "in-cluster",
                    "cluster": {
                        "server": self.standin.server,
                        "certificate-authority": str(self.standin.ca_file),
                    },
                }
            ],
            "users": [{"name": "sa", "user": {"token": self._token(None, 3600 * 6)}}],
            "contexts": [
                {
                    "name": "in-cluster",
                    "context": {
                        "cluster": "in-cluster",
                        "user": "sa",
                        "namespace": self.namespace,
                    },
                }
            ],
            "current-context": "in-cluster",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path


def _key(data: dict[str, str], ref: JSON, kind: str) -> str | None:
    if ref["key"] in data:
        return data[ref["key"]]
    if ref.get("optional"):
        return None
    raise _ConfigError(f"couldn't find key {ref['key']} in {kind} {ref['name']}")


def _waiting(
    c: JSON, reason: str, message: str = "", restart_count: int = 0, last: JSON | None = None
) -> JSON:
    waiting: JSON = {"reason": reason}
    if message:
        waiting["message"] = message
    return _container_status(c, {"waiting": waiting}, restart_count, last or {})


def _container_status(
    c: JSON, state: JSON, restart_count: int, last_state: JSON, *, ready: bool = False
) -> JSON:
    running = "running" in state
    return {
        "name": c["name"],
        "image": c.get("image", ""),
        "imageID": "",
        "ready": running and ready,
        "started": running,
        "restartCount": restart_count,
        "state": state,
        "lastState": last_state,
    }


def _terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=max(grace, 0.1))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _read_termination_message(path: Path, c: JSON, code: int, log_path: Path) -> str:
    try:
        with path.open("rb") as f:
            message = f.read(MAX_TERMINATION_MESSAGE)
    except OSError:
        message = b""
    if not message and code != 0 and c.get("terminationMessagePolicy") == "FallbackToLogsOnError":
        try:
            lines = log_path.read_bytes().splitlines(keepends=True)[-FALLBACK_LOG_LINES:]
        except OSError:
            lines = []
        message = b"".join(lines)[-FALLBACK_LOG_BYTES:]
    return message.decode(errors="replace")
