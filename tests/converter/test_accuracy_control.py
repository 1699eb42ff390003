"""Accuracy control on a model built to have one layer that int8 destroys.

The model: x (8 features) -> dense "dead_input" -> relu -> dense -> relu -> dense -> softmax.
Feature 0 is always 0 in the data (a padding feature), and dead_input's weights from it are
1000: harmless in float, but per-channel int8 weights get a step of 1000/127, so the other
weights of every column (about 1) round to 0 or +-7.9 and that layer's output is garbage. The
layer-by-layer debugger sees it (its rmse/scale is far above rounding's 0.29), and keeping that
one layer in float restores the output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tflite_operator.api.manifest import parse_spec
from tflite_operator.converter import pipeline

BUDGET = 0.1  # max abs error of the softmax outputs
BAD = "dead_input"


@pytest.fixture(scope="module")
def bad_layer_model(tf, tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)

    class DeadInput(tf.Module):
        def __init__(self):
            super().__init__()
            w1 = rng.normal(size=(8, 16)).astype(np.float32)
            w1[0, :] = 1000.0
            self.w1 = tf.Variable(w1)
            self.w2 = tf.Variable(rng.normal(size=(16, 16)).astype(np.float32) * 0.3)
            self.w3 = tf.Variable(rng.normal(size=(16, 10)).astype(np.float32) * 0.3)

        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def serve(self, x):
            h = tf.nn.relu(tf.matmul(x, self.w1), name=BAD)
            h = tf.nn.relu(tf.matmul(h, self.w2))
            return {"probs": tf.nn.softmax(tf.matmul(h, self.w3))}

    module = DeadInput()
    path = tmp_path_factory.mktemp("models") / "dead_input"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


@pytest.fixture(scope="module")
def data_npz(tmp_path_factory) -> Path:
    x = np.random.default_rng(1).normal(size=(64, 8)).astype(np.float32)
    x[:, 0] = 0.0  # the padding feature
    path = tmp_path_factory.mktemp("data") / "x.npz"
    np.savez(path, x=x)
    return path


@pytest.fixture(scope="module")
def run(bad_layer_model, data_npz, tmp_path_factory):
    calibration = {"uri": str(data_npz), "samples": 32}
    spec = parse_spec(
        {
            "source": {"uri": str(bad_layer_model)},
            "output": {"uri": str(tmp_path_factory.mktemp("out") / "m")},
            "variants": [
                {"name": "int8", "quantization": "int8", "representativeDataset": calibration},
                {
                    "name": "int8-controlled",
                    "quantization": "int8",
                    "ioType": "int8",
                    "representativeDataset": calibration,
                    "accuracyControl": {"maxFloatLayers": 4},
                },
                {
                    "name": "out-of-reach",
                    "quantization": "int8",
                    "representativeDataset": calibration,
                    "maxOutputError": 0.0,
                    "accuracyControl": {"maxFloatLayers": 1},
                },
                {
                    "name": "int16x8",
                    "quantization": "int16x8",
                    "representativeDataset": calibration,
                    "accuracyControl": {},
                },
            ],
            "target": {"maxOutputError": BUDGET},
            "benchmark": {"runs": 3, "warmupRuns": 1, "threads": 1, "sourceBaseline": False},
            "validation": {"samples": 16, "datasetUri": str(data_npz)},
        }
    )
    outcome = pipeline.run("dead-input", spec, tmp_path_factory.mktemp("work"))
    return {v.name: v for v in outcome.report.variants}, outcome


def test_plain_int8_misses_the_budget(run):
    variants, _ = run
    plain = variants["int8"]
    assert plain.accuracy.max_abs_error > BUDGET
    assert not plain.target.meets
    # Not asked for: no second conversion, no layer errors.
    assert plain.accuracy_control is None and plain.layer_errors == []


def test_the_bad_layer_ranks_worst(run):
    variants, _ = run
    errors = variants["int8-controlled"].layer_errors
    worst = errors[0]
    assert BAD in worst.tensor and worst.op == "FULLY_CONNECTED"
    assert worst.rmse_over_scale > 5  # rounding alone gives about 0.29
    assert all(BAD not in e.tensor and e.rmse_over_scale < 1 for e in errors[1:])


def test_controlled_int8_meets_it_with_the_bad_layer_in_float(run):
    variants, outcome = run
    controlled = variants["int8-controlled"]
    control = controlled.accuracy_control
    assert control.met and controlled.target.meets
    assert any(BAD in t for t in control.float_layers)
    assert len(control.float_layers) <= 2
    assert control.error_before > BUDGET >= control.error_after
    assert controlled.accuracy.max_abs_error == control.error_after
    assert control.budget == f"maxOutputError {BUDGET}"
    assert 1 <= control.steps <= 3
    assert control.latency_cost_ms is not None
    # The float layer's weights are float32 now: the model grows, and says by how much.
    assert control.size_cost_bytes > 0
    assert controlled.size_bytes == len(outcome.tflite["int8-controlled"])
    assert controlled.input_types == ["int8"]
    assert "denylisted_nodes" in controlled.converter_settings
    assert BAD in controlled.converter_settings["denylisted_nodes"]
    assert controlled.benchmark.latency_ms is not None  # the benchmark timed the shipped model


def test_a_budget_the_cap_cannot_reach_ships_the_plain_model_and_says_so(run):
    variants, _ = run
    variant = variants["out-of-reach"]
    control = variant.accuracy_control
    assert not control.met and not variant.target.meets
    assert control.float_layers == [] and control.steps == 1
    assert control.error_after == control.error_before == variant.accuracy.max_abs_error
    assert "raise maxFloatLayers" in control.note
    assert variant.size_bytes == variants["int8"].size_bytes
    assert "denylisted_nodes" not in variant.converter_settings


def test_the_report_json_carries_it(run):
    _, outcome = run
    wire = outcome.report.model_dump(by_alias=True, exclude_none=True, mode="json")
    controlled = next(v for v in wire["variants"] if v["name"] == "int8-controlled")
    assert set(controlled["accuracyControl"]) >= {"floatLayers", "sizeCostBytes", "met"}
    assert controlled["layerErrors"][0]["rmseOverScale"] > 5
    assert controlled["converterSettings"]["denylisted_nodes"]


def test_int16x8_says_why_it_cannot_keep_layers_in_float(run):
    variants, _ = run
    control = variants["int16x8"].accuracy_control
    assert control.float_layers == [] and control.steps == 0
    assert not control.met
    assert "int16x8" in control.note and "int8" in control.note


def test_every_variant_reports_the_converter_settings_applied(run):
    variants, _ = run
    plain = variants["int8"].converter_settings
    assert plain["optimizations"] == "[DEFAULT]"
    assert plain["target_spec.supported_ops"] == "[TFLITE_BUILTINS_INT8]"
    assert plain["inference_input_type"] == "float32"
    assert "denylisted_nodes" not in plain
    assert variants["int8-controlled"].converter_settings["inference_input_type"] == "int8"
    assert variants["int16x8"].converter_settings["target_spec.supported_ops"] == (
        "[EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]"
    )


def test_several_signatures_are_all_judged_and_the_report_says_which_layers_were_seen(
    tf, tmp_path_factory
):
    """Two signatures share the dead-input weights; the debugger sees one subgraph's tensors,
    so keeping those in float fixes that signature only, and the budget (judged on both) is
    still missed: the variant ships plain and the note says why."""
    rng = np.random.default_rng(0)

    class TwoHeads(tf.Module):
        def __init__(self):
            super().__init__()
            w = rng.normal(size=(8, 8)).astype(np.float32)
            w[0, :] = 1000.0
            self.w = tf.Variable(w)
            self.head = tf.Variable(rng.normal(size=(8, 4)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def classify(self, x):
            return {"probs": tf.nn.softmax(tf.nn.relu(x @ self.w) @ self.head)}

        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def embed(self, x):
            return {"features": tf.nn.relu(x @ self.w)}

    module = TwoHeads()
    root = tmp_path_factory.mktemp("two_heads")
    tf.saved_model.save(
        module,
        str(root / "model"),
        signatures={"serving_default": module.classify, "embed": module.embed},
    )
    x = np.random.default_rng(1).normal(size=(16, 8)).astype(np.float32)
    x[:, 0] = 0.0
    np.savez(root / "x.npz", x=x)
    calibration = {"uri": str(root / "x.npz"), "samples": 16}
    spec = parse_spec(
        {
            "source": {"uri": str(root / "model"), "signatureKeys": ["serving_default", "embed"]},
            "output": {"uri": str(root / "out")},
            "variants": [
                {
                    "name": "int8",
                    "quantization": "int8",
                    "representativeDataset": calibration,
                    "accuracyControl": {"maxFloatLayers": 2},
                }
            ],
            "target": {"maxOutputError": 0.5},
            "benchmark": {"enabled": False},
            "validation": {"samples": 8, "datasetUri": str(root / "x.npz")},
        }
    )
    variant = pipeline.run("two-heads", spec, root / "work").report.variants[0]
    assert [c.key for c in variant.signature_checks] == ["serving_default", "embed"]
    control = variant.accuracy_control
    assert control.steps >= 1 and not control.met
    assert "first subgraph" in control.note
    assert variant.layer_errors[0].rmse_over_scale > 5
