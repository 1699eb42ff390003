"""Self-tests of the control plane harness, all against the real binaries.

They pin down the behaviours the operator's tests rely on and that a mocked
API would get wrong: the Job controller's retries, the garbage collector,
Pod Security admission, structural-schema pruning, CEL, RBAC, and the kubelet
stand-in's status, paths and termination messages.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from controlplane.cluster import KubeCluster, KubectlError
from controlplane.kubelet_standin import KubeletStandin

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


def job(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            **spec,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "unused", "command": command}],
                }
            },
        },
    }


def pod(name: str, command: list[str], **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "unused", "command": command, **container}],
        },
    }


def finished_pod(cluster: KubeCluster, namespace: str, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        p = get(cluster, "pod", name, "-n", namespace)
        return p if p["status"].get("phase") in ("Succeeded", "Failed") else None

    return eventually(done, 60, f"pod {namespace}/{name} to finish")


def test_job_completes_and_kubectl_wait_returns(
    controller_manager: KubeCluster, namespace: str, kubelet: KubeletStandin
) -> None:
    cluster = controller_manager
    cluster.apply(job("hello", ["python", "-c", "print(1)"]), namespace)
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=complete", "job/hello", "--timeout=60s"
    )
    status = get(cluster, "job", "hello", "-n", namespace)["status"]
    assert status["succeeded"] == 1
    pods = get(cluster, "pods", "-n", namespace, "-l", "job-name=hello")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    assert pods[0]["spec"]["nodeName"] == "standin-node"
    name = pods[0]["metadata"]["name"]
    assert kubelet.logs(namespace, name) == "1\n"
    # pods/log goes API server -> the stand-in's /containerLogs, as to a kubelet.
    assert cluster.kubectl("logs", "-n", namespace, "job/hello").stdout == "1\n"


def test_failing_job_retries_then_fails_with_exit_code(
    controller_manager: KubeCluster, namespace: str
) -> None:
    cluster = controller_manager
    cluster.apply(
        job("fails", ["python", "-c", "import sys; sys.exit(3)"], backoffLimit=1), namespace
    )
    cluster.kubectl("wait", "-n", namespace, "--for=condition=failed", "job/fails", "--timeout=90s")
    status = get(cluster, "job", "fails", "-n", namespace)["status"]
    assert status["failed"] == 2
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    pods = get(cluster, "pods", "-n", namespace, "-l", "job-name=fails")["items"]
    assert len(pods) == 2
    for p in pods:
        assert p["status"]["phase"] == "Failed"
        terminated = p["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["exitCode"] == 3
        assert terminated["reason"] == "Error"


def test_deleting_owner_garbage_collects_job_and_pods(
    controller_manager: KubeCluster, namespace: str, kubelet: KubeletStandin
) -> None:
    cluster = controller_manager
    cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}, namespace
    )
    owner = get(cluster, "configmap", "owner", "-n", namespace)["metadata"]
    manifest = job("owned", ["python", "-c", "import time; time.sleep(300)"])
    manifest["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["uid"]}
    ]
    cluster.apply(manifest, namespace)

    def running_pod() -> str | None:
        items = get(cluster, "pods", "-n", namespace, "-l", "job-name=owned")["items"]
        if items and items[0]["status"].get("phase") == "Running":
            return str(items[0]["metadata"]["name"])
        return None

    pod_name = eventually(running_pod, 60, "the Job's pod to run")
    assert kubelet.running(namespace, pod_name)

    cluster.kubectl("delete", "-n", namespace, "configmap", "owner")

    def all_gone() -> bool:
        jobs = get(cluster, "jobs", "-n", namespace)["items"]
        pods = get(cluster, "pods", "-n", namespace)["items"]
        return not jobs and not pods

    eventually(all_gone, 60, "the garbage collector to remove the Job and its Pod")
    assert not kubelet.running(namespace, pod_name), "the pod's process should be killed"


def test_pod_security_admission_rejects_privileged_pod(kube_cluster: KubeCluster) -> None:
    ns = kube_cluster.create_namespace(
        labels={"pod-security.kubernetes.io/enforce": "restricted"}, prefix="psa-"
    )
    try:
        privileged = pod("root", ["true"], securityContext={"privileged": True})
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


def test_termination_message_reaches_pod_status(kube_cluster: KubeCluster, namespace: str) -> None:
    writer = "import sys; open(sys.argv[1], 'w').write('converted 3 variants')"
    kube_cluster.apply(
        pod("default-path", ["python", "-c", writer, "/dev/termination-log"]), namespace
    )
    kube_cluster.apply(
        pod(
            "custom-path",
            ["python", "-c", writer, "/results/summary"],
            terminationMessagePath="/results/summary",
        ),
        namespace,
    )
    crash = "import sys; print('loading model'); print('boom: bad tensor'); sys.exit(2)"
    kube_cluster.apply(
        pod(
            "fallback",
            ["python", "-c", crash],
            terminationMessagePolicy="FallbackToLogsOnError",
        ),
        namespace,
    )
    for name in ("default-path", "custom-path"):
        p = finished_pod(kube_cluster, namespace, name)
        assert p["status"]["phase"] == "Succeeded"
        terminated = p["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["message"] == "converted 3 variants"
        assert terminated["reason"] == "Completed"
    p = finished_pod(kube_cluster, namespace, "fallback")
    terminated = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert p["status"]["phase"] == "Failed"
    assert terminated["exitCode"] == 2
    assert terminated["message"] == "loading model\nboom: bad tensor\n"


def test_env_and_volume_paths_are_mapped(
    kube_cluster: KubeCluster, namespace: str, kubelet: KubeletStandin
) -> None:
    kube_cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"k": "v"}},
        namespace,
    )
    script = (
        "import os, sys; "
        "open(os.path.join(sys.argv[1], 'out'), 'w').write("
        "os.environ['POD'] + ' ' + os.environ['NS'] + ' ' + os.environ['FROM_CM'] + ' ' "
        "+ os.environ['OUT_FILE'] + ' ' + open(sys.argv[2]).read())"
    )
    manifest = pod(
        "paths",
        ["python", "-c", script, "/work", "/etc/cfg/k"],
        env=[
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
            {"name": "OUT_FILE", "value": "/work/out"},
        ],
        volumeMounts=[
            {"name": "scratch", "mountPath": "/work"},
            {"name": "cfg", "mountPath": "/etc/cfg"},
        ],
    )
    manifest["spec"]["volumes"] = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg"}},
    ]
    kube_cluster.apply(manifest, namespace)
    p = finished_pod(kube_cluster, namespace, "paths")
    assert p["status"]["phase"] == "Succeeded", kubelet.logs(namespace, "paths")
    scratch = kubelet.pod_dir(namespace, "paths") / "volumes" / "scratch"
    assert (scratch / "out").read_text() == f"paths {namespace} v {scratch}/out v"


def test_pod_acts_as_its_service_account_under_rbac(
    kube_cluster: KubeCluster, namespace: str, kubelet: KubeletStandin
) -> None:
    kubectl = str(kube_cluster.bin_dir / "kubectl")
    kube_cluster.apply(pod("whoami", [kubectl, "auth", "can-i", "list", "secrets"]), namespace)
    p = finished_pod(kube_cluster, namespace, "whoami")
    # `can-i` exits 1 and says "no": the default ServiceAccount has no such grant.
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    assert kubelet.logs(namespace, "whoami").strip() == "no"


def test_job_active_deadline_kills_the_process(
    controller_manager: KubeCluster, namespace: str, kubelet: KubeletStandin
) -> None:
    cluster = controller_manager
    cluster.apply(
        job("slow", ["python", "-c", "import time; time.sleep(300)"], activeDeadlineSeconds=4),
        namespace,
    )

    def pod_name() -> str | None:
        items = get(cluster, "pods", "-n", namespace, "-l", "job-name=slow")["items"]
        return str(items[0]["metadata"]["name"]) if items else None

    name = eventually(pod_name, 30, "the Job's pod")
    eventually(lambda: kubelet.running(namespace, name), 30, "the pod's process to start")
    cluster.kubectl("wait", "-n", namespace, "--for=condition=failed", "job/slow", "--timeout=60s")
    conditions = get(cluster, "job", "slow", "-n", namespace)["status"]["conditions"]
    failed = next(c for c in conditions if c["type"] == "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    eventually(lambda: not kubelet.running(namespace, name), 30, "the process to be killed")
    eventually(lambda: not pod_name(), 30, "the Job controller to delete the pod")
