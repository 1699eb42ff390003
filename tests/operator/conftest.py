"""Fixtures for the operator's control-plane tests: restricted namespaces and the operator
itself as a subprocess with its own RBAC, its converter pods on the real node (models, the
CRD and the bucket server pods reach: tests/shared_fixtures.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster_helpers import RESTRICTED, OperatorProcess
from cluster_helpers import operator_kubeconfig as operator_kubeconfig_for
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
    return operator_kubeconfig_for(kube_cluster, tmp_path_factory.mktemp("operator"))


@pytest.fixture
def start_operator(
    operator_kubeconfig: Path,
    node_gcs: FakeGCS,
    tmp_path: Path,
) -> Iterator[Callable[..., OperatorProcess]]:
    """Starts the operator (a process here) whose converter pods run on the real node; a
    test that runs the converter image takes `product_images` too."""
    started: list[OperatorProcess] = []

    def start(namespaces: list[str], **kwargs: Any) -> OperatorProcess:
        log = tmp_path / f"operator-{len(started)}.log"
        op = OperatorProcess(operator_kubeconfig, namespaces, node_gcs.url, log, **kwargs)
        started.append(op)
        return op.start()

    yield start
    for op in started:
        op.stop()
