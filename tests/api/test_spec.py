"""The spec model: what it accepts, and the messages for what it refuses."""

import textwrap

import pytest

from tflite_operator.api.errors import SpecError
from tflite_operator.api.manifest import load_manifest, parse_spec

BASE = {
    "source": {"uri": "gs://models/m/saved_model"},
    "output": {"uri": "gs://models-out/m/"},
    "variants": [{"name": "fp32"}],
}


def spec_with(**changes):
    return {**BASE, **changes}


def test_defaults_fill_in_and_round_trip_through_the_wire_form():
    spec = parse_spec(BASE)
    assert spec.source.signature_keys == ["serving_default"]
    assert spec.output.overwrite is False
    assert spec.benchmark.runs == 50 and spec.benchmark.threads == 2
    assert spec.variants[0].quantization == "none"
    assert parse_spec(spec.to_wire()) == spec


def test_input_shapes_are_camel_case_on_the_wire_and_default_to_none():
    assert parse_spec(BASE).source.input_shapes is None
    shapes = {"image": [1, 224, 224, 3], "mask": [1, 224, 224]}
    spec = parse_spec(spec_with(source={**BASE["source"], "inputShapes": shapes}))
    assert spec.source.input_shapes == shapes
    assert spec.to_wire()["source"]["inputShapes"] == shapes
    assert parse_spec(spec.to_wire()) == spec


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"variants": [{"name": "a"}, {"name": "a"}]}, "variant names must be unique; repeated: a"),
        ({"variants": [{"name": "x", "ioType": "int8"}]}, "ioType int8 needs quantization int8"),
        (
            {"variants": [{"name": "x", "quantization": "int16x8", "ioType": "uint8"}]},
            "use ioType float32 or int16",
        ),
        (
            {"variants": [{"name": "x", "representativeDataset": {"samples": 5}}]},
            "representativeDataset is only used by int8 and int16x8",
        ),
        ({"variants": [{"name": "Bad_Name"}]}, "spec.variants.0.name: must be lowercase"),
        ({"variants": []}, "spec.variants: List should have at least 1 item"),
        ({"source": {"uri": "gs://x/m"}}, "spec.source.uri: must be gs://BUCKET/PATH"),
        ({"variants": [{"name": "x", "quantization": "int4"}]}, "spec.variants.0.quantization"),
        ({"benchmark": {"runs": 0}}, "spec.benchmark.runs"),
        ({"unknown": 1}, "spec.unknown: Extra inputs are not permitted"),
        (
            {"source": {"uri": "gs://models/m", "inputShapes": {"image": [1, 0, 224, 3]}}},
            "spec.source.inputShapes.image.1: Input should be greater than or equal to 1",
        ),
        (
            {"source": {"uri": "gs://models/m", "inputShapes": {"image": [-1, 224, 224, 3]}}},
            "spec.source.inputShapes.image.0: Input should be greater than or equal to 1",
        ),
        (
            {"source": {"uri": "gs://models/m", "inputShapes": {"image": []}}},
            "spec.source.inputShapes.image: List should have at least 1 item",
        ),
    ],
)
def test_bad_specs_are_refused_with_the_field_and_the_fix(changes, expected):
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(**changes))
    assert expected in str(err.value)


def test_variant_error_budget_overrides_the_target():
    spec = parse_spec(
        spec_with(
            variants=[{"name": "a"}, {"name": "b", "maxOutputError": 0.5}],
            target={"maxOutputError": 0.01},
        )
    )
    assert spec.tolerance_for(spec.variants[0]) == 0.01
    assert spec.tolerance_for(spec.variants[1]) == 0.5


def test_manifest_loading(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            apiVersion: tflite.dev/v1alpha1
            kind: TFLiteConversion
            metadata: {name: edge}
            spec:
              source: {uri: gs://models/m}
              output: {uri: ./out}
              variants: [{name: int8, quantization: int8, ioType: uint8}]
            """
        )
    )
    name, spec = load_manifest(path)
    assert name == "edge"
    assert spec.variants[0].io_type == "uint8"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: ConfigMap\n", "holds 0 TFLiteConversion documents"),
        ("a: [1\n", "is not valid YAML"),
        (
            "apiVersion: other.io/v1\nkind: TFLiteConversion\nspec: {}\n",
            "expected tflite.dev/v1alpha1",
        ),
    ],
)
def test_bad_manifests(tmp_path, text, expected):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=expected):
        load_manifest(path)


def test_missing_manifest_says_what_to_pass(tmp_path):
    with pytest.raises(SpecError, match="does not exist; pass the path of a YAML file"):
        load_manifest(tmp_path / "nope.yaml")
