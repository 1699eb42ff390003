"""The CRD is generated from the spec model; these tests fail when the two drift apart."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tflite_operator.api.manifest import load_manifest, parse_spec
from tflite_operator.api.status import ConversionStatus
from tflite_operator.controller import crd, crd_rules

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "config" / "samples").glob("*.yaml"))


def schema() -> dict[str, Any]:
    return crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_committed_crd_is_what_the_generator_writes():
    committed = (REPO / "crds" / "tfliteconversions.yaml").read_text()
    assert committed == crd.render_yaml(), "crds/ is stale: run `make crds`"
    assert crd.main(["--check"]) == 0


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "crd.yaml"
    stale.write_text(crd.render_yaml().replace("maxItems: 16", "maxItems: 17", 1))
    assert crd.main(["--check", "--path", str(stale)]) == 1
    assert "maxItems: 17" in capsys.readouterr().out


def _walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for key, sub in node.get("properties", {}).items():
            yield from _walk(sub, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            yield from _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            yield from _walk(node["additionalProperties"], f"{path}.*")


def test_schema_is_structural():
    for path, node in _walk(schema()):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        for key in ("$ref", "anyOf", "allOf", "oneOf", "title", "$defs", "nullable"):
            assert key not in node, f"{path} has {key}"
        if "additionalProperties" in node:
            assert isinstance(node["additionalProperties"], dict), path
            assert "properties" not in node, path


def test_every_string_and_list_a_cel_rule_reads_is_bounded():
    """CEL's cost estimate is only accepted when what a rule iterates over has a bound."""
    variants = schema()["properties"]["spec"]["properties"]["variants"]
    assert variants["maxItems"] == 16
    item = variants["items"]["properties"]
    assert item["name"]["maxLength"] == 40
    assert item["quantization"]["enum"] and item["ioType"]["enum"]


def apply_defaults(node: dict[str, Any], value: Any) -> Any:
    """The apiserver's structural defaulting: missing fields get the schema's default."""
    if isinstance(value, dict) and "properties" in node:
        for key, sub in node["properties"].items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(sub, value[key])
    elif isinstance(value, list) and "items" in node:
        return [apply_defaults(node["items"], v) for v in value]
    return value


MINIMAL = {
    "source": {"uri": "gs://models/m/saved_model"},
    "output": {"uri": "gs://out-bucket/m/"},
    "variants": [
        {"name": "a"},
        {"name": "b", "quantization": "int8", "representativeDataset": {}},
    ],
}


@pytest.mark.parametrize(
    "spec",
    [MINIMAL] + [yaml.safe_load(p.read_text())["spec"] for p in SAMPLES],
    ids=["minimal"] + [p.stem for p in SAMPLES],
)
def test_crd_defaults_are_the_spec_models_defaults(spec):
    """What the apiserver stores is what the converter would assume: no default drifts."""
    by_apiserver = apply_defaults(schema()["properties"]["spec"], copy.deepcopy(spec))
    by_model = parse_spec(spec).model_dump(by_alias=True, exclude_none=True, mode="json")
    assert by_apiserver == by_model


def test_every_spec_field_is_in_the_schema_and_nothing_else():
    spec_schema = schema()["properties"]["spec"]
    sample = yaml.safe_load((REPO / "config/samples/all-variants.yaml").read_text())
    full = parse_spec(sample["spec"])
    dumped = full.model_dump(by_alias=True, mode="json")

    def fields(value: Any, node: dict[str, Any], path: str) -> None:
        if isinstance(value, dict) and "properties" in node:
            assert set(value) == set(node["properties"]), path
            for key, sub in value.items():
                fields(sub, node["properties"][key], f"{path}.{key}")

    fields(dumped, spec_schema, "spec")


def _resolve(json_path: str) -> dict[str, Any]:
    node = schema()
    json_path = re.sub(r"\[\?\(.*?\)\]", "", json_path)  # a filter keeps the item type
    for part in json_path.strip(".").split("."):
        part = part.split("[")[0]
        node = node["properties"][part]
        if node.get("type") == "array":
            node = node["items"]
    return node


def test_printer_columns_point_at_declared_fields():
    for col in crd.PRINTER_COLUMNS:
        if col["jsonPath"].startswith(".status"):
            node = _resolve(col["jsonPath"])
            assert node["type"] == col["type"], col
    names = [c["name"] for c in crd.PRINTER_COLUMNS if not c.get("priority")]
    assert names == ["Phase", "Selected", "Size", "P50-ms", "Age"]


def test_status_schema_is_the_status_model_plus_kopf():
    status = schema()["properties"]["status"]["properties"]
    model_fields = {f.alias or n for n, f in ConversionStatus.model_fields.items()}
    assert set(status) == model_fields | {"kopf"}
    assert status["kopf"]["x-kubernetes-preserve-unknown-fields"] is True
    assert status["conditions"]["x-kubernetes-list-type"] == "map"


def test_samples_are_valid_manifests():
    assert len(SAMPLES) >= 3
    for path in SAMPLES:
        name, spec = load_manifest(path)
        assert name and spec.variants


def test_names_short_names_and_category():
    names = crd.build_crd()["spec"]["names"]
    assert names["kind"] == "TFLiteConversion"
    assert names["shortNames"] and names["categories"]
    version = crd.build_crd()["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}


# --- size bounds ------------------------------------------------------------------------------

# The spec travels whole in the converter's environment (Linux refuses an env string over
# 128 KiB at exec) and twice in the resource's annotations (kubectl's last-applied-configuration
# and Kopf's last-handled-configuration share a 256 KiB limit).
MAX_SPEC_JSON = 96 * 1024


def test_every_string_list_and_map_in_the_spec_has_a_bound():
    for path, node in _walk(schema()["properties"]["spec"]):
        kind = node.get("type")
        if kind == "string":
            assert "maxLength" in node or "enum" in node, path
        elif kind == "array":
            assert "maxItems" in node, path
        elif kind == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path
        assert not node.get("x-kubernetes-preserve-unknown-fields"), path


def _biggest(node: dict[str, Any]) -> Any:
    """The largest value the schema admits (map keys: the longest label key Kubernetes takes)."""
    from tflite_operator.api.kube_rules import MAX_QUALIFIED_NAME

    kind = node.get("type")
    if "enum" in node:
        return max(node["enum"], key=lambda v: len(str(v)))
    if kind == "string":
        return "a" * node["maxLength"]
    if kind == "array":
        return [_biggest(node["items"])] * node["maxItems"]
    if kind == "object" and "properties" in node:
        return {k: _biggest(v) for k, v in node["properties"].items()}
    if kind == "object":
        value = _biggest(node["additionalProperties"])
        return {f"{i}".rjust(MAX_QUALIFIED_NAME, "k"): value for i in range(node["maxProperties"])}
    return {"integer": -(2**63), "number": -1.7976931348623157e308, "boolean": False}[kind]


def test_the_largest_spec_the_crd_admits_fits_the_jobs_environment_and_the_annotations():
    from tflite_operator.controller.job_builder import spec_json

    spec = schema()["properties"]["spec"]
    largest = json.dumps(_biggest(spec), separators=(",", ":"))
    assert len(largest.encode()) <= MAX_SPEC_JSON
    # The same through the model and the Job builder's own serialization.
    sample = yaml.safe_load((REPO / "config/samples/all-variants.yaml").read_text())["spec"]
    assert len(spec_json(parse_spec(sample)).encode()) < MAX_SPEC_JSON


@pytest.mark.parametrize("path", sorted(crd_rules.RULES))
def test_each_cel_rule_sits_on_a_field_of_the_model(path: str):
    spec = schema()["properties"]["spec"]
    node = crd_rules.at(spec, path)
    assert all(r in node["x-kubernetes-validations"] for r in crd_rules.RULES[path])


def test_no_pattern_reaches_the_crd():
    """A pattern's error shows a regex; the CEL rules say what a valid value looks like."""
    for path, node in _walk(schema()["properties"]["spec"]):
        assert "pattern" not in node, path


def test_local_paths_are_for_the_cli_only():
    """The model (shared with the CLI) takes local paths; the CRD demands gs:// for each URI."""
    from malformed_cases import CLUSTER_ONLY_CASES

    for case in CLUSTER_ONLY_CASES:
        parse_spec(case.spec)
    spec = schema()["properties"]["spec"]
    for path in crd_rules.URI_FIELDS:
        rules = crd_rules.at(spec, path)["x-kubernetes-validations"]
        assert rules[0]["rule"] == "self.startsWith('gs://')", path
