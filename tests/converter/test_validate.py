"""Comparing converted models with the source: metric helpers (pure) and real runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tflite_operator.api.spec import Variant
from tflite_operator.converter.convert import convert_variant
from tflite_operator.converter.source import load_source
from tflite_operator.converter.validate import (
    NotRunnableError,
    accuracy_report,
    compare,
    cosine_similarity,
    dequantize,
    is_classifier_like,
    output_error,
    quantize,
    run_tflite,
    top1_agreement,
    verdict,
)

# --- Pure helpers -----------------------------------------------------------------------------


def test_output_error_on_known_numbers():
    ref = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    cand = np.array([[1.5, 2.0, 3.0], [0.0, 0.1, 1.0]])
    err = output_error("probs", ref, cand, classifier=True)
    assert err.max_abs_error == pytest.approx(0.5)
    assert err.mean_abs_error == pytest.approx(0.6 / 6)
    assert 0.98 < err.cosine_similarity < 1.0
    assert err.top1_agreement == 1.0


def test_cosine_similarity_edge_cases():
    assert cosine_similarity(np.zeros(3), np.zeros(3)) == 1.0
    assert cosine_similarity(np.zeros(3), np.ones(3)) == 0.0
    assert cosine_similarity(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(0.0)
    assert cosine_similarity(np.array([1.0, 2]), np.array([-1.0, -2])) == pytest.approx(-1.0)


def test_top1_agreement_counts_rows():
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    cand = np.array([[0.8, 0.2], [0.6, 0.4], [0.6, 0.4], [0.4, 0.6]])
    assert top1_agreement(ref, cand) == 0.75


def test_classifier_rule():
    assert is_classifier_like((1, 10))
    assert not is_classifier_like((1, 1))  # a single sigmoid score
    assert not is_classifier_like((1, 4, 4))  # a feature map
    assert not is_classifier_like((10,))  # no batch axis: ambiguous


def test_verdicts():
    assert verdict(0.012, 0.05, None) == (True, "max abs error 0.012 within tolerance 0.05")
    ok, text = verdict(0.2, 0.05, 0.98)
    assert not ok and text == "max abs error 0.2 exceeds tolerance 0.05; top-1 agreement 98.0%"
    assert verdict(3.0, None, None) == (True, "max abs error 3 (no tolerance set)")
    assert verdict(math.nan, None, None)[0] is False


def test_accuracy_report_takes_worst_output():
    a = output_error("a", np.zeros((2, 3)), np.full((2, 3), 0.01), classifier=True)
    b = output_error("b", np.zeros((2, 1)), np.full((2, 1), 0.2), classifier=False)
    report = accuracy_report([a, b], samples=2, tolerance=0.1)
    assert report.max_abs_error == pytest.approx(0.2)
    assert report.top1_agreement == 1.0
    assert not report.within_tolerance
    assert "exceeds tolerance 0.1" in report.verdict


def test_quantize_round_trip_and_clipping():
    x = np.array([-1.0, 0.0, 0.5, 2.0])
    q = quantize(x, np.int8, scale=1 / 128, zero_point=0)
    assert q.dtype == np.int8
    assert list(q) == [-128, 0, 64, 127]  # 2.0 clips to 127
    np.testing.assert_allclose(dequantize(q, 1 / 128, 0), [-1.0, 0.0, 0.5, 127 / 128])
    assert list(quantize(np.array([0.0, 1.0]), np.uint8, 1 / 255, 0)) == [0, 255]
    # scale 0: not a quantized tensor, plain cast (e.g. int32 token ids).
    assert quantize(np.array([3.0]), np.int32, 0.0, 0).tolist() == [3]


# --- Real models ------------------------------------------------------------------------------


def test_fp32_is_near_exact(cnn_source, convert_cnn, validation_samples):
    report = compare(
        cnn_source, "serving_default", convert_cnn("none").tflite, validation_samples, 1e-4
    )
    assert report.samples == 48
    assert report.max_abs_error < 1e-4
    assert report.within_tolerance
    assert report.top1_agreement == 1.0
    [out] = report.outputs
    assert out.name == "output_0"
    assert out.cosine_similarity > 0.9999


@pytest.mark.parametrize("io_type", ["int8", "float32"])
def test_int8_small_but_nonzero_error(cnn_source, convert_cnn, validation_samples, io_type):
    report = compare(
        cnn_source,
        "serving_default",
        convert_cnn("int8", io_type).tflite,
        validation_samples,
        tolerance=0.1,
    )
    # Errors are in the float domain (dequantized), so they are comparable to fp32's.
    assert 1e-4 < report.max_abs_error < 0.1
    assert report.outputs[0].mean_abs_error < 0.01
    assert report.top1_agreement >= 0.9
    assert report.within_tolerance
    assert report.verdict.startswith("max abs error ")


def test_int16x8_is_closer_than_int8(cnn_source, convert_cnn, validation_samples):
    int8 = compare(
        cnn_source, "serving_default", convert_cnn("int8").tflite, validation_samples, None
    )
    int16_tflite = convert_cnn("int16x8", "int16").tflite
    int16 = compare(cnn_source, "serving_default", int16_tflite, validation_samples, None)
    assert int16.outputs[0].mean_abs_error < int8.outputs[0].mean_abs_error


def test_tight_tolerance_fails_verdict(cnn_source, convert_cnn, validation_samples):
    report = compare(
        cnn_source, "serving_default", convert_cnn("int8").tflite, validation_samples, 1e-6
    )
    assert not report.within_tolerance
    assert "exceeds tolerance 1e-06" in report.verdict


def test_keras_source_compares_by_its_output_names(cnn_keras_file, calibration):
    source = load_source(cnn_keras_file)
    tflite = convert_variant(source, Variant(name="fp16", quantization="float16"), None).tflite
    report = compare(source, "serving_default", tflite, calibration, 0.01)
    assert [o.name for o in report.outputs] == ["probs"]
    assert report.within_tolerance


def test_flex_model_is_not_runnable(flex_saved_model):
    source = load_source(flex_saved_model)
    tflite = convert_variant(source, Variant(name="flex", ops="select-tf-ops"), None).tflite
    samples_inputs = [{"x": np.ones((1, 4), np.float32)}]
    with pytest.raises(NotRunnableError) as info:
        run_tflite(tflite, "serving_default", samples_inputs)
    assert "uses Select TF ops (Cumprod)" in info.value.reason
    assert "LiteRT issue 6458" in info.value.reason
    assert "Flex delegate" in info.value.reason


def test_run_tflite_dequantizes_outputs(convert_cnn, digits):
    [out] = run_tflite(
        convert_cnn("int8", "int8").tflite, "serving_default", [{"image": digits[0][:1]}]
    )
    probs = out["output_0"]
    assert probs.dtype == np.float64 and probs.shape == (1, 10)
    assert probs.sum() == pytest.approx(1.0, abs=0.05)
