"""The LiteRT runner: float-domain I/O of quantized models, and models this runtime cannot run."""

from __future__ import annotations

import numpy as np
import pytest

from tflite_operator.api.spec_variant import Variant
from tflite_operator.converter.convert import convert_variant
from tflite_operator.converter.litert_runner import (
    NotRunnableError,
    dequantize,
    quantize,
    run_tflite,
)
from tflite_operator.converter.source import load_source


def test_quantize_round_trip_and_clipping():
    x = np.array([-1.0, 0.0, 0.5, 2.0])
    q = quantize(x, np.int8, scale=1 / 128, zero_point=0)
    assert q.dtype == np.int8
    assert list(q) == [-128, 0, 64, 127]  # 2.0 clips to 127
    np.testing.assert_allclose(dequantize(q, 1 / 128, 0), [-1.0, 0.0, 0.5, 127 / 128])
    assert list(quantize(np.array([0.0, 1.0]), np.uint8, 1 / 255, 0)) == [0, 255]
    # scale 0: not a quantized tensor, plain cast (e.g. int32 token ids).
    assert quantize(np.array([3.0]), np.int32, 0.0, 0).tolist() == [3]


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
