"""Small real models, built once per test session: TensorFlow does the work, nothing is mocked.

Sizes are chosen so the whole converter suite stays within a few minutes on two busy cores:
the CNN has ~38k weights (enough that quantization visibly shrinks it) and trains for a few
seconds on scikit-learn's bundled 8x8 digits.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tflite_operator.api.spec_variant import Variant
from tflite_operator.converter.convert import ConvertedVariant, convert_variant
from tflite_operator.converter.data import Samples, load_samples
from tflite_operator.converter.source import SourceModel, load_source

SEED = 0
CALIBRATION_SAMPLES = 64


@pytest.fixture(scope="session")
def tf():
    import tensorflow as tf

    return tf


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """8x8 grey digits scaled to [0, 1], NHWC, and their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    return x, d.target


@pytest.fixture(scope="session")
def keras_cnn(tf, digits):
    """A digits classifier: image (None, 8, 8, 1) -> probs (None, 10), ~93% train accuracy."""
    import keras

    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(64, activation="relu")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="probs")(h)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = digits
    model.fit(x, y, epochs=3, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def cnn_saved_model(keras_cnn, models_dir) -> Path:
    """model.export(): signature serving_default, input "image", output "output_0"."""
    path = models_dir / "cnn_saved_model"
    keras_cnn.export(str(path), verbose=False)
    return path


@pytest.fixture(scope="session")
def cnn_keras_file(keras_cnn, models_dir) -> Path:
    path = models_dir / "cnn.keras"
    keras_cnn.save(path)
    return path


def _save_two_heads(tf, path: Path, embed_scale: float) -> Path:
    """serving_default (probs) and embed (features times embed_scale) over shared weights."""
    rng = np.random.default_rng(SEED)

    class TwoHeads(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(rng.normal(size=(16, 8)).astype(np.float32))
            self.head = tf.Variable(rng.normal(size=(8, 4)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32, name="x")])
        def classify(self, x):
            return {"probs": tf.nn.softmax(tf.nn.relu(x @ self.w) @ self.head)}

        @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32, name="x")])
        def embed(self, x):
            return {"features": embed_scale * tf.nn.relu(x @ self.w)}

    module = TwoHeads()
    tf.saved_model.save(
        module, str(path), signatures={"serving_default": module.classify, "embed": module.embed}
    )
    return path


@pytest.fixture(scope="session")
def multi_signature_saved_model(tf, models_dir) -> Path:
    """Two signatures over shared weights: serving_default (probs) and embed (features)."""
    return _save_two_heads(tf, models_dir / "multi_signature", embed_scale=1.0)


@pytest.fixture(scope="session")
def loud_embedding_model(tf, models_dir) -> Path:
    """serving_default: probabilities in [0, 1]; embed: features scaled to thousands.

    float16 weights cost both the same relative error, so the absolute error of `embed` is
    about a thousand times that of `serving_default`: a budget of 0.05 holds for the first
    signature and not for the second.
    """
    return _save_two_heads(tf, models_dir / "loud_embedding", embed_scale=1000.0)


def _save_single_op_model(tf, path: Path, op: Callable) -> Path:
    class OneOp(tf.Module):
        def __init__(self):
            super().__init__()
            self.bias = tf.Variable(np.ones((1, 4), np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": op(x) + self.bias}

    module = OneOp()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


@pytest.fixture(scope="session")
def flex_saved_model(tf, models_dir) -> Path:
    """Uses tf.math.cumprod: no TFLite builtin in TF 2.21, but a Select TF (Flex) kernel."""
    return _save_single_op_model(tf, models_dir / "flex", lambda x: tf.math.cumprod(x, axis=1))


@pytest.fixture(scope="session")
def no_kernel_saved_model(tf, models_dir) -> Path:
    """Uses tf.math.erfinv: neither a TFLite builtin nor a Flex kernel in TF 2.21."""
    return _save_single_op_model(tf, models_dir / "no_kernel", tf.math.erfinv)


@pytest.fixture(scope="session")
def no_signature_saved_model(tf, models_dir) -> Path:
    module = tf.Module()
    module.v = tf.Variable(1.0)
    path = models_dir / "no_signature"
    tf.saved_model.save(module, str(path))
    return path


@pytest.fixture(scope="session")
def corrupt_saved_model(models_dir) -> Path:
    path = models_dir / "corrupt"
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"this is not a protocol buffer \x00\xff\xfe" * 8)
    return path


@pytest.fixture(scope="session")
def calibration_npz(digits, models_dir) -> Path:
    path = models_dir / "calibration.npz"
    np.savez(path, image=digits[0][:CALIBRATION_SAMPLES])
    return path


@pytest.fixture(scope="session")
def cnn_source(cnn_saved_model) -> SourceModel:
    return load_source(cnn_saved_model)


@pytest.fixture(scope="session")
def calibration(cnn_source, calibration_npz) -> Samples:
    return load_samples(
        calibration_npz, cnn_source.signatures[0], CALIBRATION_SAMPLES, "calibration.npz"
    )


@pytest.fixture(scope="session")
def validation_samples(cnn_source, digits, models_dir) -> Samples:
    """48 digits the calibration did not see."""
    path = models_dir / "validation.npz"
    np.savez(path, image=digits[0][CALIBRATION_SAMPLES : CALIBRATION_SAMPLES + 48])
    return load_samples(path, cnn_source.signatures[0], 48, "validation.npz")


@pytest.fixture(scope="session")
def convert_cnn(cnn_source, calibration) -> Callable[..., ConvertedVariant]:
    """convert_cnn(quantization, io_type="float32") -> ConvertedVariant, cached per session."""
    cache: dict[tuple[str, str], ConvertedVariant] = {}

    def convert(quantization: str, io_type: str = "float32") -> ConvertedVariant:
        key = (quantization, io_type)
        if key not in cache:
            variant = Variant(name="v", quantization=quantization, io_type=io_type)
            cache[key] = convert_variant(cnn_source, variant, calibration)
        return cache[key]

    return convert


@pytest.fixture(scope="session")
def local_report(cnn_saved_model, calibration_npz, tmp_path_factory):
    """The report of a real run: fp32 (misses the size budget), dynamic and int8 (meet it)."""
    from tflite_operator.api.manifest import parse_spec
    from tflite_operator.converter import pipeline

    cal = {"uri": str(calibration_npz), "samples": 32}
    spec = parse_spec(
        {
            "source": {"uri": str(cnn_saved_model)},
            "output": {"uri": str(tmp_path_factory.mktemp("report") / "out")},
            "variants": [
                {"name": "fp32"},
                {"name": "dynamic", "quantization": "dynamic-range"},
                {"name": "int8", "quantization": "int8", "representativeDataset": cal},
            ],
            "target": {"maxModelSizeBytes": 100_000, "maxOutputError": 0.2},
            "benchmark": {"runs": 3, "warmupRuns": 1, "threads": 1},
            "validation": {"samples": 16},
        }
    )
    return pipeline.run("digits", spec, tmp_path_factory.mktemp("work")).report
