"""Scenario 8 of issue 8: the operator's RBAC under `OwnerReferencesPermissionEnforcement`.

The test apiserver runs that admission plugin (tests/controlplane/cluster.py), as OpenShift and
hardened clusters do. The converter Job's ownerReference sets `blockOwnerDeletion: true`, which
the plugin only lets through for a caller allowed to `update` the owner's finalizers. Each test
creates the very Job `build_job` makes, with a ServiceAccount token bound to rbac.yaml's rules
(the chart's, tests/shipping checks they are equal): no admin credentials, no mock.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import yaml

from cluster_helpers import RBAC_FILE
from tflite_operator.api.manifest import parse_spec
from tflite_operator.controller import job_builder as jb
from tflite_operator.controller.kube import ApiError, Kube
from tflite_operator.controller.settings import Settings

pytestmark = pytest.mark.controlplane

SPEC = {
    "source": {"uri": "gs://models/m/saved_model"},
    "output": {"uri": "gs://models-out/m/"},
    "variants": [{"name": "fp32"}],
}


def _rules(without_finalizers: bool) -> list[dict]:
    rules = yaml.safe_load(RBAC_FILE.read_text())["rules"]
    if without_finalizers:
        rules = [r for r in rules if "tfliteconversions/finalizers" not in r["resources"]]
    return rules


@pytest.fixture
def kube_as(kube_cluster, crd, namespace, tmp_path: Path) -> Iterator:
    """A `Kube` authenticated as a fresh ServiceAccount bound to the given rules, only."""
    made: list[str] = []

    def make(rules: list[dict]) -> Kube:
        name = f"op-{len(made)}-{namespace}"[:63].rstrip("-")
        made.append(name)
        kube_cluster.apply(
            [
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": name},
                    "rules": rules,
                },
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "operator", "namespace": namespace},
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": name, "namespace": namespace},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": name,
                    },
                    "subjects": [
                        {"kind": "ServiceAccount", "name": "operator", "namespace": namespace}
                    ],
                },
            ]
        )
        token = kube_cluster.kubectl(
            "-n", namespace, "create", "token", "operator", "--duration=1h"
        ).stdout.strip()
        admin = yaml.safe_load(Path(kube_cluster.kubeconfig).read_text())
        config_file = tmp_path / f"{name}.kubeconfig"
        config_file.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": admin["clusters"],
                    "users": [{"name": "op", "user": {"token": token}}],
                    "contexts": [{"name": "op", "context": {"cluster": "test", "user": "op"}}],
                    "current-context": "op",
                }
            )
        )
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            config_file=str(config_file), client_configuration=config
        )
        return Kube(kubernetes.client.ApiClient(config))

    yield make
    for name in made:
        kube_cluster.kubectl("delete", "clusterrole", name, "--wait=false", check=False)


def _conversion(kube_cluster, namespace: str) -> dict:
    kube_cluster.apply(
        {
            "apiVersion": "tflite.dev/v1alpha1",
            "kind": "TFLiteConversion",
            "metadata": {"name": "owned"},
            "spec": SPEC,
        },
        namespace,
    )
    return kube_cluster.rest.get(
        f"/apis/tflite.dev/v1alpha1/namespaces/{namespace}/tfliteconversions/owned"
    )


def test_job_creation_needs_update_on_finalizers(kube_cluster, namespace, kube_as):
    body = _conversion(kube_cluster, namespace)
    job = jb.build_job(body, parse_spec(SPEC), Settings())
    assert job["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True
    # Only its creation is under test: suspended, its pod never asks the node for the default
    # image (a registry's, which nothing here may reach).
    job["spec"]["suspend"] = True

    # Without the finalizers rule the plugin refuses the Job: the cluster runs it, and the
    # rule is what makes the difference (everything else in rbac.yaml is granted).
    kube = kube_as(_rules(without_finalizers=True))
    with pytest.raises(ApiError) as refused:
        kube.create(Kube.jobs_path(namespace), copy.deepcopy(job))
    assert refused.value.status == 403
    assert "cannot set blockOwnerDeletion" in str(refused.value), refused.value

    # With rbac.yaml as it is (the chart's rules), the same Job is created.
    kube = kube_as(_rules(without_finalizers=False))
    created = kube.create(Kube.jobs_path(namespace), job)
    assert created["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
