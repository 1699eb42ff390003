"""The TFLiteConversion CRD, generated from the spec model (api/spec.py) and the status model.

    python -m tflite_operator.controller.crd            # print the YAML
    python -m tflite_operator.controller.crd --write    # rewrite crds/tfliteconversions.yaml
    python -m tflite_operator.controller.crd --check    # exit 1 when the file has drifted

pydantic's JSON Schema is turned into a structural OpenAPI v3 schema: $refs inlined, the
`X | None` unions collapsed (a missing field is the None), exclusive bounds rewritten in the
OpenAPI 3.0 form. Field rules that need CEL (Kubernetes names and quantities, gs:// URIs) are
in crd_rules.py. Cross-field rules the pydantic validators enforce are repeated as CEL rules
built from the same tables (ALLOWED_IO_TYPES, NEEDS_REPRESENTATIVE_DATA), so the apiserver
rejects what the converter would.
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
from tflite_operator.api.spec_variant import (
    ACCURACY_CONTROL_QUANTIZATIONS,
    ALLOWED_IO_TYPES,
    NEEDS_REPRESENTATIVE_DATA,
    IOType,
    Quantization,
)
from tflite_operator.api.status import ConversionStatus, Phase
from tflite_operator.controller import crd_rules

PLURAL = "tfliteconversions"
SINGULAR = "tfliteconversion"
SHORT_NAMES = ["tflc"]
CATEGORIES = ["tflite"]
CRD_NAME = f"{PLURAL}.{API_GROUP}"
CRD_PATH = Path(__file__).resolve().parents[3] / "crds" / f"{PLURAL}.yaml"

# Keys that carry over from JSON Schema to the CRD schema unchanged.
_KEEP = (
    "type",
    "format",
    "description",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)


class SchemaError(ValueError):
    pass


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return {**defs[name], **siblings}
    return node


def structural(node: dict[str, Any], defs: dict[str, Any], where: str = "") -> dict[str, Any]:
    """One JSON Schema node (pydantic's dialect) as a structural OpenAPI v3 node."""
    node = _resolve(node, defs)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) != 1:
            # A real union has no structural form; the model must not use one.
            raise SchemaError(f"{where or 'root'}: unions other than X | None are not supported")
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        node = {**_resolve(branches[0], defs), **outer}
    if "allOf" in node:
        raise SchemaError(f"{where}: allOf is not supported")

    out: dict[str, Any] = {k: node[k] for k in _KEEP if k in node}
    if "exclusiveMinimum" in node:
        out["minimum"] = node["exclusiveMinimum"]
        out["exclusiveMinimum"] = True
    if "exclusiveMaximum" in node:
        out["maximum"] = node["exclusiveMaximum"]
        out["exclusiveMaximum"] = True
    if "enum" in node and "type" not in out:
        out["type"] = "string"

    kind = out.get("type")
    if kind == "object":
        props = node.get("properties") or {}
        if props:
            out["properties"] = {
                key: structural(sub, defs, f"{where}.{key}") for key, sub in props.items()
            }
            if node.get("required"):
                out["required"] = list(node["required"])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            if props:
                raise SchemaError(f"{where}: properties and additionalProperties together")
            out["additionalProperties"] = structural(extra, defs, f"{where}.*")
        elif not props:
            # dict[str, Any]: an open object the apiserver must keep as it is.
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif kind == "array":
        out["items"] = structural(node["items"], defs, f"{where}[]")
    elif kind is None:
        raise SchemaError(f"{where}: no type")

    if "default" in node and node["default"] is not None:
        default = node["default"]
        if kind == "object":
            if out.get("required"):
                raise SchemaError(f"{where}: a default for an object with required fields")
            # `{}` and the apiserver fills the nested defaults in: the same as pydantic does.
            default = {}
        out["default"] = default
    return out


def _quoted(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _cel_map(mapping: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in mapping.items()) + "}"


def variant_rules() -> list[dict[str, Any]]:
    """The Variant model's validator, in CEL."""
    quants_for: dict[str, list[str]] = {str(t): [] for t in IOType}
    for quant, io_types in ALLOWED_IO_TYPES.items():
        for t in io_types:
            quants_for[str(t)].append(str(quant))
    needs = {t: " or ".join(q) for t, q in quants_for.items()}
    allowed = {str(q): " or ".join(str(t) for t in ts) for q, ts in ALLOWED_IO_TYPES.items()}
    quant_map = "{" + ", ".join(f"'{t}': {_quoted(q)}" for t, q in quants_for.items()) + "}"
    rep_quants = _quoted([str(q) for q in NEEDS_REPRESENTATIVE_DATA])
    control_quants = _quoted([str(q) for q in ACCURACY_CONTROL_QUANTIZATIONS])
    return [
        {
            "rule": f"self.quantization in {quant_map}[self.ioType]",
            "messageExpression": (
                '"variant \'" + self.name + "\': ioType " + self.ioType + '
                f"' needs quantization ' + {_cel_map(needs)}[self.ioType] + "
                "'; with quantization ' + self.quantization + ' use ioType ' + "
                f"{_cel_map(allowed)}[self.quantization]"
            ),
            "fieldPath": ".ioType",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"!has(self.representativeDataset) || self.quantization in {rep_quants}",
            "messageExpression": (
                '"variant \'" + self.name + "\': representativeDataset is only used by '
                f"{' and '.join(str(q) for q in NEEDS_REPRESENTATIVE_DATA)} quantization; "
                'remove it or change quantization"'
            ),
            "fieldPath": ".representativeDataset",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"!has(self.accuracyControl) || self.quantization in {control_quants}",
            "messageExpression": (
                '"variant \'" + self.name + "\': accuracyControl keeps layers of an int8 or '
                'int16x8 model in float; with quantization " + self.quantization + " there is '
                'nothing to keep in float: remove accuracyControl or set quantization: int8"'
            ),
            "fieldPath": ".accuracyControl",
            "reason": "FieldValueInvalid",
        },
    ]


VARIANTS_UNIQUE = {
    "rule": "self.all(x, self.exists_one(y, y.name == x.name))",
    "message": "variant names must be unique",
    # Not FieldValueDuplicate: the apiserver drops the message for that reason.
    "reason": "FieldValueInvalid",
}


# ConversionSpec._accuracy_drop_has_labels, in CEL. target and validation have defaults ({}),
# but a rule must not rely on defaulting having run, hence the has() guards.
ACCURACY_DROP_NEEDS_LABELS = {
    "rule": "!has(self.target) || !has(self.target.maxAccuracyDrop) || "
    "(has(self.validation) && has(self.validation.datasetUri) && "
    "(!has(self.validation.enabled) || self.validation.enabled))",
    "message": "target.maxAccuracyDrop compares task accuracy on labelled samples: set "
    "validation.datasetUri to an .npz file with the inputs and a labels array (and keep "
    "validation.enabled true), or remove target.maxAccuracyDrop",
    "fieldPath": ".target.maxAccuracyDrop",
    "reason": "FieldValueInvalid",
}


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
