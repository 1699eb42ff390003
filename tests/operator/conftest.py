"""Fixtures for the operator's control-plane tests: small real models in fake-gcs-server, the
CRD, restricted namespaces, and the operator itself as a subprocess with its own RBAC."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from cluster_helpers import CRD_FILE, OPERATOR_NS, RBAC_FILE, RESTRICTED, OperatorProcess

from gcs_server import FakeGCS

# --- models -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def model_uris(fake_gcs: FakeGCS, tmp_path_factory) -> dict[str, str]:
    """Two tiny SavedModels in a bucket: `dense` converts everywhere; `flex` needs Select TF
    ops (tf.math.cumprod has no TFLite builtin)."""
    tf = pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("operator-models")

    class Dense(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            rng = np.random.default_rng(0)
            self.w = tf.Variable(rng.normal(size=(8, 4)).astype(np.float32))
            self.b = tf.Variable(np.zeros(4, np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def serve(self, x):
            return {"probs": tf.nn.softmax(x @ self.w + self.b)}

    class Flex(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b = tf.Variable(np.ones((1, 4), np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.math.cumprod(x, axis=1) + self.b}

    bucket = fake_gcs.create_bucket().name
    uris = {}
    for name, module in (("dense", Dense()), ("flex", Flex())):
        path = root / name
        tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
        uris[name] = f"gs://{bucket}/{name}/saved_model"
        fake_gcs.upload_dir(path, uris[name])
    uris["missing"] = f"gs://{bucket}/nothing-here/saved_model"
    return uris


# --- cluster ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def crd(kube_cluster) -> str:
    kube_cluster.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    name = yaml.safe_load(CRD_FILE.read_text().split("\n", 2)[2])["metadata"]["name"]
    kube_cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return name


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
