"""The real node: what only a kubelet and a container runtime show.

Each pod runs the static `probe` image (images/probe.c) built and imported
without a registry. The probe reports, in its termination message, what the
kernel says about it (uid, read-only root, effective capabilities, seccomp,
no_new_privs), so these tests check what the kubelet and runc enforced, not
what the Pod spec asked for.
"""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from controlplane.cluster import KubeCluster
from controlplane.images import PROBE_IMAGE

pytestmark = pytest.mark.controlplane

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


@pytest.fixture
def restricted_ns(real_node_cluster: KubeCluster) -> Iterator[str]:
    name = real_node_cluster.create_namespace(labels=RESTRICTED, prefix="node-")
    yield name
    real_node_cluster.delete_namespace(name)


def probe_pod(
    args: list[str], *, memory: str = "32Mi", env: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """A Pod that satisfies the restricted Pod Security Standard, running the probe."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"probe-{uuid.uuid4().hex[:6]}"},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": PROBE_IMAGE,
                    # Never: there is no registry; the image was imported into the runtime.
                    "imagePullPolicy": "Never",
                    "command": ["/probe", *args],
                    "env": env or [],
                    "resources": {"limits": {"memory": memory, "cpu": "200m"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def run_to_end(cluster: KubeCluster, ns: str, pod: dict[str, Any], timeout: float = 90) -> Any:
    """Creates the Pod and returns it once Succeeded or Failed."""
    name = pod["metadata"]["name"]
    cluster.apply(pod, namespace=ns)
    deadline = time.monotonic() + timeout
    while True:
        got = json.loads(cluster.kubectl("get", "pod", "-n", ns, name, "-o", "json").stdout)
        if got["status"].get("phase") in ("Succeeded", "Failed"):
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"pod {ns}/{name} not finished after {timeout}s: {got['status']}")
        time.sleep(0.3)


def terminated(pod: Any) -> Any:
    state = pod["status"]["containerStatuses"][0]["state"]
    assert "terminated" in state, pod["status"]
    return state["terminated"]


def test_restricted_pod_runs_confined_and_reports_through_kubelet(
    real_node_cluster: KubeCluster, restricted_ns: str
) -> None:
    pod = run_to_end(real_node_cluster, restricted_ns, probe_pod(["exit", "3", "bye"]))

    term = terminated(pod)
    assert pod["status"]["phase"] == "Failed"
    assert term["exitCode"] == 3
    assert term["reason"] == "Error"
    # What the process saw, as the kernel reports it: uid/gid 65532, writing to
    # / fails with EROFS, no effective capability, seccomp filter mode (2),
    # no_new_privs from allowPrivilegeEscalation: false.
    assert term["message"] == (
        "uid=65532 gid=65532 root=ro capeff=0000000000000000 seccomp=2 nnp=1 bye"
    )
    assert pod["spec"]["nodeName"] == "tflite-node"  # placed by the real scheduler
    assert ipaddress.ip_address(pod["status"]["podIP"]) in real_node_cluster.network.subnet


def test_restricted_namespace_refuses_a_root_pod(
    real_node_cluster: KubeCluster, restricted_ns: str
) -> None:
    pod = probe_pod(["exit", "0", "x"])
    pod["spec"]["securityContext"] = {"runAsUser": 0}
    proc = real_node_cluster.kubectl(
        "apply", "-n", restricted_ns, "-f", "-", input=json.dumps(pod), check=False
    )
    assert proc.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in proc.stderr


def test_memory_limit_too_small_is_oomkilled(
    real_node_cluster: KubeCluster, restricted_ns: str
) -> None:
    # 64 MiB touched against a 16 MiB limit: the kernel's memory cgroup kills it.
    pod = run_to_end(real_node_cluster, restricted_ns, probe_pod(["alloc", "64"], memory="16Mi"))

    term = terminated(pod)
    assert term["reason"] == "OOMKilled", term
    assert term["exitCode"] == 137


def test_memory_within_limit_is_not_killed(
    real_node_cluster: KubeCluster, restricted_ns: str
) -> None:
    # The control for the OOM test: the same program fits a larger limit.
    pod = run_to_end(real_node_cluster, restricted_ns, probe_pod(["alloc", "8"], memory="32Mi"))

    term = terminated(pod)
    assert (term["exitCode"], term["reason"], term["message"]) == (
        0,
        "Completed",
        "allocated 8 MiB",
    )


def test_pod_reaches_the_apiserver_and_nothing_off_this_machine(
    real_node_cluster: KubeCluster, restricted_ns: str
) -> None:
    env = real_node_cluster.pod_apiserver_env
    # Empty host and port: the probe takes KUBERNETES_SERVICE_HOST/PORT, as
    # in-cluster clients do.
    pod = run_to_end(real_node_cluster, restricted_ns, probe_pod(["connect", "", ""], env=env))
    host = env[0]["value"]
    assert terminated(pod)["message"] == f"connected to {host}:{env[1]['value']}"

    # TEST-NET-2, on no link here: without a default route the pod cannot even try.
    pod = run_to_end(real_node_cluster, restricted_ns, probe_pod(["connect", "198.51.100.7", "80"]))
    term = terminated(pod)
    assert term["exitCode"] == 1
    assert "Network is unreachable" in term["message"]


def test_job_completes_through_the_job_controller(
    real_node_cluster: KubeCluster, restricted_ns: str
) -> None:
    pod_spec = probe_pod(["exit", "0", "done"])["spec"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "probe-job"},
        "spec": {"backoffLimit": 0, "template": {"spec": pod_spec}},
    }
    real_node_cluster.apply(job, namespace=restricted_ns)
    real_node_cluster.kubectl(
        "wait", "-n", restricted_ns, "--for=condition=complete", "job/probe-job", "--timeout=90s"
    )
    pods = json.loads(
        real_node_cluster.kubectl(
            "get", "pods", "-n", restricted_ns, "-l", "job-name=probe-job", "-o", "json"
        ).stdout
    )["items"]
    assert [terminated(p)["message"].rsplit(" ", 1)[-1] for p in pods] == ["done"]
