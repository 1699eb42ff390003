"""Convert a source model into one TFLite variant, and check the converter did what was asked.

Where each quantization is configured: `configure()`. What a converter error means, and the field
or model change that fixes it: known_failures.py. The converter reads the SavedModel on
disk (`SourceModel.export_dir`; a .keras source has been exported there by source.py), with all
chosen signature keys in one .tflite.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tflite_operator.api.errors import ConversionFailedError, SpecError
from tflite_operator.api.report_metrics import OpsReport, SignatureInfo
from tflite_operator.api.spec_variant import (
    NEEDS_REPRESENTATIVE_DATA,
    IOType,
    OpsPolicy,
    Quantization,
    Variant,
)
from tflite_operator.converter.converter_settings import applied_settings
from tflite_operator.converter.data import Samples
from tflite_operator.converter.known_failures import calibration_crash, conversion_error
from tflite_operator.converter.ops import op_summary, signature_io
from tflite_operator.converter.signature_defs import graph_op_types
from tflite_operator.converter.source import SourceModel, import_tensorflow

FLOAT_TYPES = ("float16", "float32", "float64", "bfloat16")


@dataclass
class ConvertedVariant:
    tflite: bytes
    input_types: list[str]  # every signature's inputs, in signature order
    output_types: list[str]
    ops: OpsReport
    seconds: float
    settings: dict[str, str]  # applied_settings() of the converter that made it


def convert_variant(
    source: SourceModel,
    variant: Variant,
    calibration: Samples | Mapping[str, Samples] | None,
    *,
    index: int | None = None,
) -> ConvertedVariant:
    """Convert all of the source's chosen signatures into one .tflite for this variant.

    calibration: representative data for int8/int16x8 (ignored otherwise); one Samples is used
    for every signature it fits (same input names), a mapping gives samples per signature key.
    index: the variant's position in spec.variants, only to name the field in messages.
    """
    field = f"spec.variants[{index if index is not None else variant.name}]"
    if variant.quantization in NEEDS_REPRESENTATIVE_DATA:
        crash = calibration_crash(graph_op_types(source.export_dir), variant, field)
        if crash is not None:
            raise crash
    converter = new_converter(source, variant, calibration_plan(source, variant, calibration))
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # The calibrator still builds a tf.lite.Interpreter internally and warns that it is
            # deprecated; nothing we can act on.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            tflite = converter.convert()
    except Exception as e:
        raise conversion_error(e, variant, field, source.format, source.signatures) from e
    seconds = time.perf_counter() - start

    input_types, output_types = check_io_types(tflite, source.signatures, variant, field)
    return ConvertedVariant(
        tflite=bytes(tflite),
        input_types=input_types,
        output_types=output_types,
        ops=op_summary(tflite),
        seconds=seconds,
        settings=applied_settings(converter),
    )


def new_converter(source: SourceModel, variant: Variant, plan: Mapping[str, Samples]) -> Any:
    """A TFLiteConverter for the source's chosen signatures, configured for the variant."""
    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(source.export_dir), signature_keys=source.signature_keys
    )
    configure(converter, variant, plan, tf)
    return converter


def calibration_plan(
    source: SourceModel,
    variant: Variant,
    calibration: Samples | Mapping[str, Samples] | None,
) -> dict[str, Samples]:
    """Which samples calibrate which signature; empty when the quantization needs none."""
    if variant.quantization not in (Quantization.INT8, Quantization.INT16X8):
        return {}
    if calibration is None:
        raise SpecError(
            f"variant {variant.name!r}: {variant.quantization} quantization needs "
            f"representative data, and none was given; set representativeDataset on the "
            f"variant (omitting its uri gives synthetic data)"
        )
    if isinstance(calibration, Samples):
        plan = {s.key: calibration for s in source.signatures if _fits(calibration, s)}
    else:
        plan = dict(calibration)
    missing = [s.key for s in source.signatures if not plan.get(s.key)]
    if missing:
        raise SpecError(
            f"variant {variant.name!r}: no representative data for signature(s) "
            f"{', '.join(missing)} (the data's inputs do not match theirs); every converted "
            f"signature is quantized and needs calibration samples: omit "
            f"representativeDataset.uri for synthetic data, or convert those signatures in a "
            f"separate resource"
        )
    return plan


def _fits(samples: Samples, signature: SignatureInfo) -> bool:
    if samples.signature_key is not None and samples.signature_key == signature.key:
        return True
    names = {t.name for t in signature.inputs}
    return bool(samples.inputs) and set(samples.inputs[0]) == names


def representative_dataset(plan: Mapping[str, Samples]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(signature key, inputs) pairs: the form the calibrator needs for multi-signature models."""
    for key, samples in plan.items():
        for sample in samples.inputs:
            yield key, sample


def configure(converter: Any, variant: Variant, plan: Mapping[str, Samples], tf: Any) -> None:
    """Set the converter's options for the variant's quantization, I/O type and ops policy."""
    q = variant.quantization
    select_tf = variant.ops == OpsPolicy.SELECT_TF_OPS
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS
    if q == Quantization.INT8:
        builtins = tf.lite.OpsSet.TFLITE_BUILTINS_INT8
    elif q == Quantization.INT16X8:
        builtins = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
    ops = [builtins] + ([tf.lite.OpsSet.SELECT_TF_OPS] if select_tf else [])
    converter.target_spec.supported_ops = ops

    if q != Quantization.NONE:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if q == Quantization.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    if q in (Quantization.INT8, Quantization.INT16X8):
        converter.representative_dataset = lambda: representative_dataset(plan)
        io_dtype = {
            IOType.INT8: tf.int8,
            IOType.UINT8: tf.uint8,
            IOType.INT16: tf.int16,
        }.get(variant.io_type)
        if io_dtype is not None:
            converter.inference_input_type = io_dtype
            converter.inference_output_type = io_dtype


def check_io_types(
    tflite: bytes, signatures: list[SignatureInfo], variant: Variant, field: str
) -> tuple[list[str], list[str]]:
    """The converted model's real I/O types; raise if a float tensor is not of the requested
    ioType (the converter can ignore inference_input_type silently: TF issue 40477).

    Only tensors that are float in the source are checked: integer inputs (token ids) keep
    their type whatever ioType says.
    """
    by_key = {s.key: s for s in signatures}
    converted = signature_io(tflite)
    input_types: list[str] = []
    output_types: list[str] = []
    wrong: list[str] = []
    for sig in converted:
        source_sig = by_key.get(sig.key)
        if source_sig is None and len(converted) == 1 and len(signatures) == 1:
            source_sig = signatures[0]
        source_types = {}
        if source_sig is not None:
            source_types = {t.name: t.dtype for t in source_sig.inputs + source_sig.outputs}
        for kind, tensors, types in (
            ("input", sig.inputs, input_types),
            ("output", sig.outputs, output_types),
        ):
            for name, dtype in tensors:
                types.append(dtype)
                if source_types.get(name, "float32") in FLOAT_TYPES and dtype != variant.io_type:
                    wrong.append(f"{kind} {sig.key}/{name} is {dtype}")
    if wrong:
        raise ConversionFailedError(
            f"variant {variant.name!r}: requested ioType {variant.io_type}, but the converted "
            f"model has {'; '.join(wrong)} (the converter ignored the requested type, see "
            f"TensorFlow issue 40477); set {field}.ioType: float32 and quantize inputs on the "
            f"device, or make every op of the model quantizable to {variant.io_type}"
        )
    return input_types, output_types
