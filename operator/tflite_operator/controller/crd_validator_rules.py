"""The cross-field validators of the spec model (Variant, ConversionSpec), in CEL.

Built from the same tables the pydantic validators use (ALLOWED_IO_TYPES,
NEEDS_REPRESENTATIVE_DATA, ACCURACY_CONTROL_QUANTIZATIONS), with the same messages, so the
apiserver rejects what the converter would.
"""

from __future__ import annotations

from typing import Any

from tflite_operator.api.spec_variant import (
    ACCURACY_CONTROL_QUANTIZATIONS,
    ALLOWED_IO_TYPES,
    NEEDS_REPRESENTATIVE_DATA,
    IOType,
)


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
