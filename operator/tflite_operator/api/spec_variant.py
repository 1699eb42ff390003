"""A variant of the spec: its quantization, I/O type, ops policy and calibration data."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from tflite_operator.api import kube_rules as kr
from tflite_operator.api.spec_fields import Uri, WireModel


class Quantization(StrEnum):
    NONE = "none"
    FLOAT16 = "float16"
    DYNAMIC_RANGE = "dynamic-range"
    INT8 = "int8"
    INT16X8 = "int16x8"


class IOType(StrEnum):
    FLOAT32 = "float32"
    INT8 = "int8"
    UINT8 = "uint8"
    INT16 = "int16"


class OpsPolicy(StrEnum):
    BUILTINS = "builtins"
    SELECT_TF_OPS = "select-tf-ops"


# Which I/O types each quantization can honour; the converter silently ignores others.
ALLOWED_IO_TYPES: dict[str, tuple[str, ...]] = {
    Quantization.NONE: (IOType.FLOAT32,),
    Quantization.FLOAT16: (IOType.FLOAT32,),
    Quantization.DYNAMIC_RANGE: (IOType.FLOAT32,),
    Quantization.INT8: (IOType.FLOAT32, IOType.INT8, IOType.UINT8),
    Quantization.INT16X8: (IOType.FLOAT32, IOType.INT16),
}
NEEDS_REPRESENTATIVE_DATA = (Quantization.INT8, Quantization.INT16X8)
# Keeping layers in float only means something for integer quantization.
ACCURACY_CONTROL_QUANTIZATIONS = (Quantization.INT8, Quantization.INT16X8)


class RepresentativeDataset(WireModel):
    uri: Annotated[
        Uri | None,
        Field(
            description=".npz or .npy file of input samples; omitted means synthetic, seeded data."
        ),
    ] = None
    samples: Annotated[int, Field(ge=1, le=10000, description="How many samples to use.")] = 100
    seed: Annotated[int, Field(ge=0, description="Seed for synthetic samples.")] = 0


class AccuracyControl(WireModel):
    """Keep the layers that quantize worst in float until the accuracy budgets hold."""

    max_float_layers: Annotated[
        int,
        Field(
            ge=1,
            le=64,
            description="At most this many layers stay in float; each costs size and latency.",
        ),
    ] = 8


class Variant(WireModel):
    name: Annotated[
        str,
        Field(min_length=1, max_length=40, description="File name stem of <name>.tflite."),
        kr.valid(kr.dns1123_label_problem),
    ]
    quantization: Quantization = Quantization.NONE
    io_type: Annotated[
        IOType,
        Field(
            description="Input/output tensor type: int8/uint8 need int8 quantization, "
            "int16 needs int16x8."
        ),
    ] = IOType.FLOAT32
    representative_dataset: Annotated[
        RepresentativeDataset | None,
        Field(description="Calibration data for int8 and int16x8."),
    ] = None
    ops: Annotated[
        OpsPolicy,
        Field(description="builtins only, or allow Select TF ops (Flex) for unsupported ops."),
    ] = OpsPolicy.BUILTINS
    max_output_error: Annotated[
        float | None,
        Field(ge=0, description="Overrides target.maxOutputError for this variant."),
    ] = None
    accuracy_control: Annotated[
        AccuracyControl | None,
        Field(
            description="int8/int16x8 only: when the variant misses its accuracy budgets, keep "
            "the layers with the largest quantization error in float until the budgets hold."
        ),
    ] = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        allowed = ALLOWED_IO_TYPES[self.quantization]
        if self.io_type not in allowed:
            raise ValueError(
                f"variant {self.name!r}: ioType {self.io_type} needs quantization "
                f"{'int8' if self.io_type in ('int8', 'uint8') else 'int16x8'}; "
                f"with quantization {self.quantization} use ioType {' or '.join(allowed)}"
            )
        if self.representative_dataset and self.quantization not in NEEDS_REPRESENTATIVE_DATA:
            raise ValueError(
                f"variant {self.name!r}: representativeDataset is only used by int8 and "
                f"int16x8 quantization; remove it or change quantization"
            )
        if self.accuracy_control and self.quantization not in ACCURACY_CONTROL_QUANTIZATIONS:
            raise ValueError(
                f"variant {self.name!r}: accuracyControl keeps layers of an int8 or int16x8 "
                f"model in float; with quantization {self.quantization} there is nothing to "
                f"keep in float: remove accuracyControl or set quantization: int8"
            )
        return self

    @property
    def calibration(self) -> RepresentativeDataset:
        return self.representative_dataset or RepresentativeDataset()
