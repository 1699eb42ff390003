"""Session fixtures shared by the operator and shipping tests: small real models in
fake-gcs-server, and the CRD installed on the real control plane."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cluster_helpers import install_crd
from gcs_server import FakeGCS

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


@pytest.fixture(scope="session")
def model_uris(fake_gcs: FakeGCS, tiny_saved_models: dict[str, Path]) -> dict[str, str]:
    """The tiny models in a bucket, and a URI where there is none."""
    bucket = fake_gcs.create_bucket().name
    uris = {}
    for name, path in tiny_saved_models.items():
        uris[name] = f"gs://{bucket}/{name}/saved_model"
        fake_gcs.upload_dir(path, uris[name])
    uris["missing"] = f"gs://{bucket}/nothing-here/saved_model"
    return uris


@pytest.fixture(scope="session")
def crd(kube_cluster) -> str:
    return install_crd(kube_cluster)
