"""Helpers for the operator's control-plane tests (a module of its own: test modules and
conftest.py both import it, and two modules named conftest would shadow each other)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from images.helpers import CONVERTER_IMAGE

REPO = Path(__file__).resolve().parents[1]
CRD_FILE = REPO / "crds" / "tfliteconversions.yaml"
RBAC_FILE = REPO / "tests" / "operator" / "rbac.yaml"
OPERATOR_NS = "tflite-operator-system"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5, diag=None
) -> Any:
    """Poll until `check` returns something truthy; fail with `what` (and diagnostics)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{diag()}" if diag else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(interval)


def install_crd(cluster) -> str:
    """The CRD, applied and Established; returns its name."""
    cluster.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    name = yaml.safe_load(CRD_FILE.read_text().split("\n", 2)[2])["metadata"]["name"]
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return name


def operator_kubeconfig(cluster, directory: Path) -> Path:
    """A kubeconfig for a ServiceAccount bound to rbac.yaml's ClusterRole, nothing else."""
    cluster.kubectl("create", "namespace", OPERATOR_NS)
    cluster.kubectl("apply", "-f", str(RBAC_FILE))
    cluster.kubectl("-n", OPERATOR_NS, "create", "serviceaccount", "tflite-operator")
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "tflite-operator",
        "--clusterrole=tflite-operator",
        f"--serviceaccount={OPERATOR_NS}:tflite-operator",
    )
    token = cluster.kubectl(
        "-n", OPERATOR_NS, "create", "token", "tflite-operator", "--duration=4h"
    ).stdout.strip()
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": "tflite-operator", "user": {"token": token}}],
        "contexts": [{"name": "op", "context": {"cluster": "test", "user": "tflite-operator"}}],
        "current-context": "op",
    }
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


# Converter pods' resources in the operator tests. The defaults request a whole CPU, and the
# test node has two shared cores: a third Job's pod would wait Pending for the scheduler, as
# would the next test's pods behind the previous test's still terminating. The limit stays
# the default's, so TensorFlow fits as in production.
TEST_CONVERTER_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"},
                            "limits": {"memory": "4Gi"}}  # fmt: skip


class OperatorProcess:
    """`python -m tflite_operator.controller.main` against the test cluster.

    A process here, not the chart's Deployment (that one runs in its image on the node in
    tests/shipping): these tests SIGKILL and restart it, read its log and its metrics port
    directly, and it runs the working tree's code without an image rebuild. Its converter
    pods run on the real node, in the converter image (`make images`) unless a test asks
    for another (`extra` flags come last and win).
    """

    def __init__(
        self,
        kubeconfig: Path,
        namespaces: list[str],
        gcs_url: str,
        log: Path,
        max_jobs: int = 3,
        extra: list[str] | None = None,
    ) -> None:
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.log_path = log
        self.args = [
            sys.executable, "-m", "tflite_operator.controller.main",
            *[a for ns in namespaces for a in ("--namespace", ns)],
            "--converter-image", CONVERTER_IMAGE,
            # Imported into the node's runtime (product_images); there is no registry.
            "--image-pull-policy", "Never",
            "--converter-resources", json.dumps(TEST_CONVERTER_RESOURCES),
            "--converter-env", f"STORAGE_EMULATOR_HOST={gcs_url}",
            "--max-concurrent-jobs", str(max_jobs),
            "--queue-retry-seconds", "1",
            "--job-ttl-seconds", "600",
            "--metrics-port", str(self.metrics_port),
            "--liveness", f"http://127.0.0.1:{self.liveness_port}/healthz",
            "--verbose",
            *(extra or []),
        ]  # fmt: skip
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "PYTHONPATH": os.pathsep.join(
                [str(REPO / "operator"), os.environ.get("PYTHONPATH", "")]
            ),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        wait_for(self.alive, 60, "the operator's liveness endpoint", diag=self.tail)
        return self

    def get(self, port: int, path: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return r.read().decode() if r.status == 200 else None
        except OSError:
            return None

    def alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            pytest.fail(f"the operator exited:\n{self.tail()}")
        return self.get(self.liveness_port, "/healthz") is not None

    def metrics(self) -> str:
        return self.get(self.metrics_port, "/metrics") or ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a node dies."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def tail(self, chars: int = 6000) -> str:
        try:
            return "--- operator log:\n" + self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no operator log)"
