"""The converter's known failures end with the fix and what it means on the device.

Real models built here for the recurrent-layer, float64 and string cases; the 2 GB limit from
the converter's own error texts (a model over 2 GB needs more memory and minutes than this
suite may take, and in TF 2.21 weights over 2 GB are even written outside the FlatBuffer; only
the texts TensorFlow raises are needed to test the mapping).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tflite_operator.api.errors import ConversionFailedError
from tflite_operator.api.spec_variant import Variant
from tflite_operator.converter.convert import convert_variant
from tflite_operator.converter.data import synthetic_samples
from tflite_operator.converter.known_failures import (
    RECURRENT_LOOP_OPS,
    calibration_crash,
    conversion_error,
)
from tflite_operator.converter.source import load_source

STEPS, FEATURES = 10, 4
SEQ = {"seq": [1, STEPS, FEATURES]}


def lstm(unroll: bool = False):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((STEPS, FEATURES), name="seq")
    hidden = keras.layers.LSTM(8, unroll=unroll)(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="y")(hidden))


@pytest.fixture(scope="module")
def lstm_sources(tf, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lstm")
    model = lstm()
    model.export(str(root / "saved_model"), verbose=False)
    model.save(root / "lstm.keras")
    lstm(unroll=True).export(str(root / "unrolled"), verbose=False)
    return {
        "saved_model": root / "saved_model",
        "keras": root / "lstm.keras",
        "unrolled": root / "unrolled",
    }


def convert(source, quantization: str = "none", ops: str = "builtins"):
    variant = Variant(name="v", quantization=quantization, ops=ops)
    calibration = None
    if quantization in ("int8", "int16x8"):
        calibration = synthetic_samples(source.signatures[0], 8, seed=0)
    return convert_variant(source, variant, calibration, index=0)


def message_of(source, quantization: str = "none") -> str:
    with pytest.raises(ConversionFailedError) as err:
        convert(source, quantization)
    return err.value.message


# Recurrent layers: the TensorList of dynamic shape -------------------------------------------


def test_lstm_saved_model_names_the_fixes_that_work(lstm_sources):
    message = message_of(load_source(lstm_sources["saved_model"]))
    assert "TensorListReserve" not in message  # the raw MLIR text is gone
    assert "recurrent layer" in message
    assert "export the SavedModel with a fixed batch" in message
    assert "spec.source.inputShapes {seq: [1, 10, 4]}" in message
    assert "unroll=True" in message
    assert "spec.variants[0].ops: select-tf-ops" in message
    assert "Flex delegate" in message and "6458" in message


def test_lstm_keras_file_points_at_input_shapes(lstm_sources):
    message = message_of(load_source(lstm_sources["keras"]))
    assert "set spec.source.inputShapes with a fixed batch, e.g. {seq: [1, 10, 4]}" in message


def test_the_fix_it_names_converts_to_builtins_and_runs(lstm_sources, tf):
    source = load_source(lstm_sources["keras"], input_shapes=SEQ)
    converted = convert(source)
    assert "WHILE" in converted.ops.builtin and not converted.ops.select_tf
    from ai_edge_litert.interpreter import Interpreter

    sample = synthetic_samples(source.signatures[0], 1, seed=3).inputs[0]
    got = Interpreter(model_content=converted.tflite).get_signature_runner()(**sample)
    expected = source.run("serving_default", sample)
    np.testing.assert_allclose(got["y"], expected["y"], atol=1e-5)


def test_int8_of_the_loop_is_refused_instead_of_crashing(lstm_sources):
    # Without the refusal TF 2.21's calibrator kills this process (segmentation fault).
    source = load_source(lstm_sources["keras"], input_shapes=SEQ)
    message = message_of(source, "int8")
    assert "crashes TensorFlow's calibrator" in message
    assert "unroll=True" in message and "dynamic-range or float16" in message
    assert "spec.variants[0].quantization" in message


def test_unrolled_lstm_quantizes_to_int8(lstm_sources):
    converted = convert(load_source(lstm_sources["unrolled"]), "int8")
    assert "WHILE" not in converted.ops.builtin and not converted.ops.select_tf


def test_calibration_crash_only_for_calibrated_variants():
    loop = set(RECURRENT_LOOP_OPS) | {"While"}
    assert calibration_crash(loop, Variant(name="a", quantization="float16"), "f") is None
    assert (
        calibration_crash({"While", "MatMul"}, Variant(name="a", quantization="int8"), "f") is None
    )
    refused = calibration_crash(loop, Variant(name="a", quantization="int16x8"), "f")
    assert refused is not None and "TensorListReserve" in refused.message


# Types TFLite builtins do not compute on ----------------------------------------------------


def _one_op_model(tf, path: Path, dtype, op) -> Path:
    class OneOp(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], dtype, name="x")])
        def serve(self, x):
            return {"y": op(x)}

    module = OneOp()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def test_float64_says_to_build_in_float32(tf, tmp_path):
    path = _one_op_model(tf, tmp_path / "f64", tf.float64, lambda x: x * 2.0)
    message = message_of(load_source(path))
    assert "computes in float64 (Mul)" in message
    assert "float32" in message and "tf.cast" in message
    # Mul has a builtin: the message must not say it has none.
    assert "no TFLite builtin: Mul" not in message
    assert "select-tf-ops" in message and "Flex delegate" in message


def test_strings_say_to_move_text_processing_out(tf, tmp_path):
    path = _one_op_model(
        tf, tmp_path / "text", tf.string, lambda x: tf.cast(tf.strings.length(x), tf.float32)
    )
    message = message_of(load_source(path))
    assert "processes strings (StringLength)" in message
    assert "token ids (int32)" in message


def test_custom_ops_say_what_a_device_would_need(no_kernel_saved_model):
    message = message_of(load_source(no_kernel_saved_model))
    assert "Erfinv" in message
    assert "registered in the app's interpreter" in message


# The 2 GB limit, from TensorFlow's own texts ------------------------------------------------

TWO_GB_TEXTS = [
    # Python flatbuffers' BuilderSizeError, when lite.py rebuilds a model (I/O types, metadata)
    "flatbuffers: cannot grow buffer beyond 2 gigabytes",
    # tensorflow/compiler/mlir/lite/flatbuffer_export.cc, when even the model's structure
    # (without its weights, which TF 2.21 then writes outside the FlatBuffer) is over 2 GB
    "Model structure size is bigger than 2gb",
]


@pytest.mark.parametrize("text", TWO_GB_TEXTS)
def test_flatbuffer_limit_says_quantize_or_split(text):
    err = conversion_error(RuntimeError(text), Variant(name="big"), "spec.variants[0]")
    message = err.message
    assert message.startswith("variant 'big' (none): the model is over the 2 GB limit")
    assert "spec.variants[0].quantization: dynamic-range" in message
    assert "split the model" in message
    assert "memory-mapped whole on the device" in message


def test_protobuf_limit_says_weights_belong_in_variables():
    # TensorFlow's protobuf check when a graph with constants is serialized.
    text = "Message tensorflow.GraphDef exceeds maximum protobuf size of 2GB: 14487363127"
    message = conversion_error(ValueError(text), Variant(name="big"), "spec.variants[0]").message
    assert "2 GB limit of a protobuf" in message
    assert "keep weights in variables" in message


def test_element_type_without_a_tflite_type():
    text = "error: Failed to convert element type 'complex<f16>': Unsupported type"
    message = conversion_error(RuntimeError(text), Variant(name="c"), "spec.variants[0]").message
    assert "tensors of type complex<f16>, which TFLite has no type for" in message
