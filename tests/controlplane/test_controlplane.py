"""Self-tests of the control plane harness, all against the real binaries.

They pin down the behaviours the operator's tests rely on and that a mocked
API would get wrong: the Job controller's retries and deadlines, the garbage
collector stopping what it collects on the node, pods/log and termination
messages through the kubelet, Pod Security admission, structural-schema
pruning and CEL. Pods run the probe image on the real node (test_real_node.py
says what the probe does); what only the node shows (confinement, OOM, the
network) is in test_real_node.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from controlplane.cluster import KubeCluster, KubectlError
from controlplane.test_real_node import probe_pod, run_to_end, terminated

pytestmark = pytest.mark.controlplane

T = TypeVar("T")


def eventually(check: Callable[[], T | None], timeout: float = 60, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(0.2)


def get(cluster: KubeCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", "-o", "json", *args).stdout)


def job(name: str, probe_args: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, **spec, "template": {"spec": probe_pod(probe_args)["spec"]}},
    }


def container_id(cluster: KubeCluster, namespace: str, pod_name: str) -> str | None:
    """The pod's container, once the kubelet reports it running."""
    p = get(cluster, "pod", pod_name, "-n", namespace)
    for cs in p["status"].get("containerStatuses", []):
        if "running" in cs["state"]:
            return str(cs["containerID"])
    return None


def test_job_completes_and_its_log_comes_through_the_kubelet(
    controller_manager: KubeCluster, real_node_cluster: KubeCluster, namespace: str
) -> None:
    cluster = controller_manager
    cluster.apply(job("hello", ["exit", "0", "hello"]), namespace)
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=complete", "job/hello", "--timeout=90s"
    )
    status = get(cluster, "job", "hello", "-n", namespace)["status"]
    assert status["succeeded"] == 1
    pods = get(cluster, "pods", "-n", namespace, "-l", "job-name=hello")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    assert pods[0]["spec"]["nodeName"] == real_node_cluster.node.name
    # pods/log: API server -> the kubelet's /containerLogs (serving cert checked) -> the
    # file containerd wrote.
    log = cluster.kubectl("logs", "-n", namespace, "job/hello").stdout
    assert log.startswith("uid=65532 ") and log.endswith(" hello\n"), log


def test_failing_job_retries_then_fails_with_exit_code(
    controller_manager: KubeCluster, real_node_cluster: KubeCluster, namespace: str
) -> None:
    cluster = controller_manager
    cluster.apply(job("fails", ["exit", "3", "bad"], backoffLimit=1), namespace)
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=failed", "job/fails", "--timeout=120s"
    )
    status = get(cluster, "job", "fails", "-n", namespace)["status"]
    assert status["failed"] == 2
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    pods = get(cluster, "pods", "-n", namespace, "-l", "job-name=fails")["items"]
    assert len(pods) == 2
    for p in pods:
        assert p["status"]["phase"] == "Failed"
        assert terminated(p)["exitCode"] == 3
        assert terminated(p)["reason"] == "Error"


def test_deleting_owner_garbage_collects_job_and_pods(
    controller_manager: KubeCluster, real_node_cluster: KubeCluster, namespace: str
) -> None:
    cluster, node = controller_manager, real_node_cluster.node
    cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}, namespace
    )
    owner = get(cluster, "configmap", "owner", "-n", namespace)["metadata"]
    manifest = job("owned", ["sleep", "300"])
    manifest["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["uid"]}
    ]
    cluster.apply(manifest, namespace)

    def running_container() -> str | None:
        items = get(cluster, "pods", "-n", namespace, "-l", "job-name=owned")["items"]
        return container_id(cluster, namespace, items[0]["metadata"]["name"]) if items else None

    cid = eventually(running_container, 90, "the Job's pod to run")
    assert node.task_status(cid) == "RUNNING"

    cluster.kubectl("delete", "-n", namespace, "configmap", "owner")

    def all_gone() -> bool:
        jobs = get(cluster, "jobs", "-n", namespace)["items"]
        pods = get(cluster, "pods", "-n", namespace)["items"]
        return not jobs and not pods

    eventually(all_gone, 60, "the garbage collector to remove the Job and its Pod")
    assert node.task_status(cid) in (None, "STOPPED"), "the container should be stopped"


def test_pod_security_admission_rejects_privileged_pod(kube_cluster: KubeCluster) -> None:
    ns = kube_cluster.create_namespace(
        labels={"pod-security.kubernetes.io/enforce": "restricted"}, prefix="psa-"
    )
    try:
        privileged = probe_pod(["exit", "0", "x"])
        privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
        with pytest.raises(KubectlError) as err:
            kube_cluster.apply(privileged, ns)
        assert 'violates PodSecurity "restricted:latest"' in err.value.stderr
        assert "privileged" in err.value.stderr
    finally:
        kube_cluster.delete_namespace(ns)


CRD_GROUP = "selftest.tflite-operator.test"


def widget_crd(plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{CRD_GROUP}"},
        "spec": {
            "group": CRD_GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}},
                                    "x-kubernetes-validations": [
                                        {"rule": "self.size <= 10", "message": "size too big"}
                                    ],
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"ready": {"type": "boolean"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def test_crd_status_subresource_prunes_undeclared_fields_and_enforces_cel(
    kube_cluster: KubeCluster, namespace: str
) -> None:
    plural = f"widgets{uuid.uuid4().hex[:6]}"
    crd = widget_crd(plural)
    kube_cluster.apply(crd)
    try:
        kube_cluster.kubectl(
            "wait", "--for=condition=established", f"crd/{plural}.{CRD_GROUP}", "--timeout=30s"
        )
        resource = f"{plural}.{CRD_GROUP}"
        widget = {
            "apiVersion": f"{CRD_GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 1},
        }

        def created() -> bool:
            # Discovery of a brand-new CRD can lag a moment behind "established".
            apply = ["apply", "-n", namespace, "-f", "-"]
            return (
                kube_cluster.kubectl(*apply, input=json.dumps(widget), check=False).returncode == 0
            )

        eventually(created, 30, "the new CRD to be served")
        kube_cluster.kubectl(
            "patch",
            "-n",
            namespace,
            resource,
            "w",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"ready": True, "undeclared": "dropped"}}),
        )
        obj = get(kube_cluster, resource, "w", "-n", namespace)
        assert obj["status"] == {"ready": True}

        # The status subresource also means the main resource ignores status.
        widget_with_status = dict(widget, status={"ready": False})
        kube_cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", input=json.dumps(widget_with_status)
        )
        assert get(kube_cluster, resource, "w", "-n", namespace)["status"] == {"ready": True}

        too_big = dict(widget, spec={"size": 11})
        with pytest.raises(KubectlError) as err:
            kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(too_big))
        assert "size too big" in err.value.stderr
    finally:
        kube_cluster.kubectl("delete", "crd", f"{plural}.{CRD_GROUP}", "--wait=false", check=False)


def test_termination_message_reaches_pod_status(
    real_node_cluster: KubeCluster, namespace: str
) -> None:
    """The converter's summary travels this way: a file in the container, read by the
    kubelet; with FallbackToLogsOnError and no file, the log's tail instead."""
    default = run_to_end(real_node_cluster, namespace, probe_pod(["exit", "0", "3 variants"]))
    assert terminated(default)["message"].endswith(" 3 variants")
    assert terminated(default)["reason"] == "Completed"

    custom = probe_pod(["exit", "0", "custom"])
    (c,) = custom["spec"]["containers"]
    c["terminationMessagePath"] = "/results/summary"
    c["env"] = [{"name": "TERMINATION_LOG", "value": "/results/summary"}]
    assert terminated(run_to_end(real_node_cluster, namespace, custom))["message"].endswith(
        " custom"
    )

    # The probe cannot write its file (read-only root, no such directory): only its stdout.
    fallback = probe_pod(["exit", "2", "boom: bad tensor"])
    (c,) = fallback["spec"]["containers"]
    c["terminationMessagePolicy"] = "FallbackToLogsOnError"
    c["env"] = [{"name": "TERMINATION_LOG", "value": "/nowhere/summary"}]
    p = run_to_end(real_node_cluster, namespace, fallback)
    assert p["status"]["phase"] == "Failed"
    assert terminated(p)["exitCode"] == 2
    message = terminated(p)["message"]
    assert message.startswith("uid=65532 ") and message.endswith(" boom: bad tensor\n"), message


def test_job_active_deadline_stops_the_container(
    controller_manager: KubeCluster, real_node_cluster: KubeCluster, namespace: str
) -> None:
    cluster, node = controller_manager, real_node_cluster.node
    cluster.apply(job("slow", ["sleep", "300"], activeDeadlineSeconds=6), namespace)

    def pod_name() -> str | None:
        items = get(cluster, "pods", "-n", namespace, "-l", "job-name=slow")["items"]
        return str(items[0]["metadata"]["name"]) if items else None

    name = eventually(pod_name, 30, "the Job's pod")
    cid = eventually(lambda: container_id(cluster, namespace, name), 60, "its container to run")
    cluster.kubectl("wait", "-n", namespace, "--for=condition=failed", "job/slow", "--timeout=60s")
    conditions = get(cluster, "job", "slow", "-n", namespace)["status"]["conditions"]
    failed = next(c for c in conditions if c["type"] == "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    eventually(lambda: not pod_name(), 60, "the Job controller to delete the pod")
    eventually(lambda: node.task_status(cid) in (None, "STOPPED"), 30, "the container to stop")
