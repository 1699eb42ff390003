"""The TFLiteConversion CRD, generated from the spec model (api/spec.py) and the status model.

    python -m tflite_operator.controller.crd            # print the YAML
    python -m tflite_operator.controller.crd --write    # rewrite crds/tfliteconversions.yaml
    python -m tflite_operator.controller.crd --check    # exit 1 when the file has drifted

pydantic's JSON Schema is turned into a structural OpenAPI v3 schema (structural_schema.py).
Field rules that need CEL (Kubernetes names and quantities, gs:// URIs) are in crd_rules.py;
the cross-field rules the pydantic validators enforce are repeated in CEL in
crd_validator_rules.py, so the apiserver rejects what the converter would.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from tflite_operator import API_GROUP, API_VERSION, KIND
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.api.spec_variant import IOType, Quantization
from tflite_operator.api.status import ConversionStatus, Phase
from tflite_operator.controller import crd_rules
from tflite_operator.controller.crd_validator_rules import (
    ACCURACY_DROP_NEEDS_LABELS,
    VARIANTS_UNIQUE,
    variant_rules,
)
from tflite_operator.controller.structural_schema import structural

PLURAL = "tfliteconversions"
SINGULAR = "tfliteconversion"
SHORT_NAMES = ["tflc"]
CATEGORIES = ["tflite"]
CRD_NAME = f"{PLURAL}.{API_GROUP}"
CRD_PATH = Path(__file__).resolve().parents[3] / "crds" / f"{PLURAL}.yaml"


def spec_schema() -> dict[str, Any]:
    raw = ConversionSpec.model_json_schema(by_alias=True)
    schema = structural(raw, raw.get("$defs", {}), "spec")
    variants = schema["properties"]["variants"]
    variants["x-kubernetes-validations"] = [VARIANTS_UNIQUE]
    item = variants["items"]
    # The CEL rules read these; the defaults make sure they are always there.
    assert item["properties"]["quantization"]["default"] == Quantization.NONE
    assert item["properties"]["ioType"]["default"] == IOType.FLOAT32
    item["x-kubernetes-validations"] = variant_rules()
    schema["x-kubernetes-validations"] = [ACCURACY_DROP_NEEDS_LABELS]
    crd_rules.add_rules(schema)
    return schema


def status_schema() -> dict[str, Any]:
    raw = ConversionStatus.model_json_schema(by_alias=True)
    schema = _without_defaults(structural(raw, raw.get("$defs", {}), "status"))
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    conditions["maxItems"] = 16
    # Kopf keeps handler progress and its own bookkeeping here; it must never be pruned.
    schema["properties"]["kopf"] = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "description": "Kopf's own state (handler progress); not for users.",
    }
    assert schema["properties"]["phase"]["enum"] == [str(p) for p in Phase]
    return schema


def _without_defaults(node: Any) -> Any:
    """Status is written whole by the operator; defaults there would only invent values."""
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {
        "name": "Selected",
        "type": "string",
        "jsonPath": ".status.selected.name",
        "description": "The variant to ship: the smallest that meets the target.",
    },
    {"name": "Size", "type": "string", "jsonPath": ".status.selected.size"},
    {
        "name": "P50-ms",
        "type": "number",
        "jsonPath": ".status.selected.p50Ms",
        "description": "Median latency of the selected variant, milliseconds.",
    },
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        "priority": 1,
    },
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def build_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": "tflite-operator"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": CATEGORIES,
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "Converts a TensorFlow SavedModel (or .keras file) "
                            "into TensorFlow Lite variants in a converter Job, and publishes "
                            "their size, latency and accuracy in status.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


HEADER = (
    "# Generated by `python -m tflite_operator.controller.crd --write` (make crds) from\n"
    "# operator/tflite_operator/api/spec.py and api/status.py. Do not edit.\n"
)


def render_yaml(crd: dict[str, Any] | None = None) -> str:
    crd = crd or build_crd()
    # A round-trip through JSON drops the enum subclasses so that the YAML stays plain.
    plain = json.loads(json.dumps(crd))
    return HEADER + yaml.safe_dump(plain, sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tflite_operator.controller.crd")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"write {CRD_PATH}")
    mode.add_argument("--check", action="store_true", help="exit 1 if the file differs")
    p.add_argument("--path", type=Path, default=CRD_PATH)
    args = p.parse_args(argv)
    text = render_yaml()
    if args.write:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(text)
        print(f"wrote {args.path}")
        return 0
    if args.check:
        current = args.path.read_text() if args.path.exists() else ""
        if current == text:
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(True), text.splitlines(True), str(args.path), "generated"
            )
        )
        print(f"\n{args.path} is stale: run `make crds`", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
