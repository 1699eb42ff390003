"""Fixtures for the operator's control-plane tests: restricted namespaces and the operator
itself as a subprocess with its own RBAC (models and the CRD: tests/shared_fixtures.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster_helpers import OPERATOR_NS, RBAC_FILE, RESTRICTED, OperatorProcess
from gcs_server import FakeGCS

# --- cluster ------------------------------------------------------------------------------


@pytest.fixture
def restricted_namespace(kube_cluster, request) -> Iterator[str]:
    """A namespace enforcing the `restricted` Pod Security Standard on every pod."""
    slug = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:30].strip("-")
    name = kube_cluster.create_namespace(labels=RESTRICTED, prefix=f"{slug}-")
    yield name
    kube_cluster.delete_namespace(name)


@pytest.fixture(scope="session")
def operator_kubeconfig(kube_cluster, crd, tmp_path_factory) -> Path:
    """A kubeconfig for a ServiceAccount bound to rbac.yaml's ClusterRole, nothing else."""
    kube_cluster.kubectl("create", "namespace", OPERATOR_NS)
    kube_cluster.kubectl("apply", "-f", str(RBAC_FILE))
    kube_cluster.kubectl("-n", OPERATOR_NS, "create", "serviceaccount", "tflite-operator")
    kube_cluster.kubectl(
        "create",
        "clusterrolebinding",
        "tflite-operator",
        "--clusterrole=tflite-operator",
        f"--serviceaccount={OPERATOR_NS}:tflite-operator",
    )
    token = kube_cluster.kubectl(
        "-n", OPERATOR_NS, "create", "token", "tflite-operator", "--duration=4h"
    ).stdout.strip()
    admin = yaml.safe_load(Path(kube_cluster.kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": "tflite-operator", "user": {"token": token}}],
        "contexts": [{"name": "op", "context": {"cluster": "test", "user": "tflite-operator"}}],
        "current-context": "op",
    }
    path = tmp_path_factory.mktemp("operator") / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def start_operator(
    operator_kubeconfig: Path,
    fake_gcs: FakeGCS,
    tmp_path: Path,
) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(namespaces: list[str], **kwargs: Any) -> OperatorProcess:
        log = tmp_path / f"operator-{len(started)}.log"
        op = OperatorProcess(operator_kubeconfig, namespaces, fake_gcs.url, log, **kwargs)
        started.append(op)
        return op.start()

    yield start
    for op in started:
        op.stop()
