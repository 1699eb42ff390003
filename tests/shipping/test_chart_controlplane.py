"""The chart against the real control plane (kube-apiserver, etcd, kube-controller-manager and
the real node of tests/controlplane).

* Every object the chart renders, with default and non-default values, passes the API
  server's own validation (server-side apply, dry run).
* The chart installed for real, with non-default converter values: the Deployment controller
  makes the operator's pod, the node runs it in the operator image with the chart's
  ServiceAccount token (so RBAC is the chart's Role and nothing else), and it converts a
  model in the converter image: the Role is enough. Then a verb outside the Role is refused to
  that identity: the Role is not more than enough. (test_user_path_real_node.py installs the
  chart with helm, with the default values, and checks probes, OOM and a rollout.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from shipping_helpers import CI_VALUES, Helm, by_kind, one
from test_operator_controlplane import FAST, READY_TIMEOUT, conversion, describe, get, jobs

from cluster_helpers import RESTRICTED, wait_for
from images.helpers import CONVERTER_IMAGE, OPERATOR_IMAGE
from tflite_operator import __version__

pytestmark = pytest.mark.controlplane

# The Prometheus Operator's ServiceMonitor CRD is not part of a bare cluster. For the dry
# run, a stand-in definition that accepts any spec: the API server still checks the object's
# apiVersion, kind, metadata and namespace, but not the ServiceMonitor schema itself (helm
# lint and the chart tests check the fields the chart writes).
SERVICE_MONITOR_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {
            "kind": "ServiceMonitor",
            "plural": "servicemonitors",
            "listKind": "ServiceMonitorList",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def service_monitor_crd(kube_cluster) -> Iterator[None]:
    existed = (
        kube_cluster.kubectl(
            "get", "crd", "servicemonitors.monitoring.coreos.com", check=False
        ).returncode
        == 0
    )
    if not existed:
        kube_cluster.apply(SERVICE_MONITOR_CRD)
        kube_cluster.kubectl(
            "wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com",
            "--timeout=60s",
        )  # fmt: skip
    yield
    if not existed:
        kube_cluster.kubectl(
            "delete", "crd", "servicemonitors.monitoring.coreos.com", "--wait=false"
        )


def _ensure_namespaces(kube_cluster, docs: list[dict]) -> list[str]:
    """Creates the namespaces the rendered objects live in; returns the ones it created."""
    made = []
    for ns in sorted({d["metadata"].get("namespace") for d in docs} - {None}):
        if kube_cluster.kubectl("get", "namespace", ns, check=False).returncode != 0:
            made.append(kube_cluster.create_namespace(ns))
    return made


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.stem if v else "default")
def test_every_rendered_object_passes_server_side_dry_run(
    kube_cluster, helm: Helm, service_monitor_crd, values: Path | None
):
    release_ns = f"tflite-dry-{uuid.uuid4().hex[:6]}"
    docs = helm.template(
        values_files=[values] if values else [], namespace=release_ns, include_crds=True
    )
    made = _ensure_namespaces(kube_cluster, docs)
    try:
        out = kube_cluster.kubectl(
            "apply", "--server-side", "--dry-run=server", "--force-conflicts",
            "--field-manager=helm-dry-run", "-f", "-",
            input=yaml.safe_dump_all(docs),
        ).stdout  # fmt: skip
    finally:
        for ns in made:
            kube_cluster.delete_namespace(ns)
    applied = [line for line in out.splitlines() if "(server dry run)" in line]
    assert len(applied) == len(docs), out
    kinds = {d["kind"] for d in docs}
    assert "Deployment" in kinds and "CustomResourceDefinition" in kinds


# --- the operator as the chart runs it -----------------------------------------------------


class ChartInstall:
    """The chart applied to the cluster (not a `helm install`: the same objects, applied by
    kubectl, so that the test needs no helm release storage)."""

    def __init__(self, kube_cluster, helm: Helm, values: dict[str, Any], release_ns: str):
        self.cluster = kube_cluster
        self.release_ns = release_ns
        self.docs = helm.template(
            values, namespace=release_ns, release="chart-e2e", include_crds=True
        )
        self.deployment = one(self.docs, "Deployment")
        self.service_account = self.deployment["spec"]["template"]["spec"]["serviceAccountName"]

    def apply(self) -> None:
        crds = by_kind(self.docs, "CustomResourceDefinition")
        self.cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(crds))
        for crd in crds:
            self.cluster.kubectl(
                "wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}",
                "--timeout=60s",
            )  # fmt: skip
        rest = [d for d in self.docs if d["kind"] != "CustomResourceDefinition"]
        self.cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(rest))

    def pod(self) -> dict[str, Any] | None:
        sel = ",".join(
            f"{k}={v}" for k, v in self.deployment["spec"]["selector"]["matchLabels"].items()
        )
        pods = self.cluster.rest.get(
            f"/api/v1/namespaces/{self.release_ns}/pods?labelSelector={sel}"
        )["items"]
        running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
        return running[0] if running else None

    def log(self) -> str:
        pod = self.pod()
        if pod is None:
            return "(no operator pod)"
        # pods/log, through the kubelet.
        return self.cluster.kubectl(
            "logs", "-n", self.release_ns, pod["metadata"]["name"], check=False
        ).stdout

    def uninstall(self) -> None:
        # The Deployment first, so that the operator's pod stops before its namespace (and
        # RBAC) go away under it.
        name = self.deployment["metadata"]["name"]
        self.cluster.kubectl(
            "delete", "-n", self.release_ns, "deployment", name, "--wait=true", "--timeout=60s",
            check=False,
        )  # fmt: skip
        wait_for(lambda: self.pod() is None, 60, "the operator pod to stop")


def _as(kube_cluster, token: str, tmp_path: Path):
    """kubectl with a bearer token and nothing else: no client certificate to fall back on."""
    admin = yaml.safe_load(Path(kube_cluster.kubeconfig).read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "op", "context": {"cluster": "test", "user": "operator"}}],
        "current-context": "op",
    }
    path = tmp_path / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))

    def kubectl(*args: str, input: str | None = None):
        return kube_cluster.kubectl(f"--kubeconfig={path}", *args, input=input, check=False)

    return kubectl


@pytest.mark.gcs
@pytest.mark.slow
def test_operator_converts_under_the_charts_identity_and_nothing_more(
    controller_manager, product_images, helm: Helm, node_model_uris, node_gcs, tmp_path: Path
):
    cluster = controller_manager
    release_ns = cluster.create_namespace(prefix="chart-system-")
    watched = cluster.create_namespace(labels=RESTRICTED, prefix="chart-watched-")
    unwatched = cluster.create_namespace(labels=RESTRICTED, prefix="chart-unwatched-")
    op_repo, _, op_tag = OPERATOR_IMAGE.rpartition(":")
    conv_repo, _, conv_tag = CONVERTER_IMAGE.rpartition(":")
    values = {
        # Imported into the node (product_images): Never, there is no registry.
        "image": {"repository": op_repo, "tag": op_tag, "pullPolicy": "Never"},
        "operator": {
            "watchNamespaces": [watched],
            "queueRetrySeconds": 1,
            "verbose": True,
            # No kube-proxy on the test node: the API server's own address.
            "extraEnv": cluster.pod_apiserver_env,
        },
        "metrics": {"service": {"enabled": True}},
        "converter": {
            "image": {"repository": conv_repo, "tag": conv_tag, "pullPolicy": "Never"},
            "extraEnv": {"STORAGE_EMULATOR_HOST": node_gcs.url},
            # Rendered and applied; the node's bridge CNI does not enforce it (no policy
            # engine), so the converter still reaches node_gcs on this machine.
            "networkPolicy": {"enabled": True},
            # The converter defaults reach the Job: its own ServiceAccount, a key Secret
            # mounted (the emulator ignores credentials; the pod must still start with it).
            "serviceAccount": {"create": True},
            "gcsKeySecret": {"name": "gcs-key"},
        },
        "rbac": {"aggregateToDefaultRoles": False},
    }
    install = ChartInstall(cluster, helm, values, release_ns)
    cluster.kubectl(
        "create", "secret", "generic", "gcs-key", "-n", watched,
        "--from-literal=key.json={\"type\": \"service_account\"}",
    )  # fmt: skip
    install.apply()
    try:
        _convert_and_probe(
            cluster, install, watched, unwatched, node_model_uris, node_gcs, tmp_path
        )
    finally:
        install.uninstall()
        for ns in (watched, unwatched, release_ns):
            cluster.delete_namespace(ns)


def _convert_and_probe(
    cluster, install: ChartInstall, watched: str, unwatched: str,
    model_uris: dict[str, str], fake_gcs, tmp_path: Path,
) -> None:  # fmt: skip
    def ready() -> dict[str, Any] | None:
        pod = install.pod()
        conditions = (pod or {}).get("status", {}).get("conditions", [])
        return (
            pod if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else None
        )

    def diag() -> str:
        pods = cluster.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
        return f"{pods}\n--- operator log:\n{install.log()[-6000:]}"

    # Ready: the kubelet's readiness probe reached the operator in its pod.
    pod = wait_for(ready, 120, "the operator's pod to be Ready", diag=diag)
    assert pod["spec"]["serviceAccountName"] == install.service_account

    # The Role is enough: a conversion goes all the way to Ready.
    out_uri = f"gs://{fake_gcs.create_bucket().name}/chart/"
    spec = {
        "source": {"uri": model_uris["dense"]},
        "output": {"uri": out_uri},
        "variants": [{"name": "fp16", "quantization": "float16"}],
        **FAST,
    }
    cluster.apply(conversion("via-chart", spec), watched)
    waited = cluster.kubectl(
        "wait", "-n", watched, "tflc/via-chart", "--for=condition=Ready",
        f"--timeout={READY_TIMEOUT}s", check=False, timeout=READY_TIMEOUT + 30,
    )  # fmt: skip
    assert waited.returncode == 0, describe(cluster, watched) + diag()
    status = get(cluster, watched, "via-chart")["status"]
    assert status["phase"] == "Succeeded" and status["selected"]["name"] == "fp16"
    assert fake_gcs.read(f"{out_uri}fp16.tflite")
    (job,) = jobs(cluster, watched, "via-chart")
    pod_spec = job["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod_spec["containers"][0]["env"]}
    assert env["STORAGE_EMULATOR_HOST"] == fake_gcs.url  # converter.extraEnv reached the Job
    (converter_sa,) = [
        d["metadata"]["name"]
        for d in by_kind(install.docs, "ServiceAccount")
        if d["metadata"]["namespace"] == watched
    ]
    assert pod_spec["serviceAccountName"] == converter_sa
    secrets = [v["secret"]["secretName"] for v in pod_spec["volumes"] if "secret" in v]
    assert secrets == ["gcs-key"] and env["GOOGLE_APPLICATION_CREDENTIALS"].endswith("/key.json")
    # Nothing the operator did was refused (Kopf logs 403s as warnings and carries on).
    log = install.log()
    assert f"tflite-operator {__version__}" in log, log[-3000:]  # the operator's own log
    assert "Forbidden" not in log and " 403" not in log, log[-6000:]

    # ...and the Role is not more than enough.
    token = cluster.kubectl(
        "-n", install.release_ns, "create", "token", install.service_account, "--duration=1h"
    ).stdout.strip()
    as_operator = _as(cluster, token, tmp_path)
    allowed = as_operator("get", "-n", watched, "tflc", "via-chart")
    assert allowed.returncode == 0, allowed.stderr  # the identity works at all
    refused = {
        "delete a TFLiteConversion": ("delete", "-n", watched, "tflc", "via-chart", "--wait=false"),
        "read Secrets": ("get", "-n", watched, "secrets"),
        "create a pod": ("run", "-n", watched, "x", "--image=busybox", "--restart=Never"),
        "touch an unwatched namespace": ("get", "-n", unwatched, "tflc"),
        "list namespaces": ("get", "namespaces"),
        "read the CRDs": ("get", "crds"),
    }
    for what, args in refused.items():
        proc = as_operator(*args)
        assert proc.returncode != 0 and "forbidden" in proc.stderr.lower(), (what, proc.stderr)
    assert get(cluster, watched, "via-chart") is not None  # the refused delete changed nothing

    # The verbs of the Role, one by one, as the API server's authorizer sees them. kubectl
    # reads TYPE/NAME, so a subresource is its own flag ("x/status" would be an object name).
    can_i = {
        ("get", "tfliteconversions.tflite.dev", ""): "yes",
        ("patch", "tfliteconversions.tflite.dev", "status"): "yes",
        ("create", "jobs.batch", ""): "yes",
        ("delete", "jobs.batch", ""): "yes",
        ("list", "pods", ""): "yes",
        ("create", "events", ""): "yes",
        # blockOwnerDeletion under OwnerReferencesPermissionEnforcement.
        ("update", "tfliteconversions.tflite.dev", "finalizers"): "yes",
        # The tenant policy ConfigMap, by name only.
        ("get", "configmaps/tflite-tenant-policy", ""): "yes",
        # Granted once and never called: gone.
        ("get", "pods", ""): "no",
        ("patch", "events", ""): "no",
        ("get", "tfliteconversions.tflite.dev", "status"): "no",
        ("update", "tfliteconversions.tflite.dev", ""): "no",
        ("create", "tfliteconversions.tflite.dev", ""): "no",
        ("update", "jobs.batch", ""): "no",
        ("delete", "pods", ""): "no",
        ("create", "pods", ""): "no",
        ("get", "configmaps", ""): "no",
        ("get", "configmaps/other", ""): "no",
        ("create", "rolebindings.rbac.authorization.k8s.io", ""): "no",
    }
    got = {
        (verb, what, sub): as_operator(
            "auth", "can-i", verb, what, "-n", watched, *([f"--subresource={sub}"] if sub else [])
        ).stdout.strip()
        for verb, what, sub in can_i
    }
    assert got == can_i
