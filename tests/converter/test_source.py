"""Loading sources: signatures, sizes, running in TensorFlow, and the errors users will see."""

from __future__ import annotations

import numpy as np
import pytest

from tflite_operator.api.errors import InvalidSourceError, SourceNotFoundError, SpecError
from tflite_operator.converter.source import directory_size, load_source, resolve_format


def test_saved_model_signature_and_size(cnn_source, cnn_saved_model):
    assert cnn_source.format == "saved_model"
    [sig] = cnn_source.signatures
    assert sig.key == "serving_default"
    assert [(t.name, t.dtype, t.shape) for t in sig.inputs] == [
        ("image", "float32", [None, 8, 8, 1])
    ]
    assert [(t.name, t.shape) for t in sig.outputs] == [("output_0", [None, 10])]
    # The variables alone hold ~38k float32 weights.
    assert cnn_source.size_bytes == directory_size(cnn_saved_model) > 38_000 * 4


def test_run_matches_keras(cnn_source, keras_cnn, digits):
    x = digits[0][:3]
    out = cnn_source.run("serving_default", {"image": x})
    np.testing.assert_allclose(out["output_0"], keras_cnn.predict(x, verbose=0), atol=1e-5)
    np.testing.assert_allclose(out["output_0"].sum(axis=1), 1.0, atol=1e-5)


def test_keras_file_gets_a_named_serving_signature(cnn_keras_file, keras_cnn, digits):
    source = load_source(cnn_keras_file)
    assert source.format == "keras"
    assert source.size_bytes == cnn_keras_file.stat().st_size
    [sig] = source.signatures
    assert sig.key == "serving_default"
    # Names come from the Keras model (Input name, output layer name), not output_0.
    assert [t.name for t in sig.inputs] == ["image"]
    assert [(t.name, t.shape) for t in sig.outputs] == [("probs", [None, 10])]
    x = digits[0][:2]
    out = source.run("serving_default", {"image": x})
    np.testing.assert_allclose(out["probs"], keras_cnn.predict(x, verbose=0), atol=1e-5)
    export_dir = source.export_dir
    assert (export_dir / "saved_model.pb").is_file()
    source.close()
    assert not export_dir.exists()


def test_multi_signature_keeps_only_chosen_keys(multi_signature_saved_model):
    both = load_source(multi_signature_saved_model, signature_keys=["serving_default", "embed"])
    assert both.signature_keys == ["serving_default", "embed"]
    one = load_source(multi_signature_saved_model, signature_keys=["embed"])
    assert [s.key for s in one.signatures] == ["embed"]
    assert [t.name for t in one.signatures[0].outputs] == ["features"]
    everything = load_source(multi_signature_saved_model, signature_keys=())
    assert sorted(everything.signature_keys) == ["embed", "serving_default"]


def test_missing_signature_key_lists_available_keys(multi_signature_saved_model):
    with pytest.raises(SpecError) as info:
        load_source(multi_signature_saved_model, signature_keys=["serving_default", "logits"])
    message = info.value.message
    assert "'logits'" in message
    assert "embed" in message and "serving_default" in message
    assert "spec.source.signatureKeys" in message


def test_missing_path(tmp_path):
    with pytest.raises(SourceNotFoundError) as info:
        load_source(tmp_path / "nope")
    assert "does not exist" in info.value.message
    assert "spec.source.uri" in info.value.message


def test_directory_without_saved_model_pb(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(InvalidSourceError) as info:
        load_source(tmp_path)
    message = info.value.message
    assert "is not a loadable SavedModel" in message
    assert "saved_model.pb" in message and "weights.bin" in message
    assert "tf.saved_model.save" in message


def test_corrupt_saved_model(corrupt_saved_model):
    with pytest.raises(InvalidSourceError) as info:
        load_source(corrupt_saved_model)
    message = info.value.message
    assert message.startswith(f"{corrupt_saved_model} is not a loadable SavedModel: ")
    # The cause from TensorFlow is kept, and the fix is named.
    cause = message.split("SavedModel: ", 1)[1]
    assert len(cause.split(";")[0]) > 10
    assert "re-export it with tf.saved_model.save or model.export()" in message


def test_saved_model_without_signatures(no_signature_saved_model):
    with pytest.raises(InvalidSourceError) as info:
        load_source(no_signature_saved_model)
    assert "no signatures" in info.value.message
    assert "serving signature" in info.value.message


def test_format_resolution(tmp_path, cnn_keras_file, cnn_saved_model):
    assert resolve_format(cnn_keras_file) == "keras"
    assert resolve_format(cnn_saved_model) == "saved_model"
    with pytest.raises(InvalidSourceError, match=r"set spec\.source.format: saved_model"):
        resolve_format(cnn_saved_model, "keras")
    with pytest.raises(InvalidSourceError, match="is a file"):
        resolve_format(cnn_keras_file, "saved_model")
    with pytest.raises(SpecError, match="unknown source format"):
        resolve_format(cnn_saved_model, "onnx")


def test_corrupt_keras_file(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(InvalidSourceError) as info:
        load_source(path)
    assert "is not a loadable .keras file" in info.value.message
    assert "model.save" in info.value.message
