"""Session fixtures shared by the operator and shipping tests: small real models in
fake-gcs-server (model_uris; node_model_uris in the one the node's pods reach, node_gcs),
and the CRD installed on the real control plane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cluster_helpers import install_crd
from controlplane.fixtures import unavailable
from gcs_server import FakeGCS, FakeGCSUnavailable, start_server, stop_server

# --- models -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_saved_models(tmp_path_factory) -> dict[str, Path]:
    """Two tiny SavedModels on disk: `dense` converts everywhere; `flex` needs Select TF ops
    (tf.math.cumprod has no TFLite builtin)."""
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

    paths = {}
    for name, module in (("dense", Dense()), ("flex", Flex())):
        paths[name] = root / name
        tf.saved_model.save(module, str(paths[name]), signatures={"serving_default": module.serve})
    return paths


def _models_in(server: FakeGCS, models: dict[str, Path]) -> dict[str, str]:
    bucket = server.create_bucket().name
    uris = {}
    for name, path in models.items():
        uris[name] = f"gs://{bucket}/{name}/saved_model"
        server.upload_dir(path, uris[name])
    uris["missing"] = f"gs://{bucket}/nothing-here/saved_model"
    return uris


@pytest.fixture(scope="session")
def model_uris(fake_gcs: FakeGCS, tiny_saved_models: dict[str, Path]) -> dict[str, str]:
    """The tiny models in a bucket, and a URI where there is none."""
    return _models_in(fake_gcs, tiny_saved_models)


# --- buckets the node's pods reach ---------------------------------------------------------


@pytest.fixture(scope="session")
def node_gcs(real_node_cluster) -> Iterator[FakeGCS]:
    """fake-gcs-server for converter pods: a process here, listening on the node bridge's
    address on this machine (what pods reach; loopback is their own). The test process
    reaches it there too. A process rather than a pod: nothing to import, up in
    milliseconds, and its log is a file here."""
    try:
        server = start_server(host=real_node_cluster.network.gateway)
    except FakeGCSUnavailable as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def node_model_uris(node_gcs: FakeGCS, tiny_saved_models: dict[str, Path]) -> dict[str, str]:
    """model_uris, in node_gcs."""
    return _models_in(node_gcs, tiny_saved_models)


@pytest.fixture(scope="session")
def crd(kube_cluster) -> str:
    return install_crd(kube_cluster)
