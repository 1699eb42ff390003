"""The user's path, end to end, on a real node: `helm install` of the chart with the images
`make images` built; the operator in its own pod under the chart's ServiceAccount, probed by
the kubelet; converter pods in the converter image under the restricted Pod Security
Standard; fake-gcs-server as the project's own pod on the node's bridge.

Nothing is pulled: the images are imported into the node's containerd from `docker save`
tars, and every pod uses imagePullPolicy Never.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from shipping_helpers import CHART, Helm

from cluster_helpers import RESTRICTED, wait_for
from controlplane.cluster import KubeCluster
from controlplane.images import docker_archive
from gcs_server import FakeGCS, find_binary
from images.helpers import CONVERTER_IMAGE, OPERATOR_IMAGE

pytestmark = [pytest.mark.controlplane, pytest.mark.images, pytest.mark.slow]

GCS_IMAGE = "tflite-operator.test/fake-gcs-server:v1"
GCS_PORT = 4443
READY_TIMEOUT = 420  # TensorFlow starts in the converter container; two shared cores


def _split(image: str) -> tuple[str, str]:
    repo, _, tag = image.rpartition(":")
    return repo, tag


@pytest.fixture(scope="module")
def node(product_images: KubeCluster, tmp_path_factory) -> KubeCluster:
    """The cluster's real node with the product's images and fake-gcs-server's imported."""
    assert product_images.node is not None
    binary = find_binary()
    assert binary is not None, "fake-gcs-server comes with the dev dependencies"
    gcs_tar = tmp_path_factory.mktemp("gcs-image") / "fake-gcs-server.tar"
    gcs_tar.write_bytes(docker_archive(binary.read_bytes(), "fake-gcs-server", GCS_IMAGE))
    product_images.node.import_image(gcs_tar)
    return product_images


def _gcs_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "fake-gcs", "labels": {"app": "fake-gcs"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": "gcs",
                "image": GCS_IMAGE,
                "imagePullPolicy": "Never",
                "env": [{"name": "POD_IP",
                         "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "args": [
                    "-scheme", "http", "-host", "0.0.0.0", "-port", str(GCS_PORT),
                    "-backend", "memory", "-log-level", "warn",
                    "-external-url", f"http://$(POD_IP):{GCS_PORT}",
                    "-public-host", f"$(POD_IP):{GCS_PORT}",
                ],
                "resources": {"limits": {"memory": "256Mi"}},
                "securityContext": {
                    "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }],
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def gcs(node: KubeCluster) -> Iterator[FakeGCS]:
    """fake-gcs-server in a pod of its own; the test process reaches it on the bridge."""
    ns = node.create_namespace(labels=RESTRICTED, prefix="gcs-")
    node.apply(_gcs_pod(), ns)
    path = f"/api/v1/namespaces/{ns}/pods/fake-gcs"

    def running() -> str | None:
        pod = node.rest.get(path)
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod.get("status", {}).get("conditions", [])
        )
        return pod["status"].get("podIP") if ready else None

    ip = wait_for(running, 120, "the fake-gcs-server pod", interval=1)
    server = FakeGCS(url=f"http://{ip}:{GCS_PORT}", process=None, log_path=Path("/dev/null"),
                     workdir=Path(tempfile.gettempdir()))  # fmt: skip
    wait_for(lambda: _answers(server), 60, "fake-gcs-server to answer on the pod IP")
    yield server
    node.delete_namespace(ns)


def _answers(server: FakeGCS) -> bool:
    try:
        list(server.client().list_buckets())
    except Exception:
        return False
    return True


def _helm_install(helm: Helm, node: KubeCluster, release_ns: str, values: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "values.yaml"
        f.write_text(yaml.safe_dump(values))
        helm.run(
            "install", "tflite", str(CHART), "--namespace", release_ns, "--values", str(f),
            "--kubeconfig", str(node.kubeconfig), "--wait", "--timeout", "5m",
        )  # fmt: skip


@pytest.fixture(scope="module")
def installed(node: KubeCluster, gcs: FakeGCS, helm: Helm) -> Iterator[dict[str, str]]:
    release_ns = node.create_namespace(prefix="tflite-system-")
    watched = node.create_namespace(labels=RESTRICTED, prefix="tenant-")
    op_repo, op_tag = _split(OPERATOR_IMAGE)
    conv_repo, conv_tag = _split(CONVERTER_IMAGE)
    values = {
        "image": {"repository": op_repo, "tag": op_tag, "pullPolicy": "Never"},
        "operator": {
            "watchNamespaces": [watched],
            "queueRetrySeconds": 2,
            "resyncSeconds": 5,
            "verbose": True,
            # No kube-proxy on this node: the apiserver's own address, not the Service's.
            "extraEnv": node.pod_apiserver_env,
        },
        "converter": {
            "image": {"repository": conv_repo, "tag": conv_tag, "pullPolicy": "Never"},
            "extraEnv": {"STORAGE_EMULATOR_HOST": gcs.url},
        },
        "rbac": {"aggregateToDefaultRoles": False},
    }
    # helm --wait: the Deployment is Available, so the kubelet's readiness probe has passed.
    _helm_install(helm, node, release_ns, values)
    yield {"release": release_ns, "watched": watched}
    helm.run("uninstall", "tflite", "--namespace", release_ns, "--kubeconfig",
             str(node.kubeconfig), check=False)  # fmt: skip
    for ns in (watched, release_ns):
        node.delete_namespace(ns)


def _upload_model(gcs: FakeGCS, saved_model: Path) -> str:
    bucket = gcs.create_bucket().name
    uri = f"gs://{bucket}/dense/saved_model"
    gcs.upload_dir(saved_model, uri)
    return uri


def _conversion(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "tflite.dev/v1alpha1", "kind": "TFLiteConversion",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


def _describe(node: KubeCluster, ns: str, release_ns: str) -> str:
    out = [node.kubectl("-n", ns, "get", "tflc,jobs,pods", "-o", "wide", check=False).stdout]
    out.append(node.kubectl("-n", ns, "get", "tflc", "-o", "yaml", check=False).stdout[-5000:])
    out.append(node.kubectl("-n", ns, "get", "events", check=False).stdout[-3000:])
    out.append(node.kubectl("-n", release_ns, "logs", "deploy/tflite-tflite-operator",
                            "--tail=80", check=False).stdout)  # fmt: skip
    return "\n".join(out)


def test_pods_reach_each_other_on_the_nodes_bridge(node: KubeCluster, gcs: FakeGCS):
    """The converter pod must reach fake-gcs-server's pod. Docker's engine (make images)
    sets the FORWARD policy to DROP, which drops bridged pod-to-pod traffic unless the CNI
    chain accepts it (the firewall plugin, tests/controlplane/node.py)."""
    from controlplane.test_real_node import probe_pod, run_to_end, terminated

    ns = node.create_namespace(labels=RESTRICTED, prefix="p2p-")
    try:
        host, port = gcs.url.removeprefix("http://").split(":")
        pod = run_to_end(node, ns, probe_pod(["connect", host, port]))
        assert terminated(pod)["message"] == f"connected to {host}:{port}"
    finally:
        node.delete_namespace(ns)


def test_a_sample_converts_to_ready_in_the_products_own_containers(
    node: KubeCluster, installed: dict[str, str], gcs: FakeGCS, tiny_saved_models
):
    ns, release_ns = installed["watched"], installed["release"]
    source = _upload_model(gcs, tiny_saved_models["dense"])
    out = f"gs://{gcs.create_bucket().name}/dense-tflite/"
    doc = yaml.safe_load((CHART.parents[1] / "config/samples/mobile-gpu-fp16.yaml").read_text())
    doc["spec"]["source"]["uri"] = source
    doc["spec"]["output"]["uri"] = out
    doc["spec"]["benchmark"]["runs"] = 10
    node.apply(doc, ns)
    name = doc["metadata"]["name"]
    waited = node.kubectl(
        "wait", "-n", ns, f"tflc/{name}", "--for=condition=Ready", f"--timeout={READY_TIMEOUT}s",
        check=False, timeout=READY_TIMEOUT + 30,
    )  # fmt: skip
    assert waited.returncode == 0, _describe(node, ns, release_ns)
    status = node.rest.get(f"/apis/tflite.dev/v1alpha1/namespaces/{ns}/tfliteconversions/{name}")[
        "status"
    ]
    (fp16,) = status["variants"]
    assert fp16["ok"] and fp16["sizeBytes"] > 0 and fp16["p50Ms"] > 0
    assert gcs.read(fp16["uri"]) is not None and gcs.read(status["reportUri"]) is not None
    # It ran in the converter image, under the Job's constraints, on the real node.
    (job,) = node.rest.get(f"/apis/batch/v1/namespaces/{ns}/jobs")["items"]
    pods = node.rest.get(
        f"/api/v1/namespaces/{ns}/pods?labelSelector=job-name%3D{job['metadata']['name']}"
    )["items"]
    (cs,) = pods[-1]["status"]["containerStatuses"]
    assert cs["image"].endswith(CONVERTER_IMAGE) and cs["state"]["terminated"]["exitCode"] == 0
    # The termination message came through the kubelet: that is where the figures came from.
    assert json.loads(cs["state"]["terminated"]["message"])["ok"] is True


def test_a_memory_limit_too_small_ends_stalled_naming_oom_killed(
    node: KubeCluster, installed: dict[str, str], gcs: FakeGCS, tiny_saved_models
):
    ns, release_ns = installed["watched"], installed["release"]
    spec = {
        "source": {"uri": _upload_model(gcs, tiny_saved_models["dense"])},
        "output": {"uri": f"gs://{gcs.create_bucket().name}/oom/"},
        "variants": [{"name": "fp32"}],
        # TensorFlow alone needs far more than this to import.
        "job": {"resources": {"limits": {"memory": "96Mi"}}, "backoffLimit": 0},
    }
    node.apply(_conversion("starved", spec), ns)
    path = f"/apis/tflite.dev/v1alpha1/namespaces/{ns}/tfliteconversions/starved"

    def stalled() -> dict[str, Any] | None:
        conds = {c["type"]: c for c in node.rest.get(path).get("status", {}).get("conditions", [])}
        c = conds.get("Stalled") or {}
        return c if c.get("status") == "True" else None

    c = wait_for(stalled, 300, "Stalled", interval=2, diag=lambda: _describe(node, ns, release_ns))
    assert c["reason"] == "OOMKilled", c
    assert "spec.job.resources.limits.memory" in c["message"]


def test_the_operator_pod_is_probed_and_a_rollout_loses_no_conversion(
    node: KubeCluster, installed: dict[str, str], gcs: FakeGCS, tiny_saved_models
):
    ns, release_ns = installed["watched"], installed["release"]
    deploy = f"/apis/apps/v1/namespaces/{release_ns}/deployments/tflite-tflite-operator"
    spec = {
        "source": {"uri": _upload_model(gcs, tiny_saved_models["dense"])},
        "output": {"uri": f"gs://{gcs.create_bucket().name}/rollout/"},
        "variants": [{"name": "fp32"}],
        "benchmark": {"enabled": False},
    }
    node.apply(_conversion("across-rollout", spec), ns)
    path = f"/apis/tflite.dev/v1alpha1/namespaces/{ns}/tfliteconversions/across-rollout"
    wait_for(lambda: node.rest.get(path).get("status", {}).get("jobName"), 120, "its Job",
             diag=lambda: _describe(node, ns, release_ns))  # fmt: skip
    # SIGTERM to the operator mid-conversion: the Deployment replaces its pod (Recreate).
    node.kubectl("-n", release_ns, "rollout", "restart", "deployment/tflite-tflite-operator")
    node.kubectl("-n", release_ns, "rollout", "status", "deployment/tflite-tflite-operator",
                 "--timeout=180s", timeout=200)  # fmt: skip
    dep = node.rest.get(deploy)
    assert dep["status"].get("availableReplicas") == 1  # readiness probe passed on the new pod
    waited = node.kubectl(
        "wait", "-n", ns, "tflc/across-rollout", "--for=condition=Ready",
        f"--timeout={READY_TIMEOUT}s", check=False, timeout=READY_TIMEOUT + 30,
    )  # fmt: skip
    assert waited.returncode == 0, _describe(node, ns, release_ns)
    jobs = node.rest.get(f"/apis/batch/v1/namespaces/{ns}/jobs")["items"]
    assert [j["metadata"]["name"] for j in jobs if "across-rollout" in j["metadata"]["name"]] == [
        "across-rollout-g1"
    ]
    pods = node.rest.get(f"/api/v1/namespaces/{release_ns}/pods")["items"]
    restarts = [cs["restartCount"] for p in pods for cs in p["status"].get("containerStatuses", [])]
    assert restarts and max(restarts) == 0, "the liveness probe restarted the operator"
