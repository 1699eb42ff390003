"""Conversion with real TensorFlow: each quantization, real I/O types, sizes, ops and errors."""

from __future__ import annotations

import pytest

from tflite_operator.api.errors import ConversionFailedError, SpecError
from tflite_operator.api.spec_variant import Variant
from tflite_operator.converter.convert import (
    calibration_plan,
    check_io_types,
    convert_variant,
)
from tflite_operator.converter.converter_errors import meaningful_line, unsupported_ops
from tflite_operator.converter.data import synthetic_samples
from tflite_operator.converter.ops import is_select_tf, op_summary, signature_io
from tflite_operator.converter.source import load_source


@pytest.mark.parametrize(
    ("quantization", "io_type", "expected"),
    [
        ("none", "float32", "float32"),
        ("float16", "float32", "float32"),
        ("dynamic-range", "float32", "float32"),
        ("int8", "float32", "float32"),
        ("int8", "int8", "int8"),
        ("int8", "uint8", "uint8"),
        ("int16x8", "float32", "float32"),
        ("int16x8", "int16", "int16"),
    ],
)
def test_real_io_types(convert_cnn, quantization, io_type, expected):
    converted = convert_cnn(quantization, io_type)
    assert converted.input_types == [expected]
    assert converted.output_types == [expected]
    # Read back from the model itself, not echoed from the request.
    [sig] = signature_io(converted.tflite)
    assert sig.key == "serving_default"
    assert sig.inputs == [("image", expected)]
    assert converted.seconds > 0


def test_sizes_shrink_as_expected(convert_cnn):
    fp32 = len(convert_cnn("none").tflite)
    assert fp32 > 38_000 * 4  # ~38k float32 weights
    ratios = {q: len(convert_cnn(q).tflite) / fp32 for q in ("float16", "dynamic-range", "int8")}
    assert 0.45 < ratios["float16"] < 0.6
    assert 0.2 < ratios["dynamic-range"] < 0.35
    assert 0.2 < ratios["int8"] < 0.35


def test_ops_reflect_quantization(convert_cnn):
    fp32 = convert_cnn("none").ops
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(fp32.builtin)
    assert fp32.select_tf == [] and fp32.custom == []
    assert not is_select_tf(fp32)
    # float16 weights are dequantized to float32 at load time.
    assert "DEQUANTIZE" in convert_cnn("float16").ops.builtin
    # ioType int8 keeps the whole graph integer: no QUANTIZE/DEQUANTIZE at the edges.
    int8_io = convert_cnn("int8", "int8").ops.builtin
    assert "QUANTIZE" not in int8_io and "DEQUANTIZE" not in int8_io
    assert "QUANTIZE" in convert_cnn("int8", "float32").ops.builtin


def test_keras_source_converts_with_its_names(cnn_keras_file, calibration):
    source = load_source(cnn_keras_file)
    variant = Variant(name="int8", quantization="int8", io_type="int8")
    converted = convert_variant(source, variant, calibration)
    [sig] = signature_io(converted.tflite)
    assert sig.key == "serving_default"
    assert sig.inputs == [("image", "int8")]
    assert sig.outputs == [("probs", "int8")]


def test_multi_signature_in_one_model(multi_signature_saved_model):
    source = load_source(multi_signature_saved_model, signature_keys=["serving_default", "embed"])
    calibration = synthetic_samples(source.signatures[0], 16, seed=0)
    converted = convert_variant(
        source, Variant(name="q", quantization="int8", io_type="int8"), calibration
    )
    sigs = {s.key: s for s in signature_io(converted.tflite)}
    assert set(sigs) == {"serving_default", "embed"}
    assert sigs["serving_default"].outputs == [("probs", "int8")]
    assert sigs["embed"].outputs == [("features", "int8")]
    assert converted.input_types == ["int8", "int8"]


def test_int8_without_calibration_is_a_spec_error(cnn_source):
    with pytest.raises(SpecError, match="needs representative data"):
        convert_variant(cnn_source, Variant(name="q", quantization="int8"), None)


def test_calibration_that_fits_no_signature(multi_signature_saved_model, calibration):
    source = load_source(multi_signature_saved_model, signature_keys=["embed"])
    with pytest.raises(SpecError, match=r"no representative data for signature.*embed"):
        convert_variant(source, Variant(name="q", quantization="int8"), calibration)


def test_unsupported_op_names_the_op_and_the_field(flex_saved_model):
    source = load_source(flex_saved_model)
    with pytest.raises(ConversionFailedError) as info:
        convert_variant(source, Variant(name="fp32"), None, index=2)
    message = info.value.message
    assert "Cumprod" in message
    assert "spec.variants[2].ops: select-tf-ops" in message
    assert message.startswith("variant 'fp32'")
    # Without an index the variant is named by its name.
    with pytest.raises(ConversionFailedError, match=r"spec.variants\[fp32\].ops: select-tf-ops"):
        convert_variant(source, Variant(name="fp32"), None)


def test_select_tf_ops_converts_and_reports_flex_ops(flex_saved_model):
    source = load_source(flex_saved_model)
    converted = convert_variant(source, Variant(name="flex", ops="select-tf-ops"), None)
    assert converted.ops.select_tf == ["Cumprod"]
    assert "ADD" in converted.ops.builtin
    assert is_select_tf(converted.ops)
    assert op_summary(converted.tflite) == converted.ops


def test_op_without_any_kernel_says_select_tf_cannot_help(no_kernel_saved_model):
    source = load_source(no_kernel_saved_model)
    with pytest.raises(ConversionFailedError) as info:
        convert_variant(source, Variant(name="flex", ops="select-tf-ops"), None)
    message = info.value.message
    assert "Erfinv" in message
    assert "neither a TFLite builtin nor a Select TF kernel" in message
    assert "replace them in the model" in message


def test_parse_converter_error_text():
    text = (
        "loc(fused[...]): error: 'tf.Cumprod' op is neither a custom op nor a flex op\n"
        "error: failed while converting: 'main':\n"
        "Some ops are not supported by the native TFLite runtime, you can enable TF kernels "
        "fallback using TF Select.\n"
        "TF Select ops: Cumprod, MatrixDeterminant\n"
        "Details:\n"
        "\ttf.Cumprod(tensor<?x4xf32>) -> (tensor<?x4xf32>)\n"
        "Custom ops: Erfinv\n"
    )
    ops = unsupported_ops(RuntimeError(text))
    assert ops.flex == ["Cumprod", "MatrixDeterminant"]
    assert ops.custom == ["Erfinv"]
    assert (
        meaningful_line(RuntimeError(text))
        == "'tf.Cumprod' op is neither a custom op nor a flex op"
    )
    # Only the per-op line (no summary): still named.
    only = unsupported_ops(RuntimeError("error: 'tf.Foo' op is neither a custom op nor a flex op"))
    assert only.flex == ["Foo"]


def test_ignored_io_type_request_is_an_error(convert_cnn, cnn_source):
    """The converter can silently keep float I/O (TF issue 40477): check_io_types catches it."""
    float_io = convert_cnn("int8", "float32").tflite
    variant = Variant(name="int8", quantization="int8", io_type="int8")
    with pytest.raises(ConversionFailedError) as info:
        check_io_types(float_io, cnn_source.signatures, variant, "spec.variants[0]")
    message = info.value.message
    assert "requested ioType int8" in message
    assert "input serving_default/image is float32" in message
    assert "40477" in message
    assert "spec.variants[0].ioType" in message


def test_int8_with_select_tf_ops_explains_calibration_limit(flex_saved_model):
    """Calibration runs the model in the pip runtime, which has no Flex delegate."""
    source = load_source(flex_saved_model)
    calibration = synthetic_samples(source.signatures[0], 4, seed=0)
    variant = Variant(name="q", quantization="int8", ops="select-tf-ops")
    with pytest.raises(ConversionFailedError) as info:
        convert_variant(source, variant, calibration)
    message = info.value.message
    assert "Cumprod" in message and "6458" in message
    assert "dynamic-range or float16" in message


def test_calibration_plan_per_signature(multi_signature_saved_model):
    source = load_source(multi_signature_saved_model, signature_keys=["serving_default", "embed"])
    a = synthetic_samples(source.signatures[0], 2, seed=0)
    b = synthetic_samples(source.signatures[1], 3, seed=1)
    variant = Variant(name="q", quantization="int16x8")
    assert calibration_plan(source, variant, {"serving_default": a, "embed": b}) == {
        "serving_default": a,
        "embed": b,
    }
    with pytest.raises(SpecError, match="signature"):
        calibration_plan(source, variant, {"serving_default": a})
    # Quantizations without calibration ignore the data.
    assert calibration_plan(source, Variant(name="f", quantization="float16"), a) == {}


def test_op_summary_rejects_non_tflite_bytes():
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        op_summary(b"\x00" * 64)
