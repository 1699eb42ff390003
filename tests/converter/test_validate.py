"""Comparing converted models with the source: report figures (pure) and real runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tflite_operator.api.spec import Variant
from tflite_operator.converter.convert import convert_variant
from tflite_operator.converter.source import load_source
from tflite_operator.converter.validate import accuracy_report, compare, output_error, verdict

# --- Pure helpers -----------------------------------------------------------------------------


def test_output_error_on_known_numbers():
    ref = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    cand = np.array([[1.5, 2.0, 3.0], [0.0, 0.1, 1.0]])
    err = output_error("probs", ref, cand, classifier=True)
    assert err.max_abs_error == pytest.approx(0.5)
    assert err.mean_abs_error == pytest.approx(0.6 / 6)
    assert 0.98 < err.cosine_similarity < 1.0
    assert err.top1_agreement == 1.0


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
