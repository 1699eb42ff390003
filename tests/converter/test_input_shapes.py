"""spec.source.inputShapes: the issue's model with input (None, None, None, 3), for real.

Without the field the run stops at inspect, before any conversion, naming the field and the
input; with it every variant (int8 and int16x8 included) converts to a static shape, validates
against TensorFlow and benchmarks, from a SavedModel and from a .keras file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tflite_operator.api.errors import SpecError
from tflite_operator.api.manifest import parse_spec
from tflite_operator.api.report import VariantStatus
from tflite_operator.api.report_metrics import SignatureInfo, TensorInfo
from tflite_operator.converter import pipeline
from tflite_operator.converter.data import load_samples
from tflite_operator.converter.input_shapes import apply_input_shapes, require_static
from tflite_operator.converter.ops import signature_io
from tflite_operator.converter.progress import Progress
from tflite_operator.converter.source import load_source

SIDE = 24
ALL_VARIANTS = [
    {"name": "fp32"},
    {"name": "fp16", "quantization": "float16"},
    {"name": "dynamic", "quantization": "dynamic-range"},
    {"name": "int8", "quantization": "int8", "ioType": "int8"},
    {"name": "int16x8", "quantization": "int16x8"},
]


def image_signature(shape: list[int | None]) -> SignatureInfo:
    return SignatureInfo(
        key="serving_default",
        inputs=[TensorInfo(name="image", dtype="float32", shape=shape)],
        outputs=[TensorInfo(name="probs", dtype="float32", shape=[None, 5])],
    )


# Pure checks of the field against a signature ----------------------------------------------


def test_shapes_fill_the_unknown_dims_batch_included():
    [sig] = apply_input_shapes([image_signature([None, None, None, 3])], {"image": [2, 8, 9, 3]})
    assert sig.inputs[0].shape == [2, 8, 9, 3]
    require_static([sig])


def test_an_unknown_batch_alone_needs_no_field():
    require_static([image_signature([None, 224, 224, 3])])


def test_unknown_dims_without_the_field_name_it_and_the_input():
    with pytest.raises(SpecError) as err:
        require_static([image_signature([None, None, None, 3])])
    message = err.value.message
    assert (
        "input 'image' of signature 'serving_default' has unknown dims (None, None, None, 3)"
        in (message)
    )
    assert "set spec.source.inputShapes: {image: [1, <d1>, <d2>, 3]}" in message


@pytest.mark.parametrize(
    ("shapes", "expected"),
    [
        ({"imgae": [1, 8, 8, 3]}, "names 'imgae', which is not an input"),
        ({"image": [1, 8, 8]}, "has 3 dims [1, 8, 8], but input 'image'"),
        ({"image": [1, 8, 8, 4]}, "axis 3 is 3, not 4"),
    ],
)
def test_names_ranks_and_known_dims_are_checked(shapes, expected):
    with pytest.raises(SpecError) as err:
        apply_input_shapes([image_signature([None, None, None, 3])], shapes)
    assert expected in err.value.message
    assert "spec.source.inputShapes" in err.value.message


def test_a_name_is_checked_against_every_selected_signature():
    other = SignatureInfo(
        key="embed", inputs=[TensorInfo(name="x", dtype="float32", shape=[None, 16])], outputs=[]
    )
    with pytest.raises(SpecError, match="serving_default: image; embed: x"):
        apply_input_shapes([image_signature([None, None, None, 3]), other], {"y": [1, 16]})


# The model, for real ----------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamic_cnn(tf):
    """Input (None, None, None, 3): a conv and a global pooling take any image size."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3), name="image")
    h = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax", name="probs")(h))


@pytest.fixture(scope="module")
def dynamic_sources(dynamic_cnn, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dynamic")
    dynamic_cnn.export(str(root / "saved_model"), verbose=False)
    dynamic_cnn.save(root / "cnn.keras")
    return {"saved_model": root / "saved_model", "keras": root / "cnn.keras"}


def run_spec(source: Path, out: Path, variants: list[dict], shapes: dict | None) -> dict:
    src = {"uri": str(source), **({"inputShapes": shapes} if shapes else {})}
    return {
        "source": src,
        "output": {"uri": str(out)},
        "variants": variants,
        "benchmark": {"runs": 3, "warmupRuns": 1, "threads": 1},
        "validation": {"samples": 4},
    }


class Stages(Progress):
    """Records which stages began: the proof that nothing was converted."""

    def __init__(self) -> None:
        self.begun: list[str] = []

    def begin(self, stage: str, detail: str = "", total: int | None = None) -> None:
        self.begun.append(stage)


@pytest.mark.parametrize("kind", ["saved_model", "keras"])
def test_unknown_dims_fail_before_any_conversion_naming_the_field(dynamic_sources, kind, tmp_path):
    spec = parse_spec(run_spec(dynamic_sources[kind], tmp_path / "out", ALL_VARIANTS, None))
    stages = Stages()
    with pytest.raises(SpecError) as err:
        pipeline.run("dynamic", spec, tmp_path / "work", stages)
    assert stages.begun == ["fetch", "inspect"]
    assert "input 'image'" in err.value.message
    assert "(None, None, None, 3)" in err.value.message
    assert "spec.source.inputShapes: {image: [1, <d1>, <d2>, 3]}" in err.value.message
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def fixed_run(dynamic_sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("fixed") / "out"
    shapes = {"image": [1, SIDE, SIDE, 3]}
    spec = parse_spec(run_spec(dynamic_sources["saved_model"], out, ALL_VARIANTS, shapes))
    return out, pipeline.run("fixed", spec, tmp_path_factory.mktemp("work"))


def test_every_variant_converts_validates_and_benchmarks_with_the_field(fixed_run):
    _, outcome = fixed_run
    assert outcome.error is None
    assert [v.name for v in outcome.report.variants] == [v["name"] for v in ALL_VARIANTS]
    for v in outcome.report.variants:
        assert v.status == VariantStatus.CONVERTED, v.error
        assert v.accuracy is not None and v.accuracy.samples == 4, v.name
        assert v.benchmark.latency_ms.runs == 3, v.name
        assert v.calibration is None or v.calibration.kind == "synthetic"
    by_name = {v.name: v for v in outcome.report.variants}
    assert by_name["fp32"].accuracy.max_abs_error < 1e-5
    assert by_name["int8"].accuracy.max_abs_error < 0.05


def test_the_converted_models_take_exactly_the_fixed_shape(fixed_run):
    out, outcome = fixed_run
    [sig] = outcome.report.source.signatures
    assert sig.inputs[0].shape == [1, SIDE, SIDE, 3]
    assert sig.outputs[0].shape == [1, 5]
    from ai_edge_litert.interpreter import Interpreter

    for name in ("fp32", "int8"):
        runner = Interpreter(model_path=str(out / f"{name}.tflite"))
        [detail] = runner.get_input_details()
        assert list(detail["shape"]) == [1, SIDE, SIDE, 3]
        # -1 in shape_signature would mean a dim the runtime must resize: none is left.
        assert list(detail["shape_signature"]) == [1, SIDE, SIDE, 3]
    assert signature_io((out / "int8.tflite").read_bytes())[0].inputs == [("image", "int8")]


def test_keras_source_is_traced_with_the_fixed_shape(dynamic_sources, tmp_path):
    shapes = {"image": [1, SIDE, SIDE, 3]}
    variants = [ALL_VARIANTS[0], ALL_VARIANTS[3]]
    spec = parse_spec(run_spec(dynamic_sources["keras"], tmp_path / "out", variants, shapes))
    outcome = pipeline.run("keras", spec, tmp_path / "work")
    assert outcome.error is None
    assert outcome.report.source.signatures[0].inputs[0].shape == [1, SIDE, SIDE, 3]
    assert [v.benchmark.latency_ms.runs for v in outcome.report.variants] == [3, 3]


def test_datasets_are_checked_against_the_fixed_shape(dynamic_sources, tmp_path):
    model = load_source(dynamic_sources["saved_model"], input_shapes={"image": [1, SIDE, SIDE, 3]})
    sig = model.signatures[0]
    good = tmp_path / "good.npz"
    np.savez(good, image=np.zeros((6, SIDE, SIDE, 3), np.float32))
    assert load_samples(good, sig, 4, "good.npz").inputs[0]["image"].shape == (1, SIDE, SIDE, 3)
    bad = tmp_path / "bad.npz"
    np.savez(bad, image=np.zeros((6, 16, 16, 3), np.float32))
    with pytest.raises(SpecError, match=rf"must hold \(N, {SIDE}, {SIDE}, 3\)"):
        load_samples(bad, sig, 4, "bad.npz")
    # And the source itself takes the fixed shape (validation runs it on these samples).
    outputs = model.run(sig.key, {"image": np.zeros((1, SIDE, SIDE, 3), np.float32)})
    assert outputs["output_0"].shape == (1, 5)


def test_inspect_says_which_inputs_need_the_field(dynamic_sources, capsys):
    from tflite_operator.cli import main

    assert main(["inspect", str(dynamic_sources["saved_model"])]) == 0
    out = capsys.readouterr().out
    assert "input  image: float32 [None, None, None, 3]" in out
    assert "unknown dims: set spec.source.inputShapes: {image: [1, <d1>, <d2>, 3]}" in out
