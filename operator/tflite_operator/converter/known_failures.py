"""The converter's known failures, each told as: what the model has, the spec field or model
change that fixes it, and what that fix means at run time on the device.

`conversion_error` turns the raw converter exception (pages of MLIR) into one such message.
The fixes named here were measured with TF 2.21 and ai-edge-litert 2.3 (tests/converter/
test_known_failures.py builds each failing model and checks the fix it names).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tflite_operator.api.errors import ConversionFailedError
from tflite_operator.api.report_metrics import SignatureInfo
from tflite_operator.api.spec_variant import OpsPolicy, Quantization, Variant
from tflite_operator.converter.converter_errors import (
    meaningful_line,
    unconvertible_element_type,
    unsupported_ops,
    unusual_types,
)
from tflite_operator.converter.input_shapes import FIELD as INPUT_SHAPES
from tflite_operator.converter.input_shapes import field_example
from tflite_operator.converter.ops import FLEX_ISSUE
from tflite_operator.converter.source import KERAS_FORMAT

TFLITE_OPS_URL = "https://ai.google.dev/edge/litert/models/ops_compatibility"

# What Select TF ops cost on the device, said wherever a fix involves them.
FLEX_AT_RUN_TIME = (
    "the device then needs a LiteRT runtime linked with the Flex delegate, an app binary larger "
    "by the TensorFlow kernels it carries; the pip LiteRT runtimes cannot run such a model "
    f"({FLEX_ISSUE}), so it is converted but neither validated nor benchmarked here"
)

# Op types of a Keras recurrent layer's loop in the TensorFlow graph (read from saved_model.pb).
RECURRENT_LOOP_OPS = frozenset({"TensorListFromTensor", "TensorListReserve", "TensorListStack"})
_TENSOR_LIST = ("TensorListReserve", "element_shape to be static", "tensor list ops")
_TWO_GB = re.compile(
    r"exceeds maximum protobuf size of 2GB|cannot grow buffer beyond 2 gigabytes|"
    r"bigger than 2 ?gb",
    re.IGNORECASE,
)


def calibration_crash(
    op_types: set[str], variant: Variant, field: str
) -> ConversionFailedError | None:
    """Refuse int8/int16x8 for a model whose recurrent layer loops over a TensorList.

    TF 2.21's calibrator kills the process (segmentation fault in calibrator._feed_tensors)
    on such a model once its loop converts to builtins (a Keras 3 LSTM traced with a fixed
    batch; a plain tf.while_loop calibrates fine): refusing first keeps the other variants
    and the report. The same layer with unroll=True has no loop and calibrates.
    """
    if variant.quantization not in (Quantization.INT8, Quantization.INT16X8):
        return None
    loop_ops = sorted(op_types & RECURRENT_LOOP_OPS)
    if not loop_ops:
        return None
    return ConversionFailedError(
        f"variant {variant.name!r} ({variant.quantization}): the model has a recurrent layer "
        f"(LSTM, GRU, RNN) that loops over a TensorList ({', '.join(loop_ops)}), and "
        f"calibrating such a loop crashes TensorFlow's calibrator (measured with TF 2.21), so "
        f"this variant is not attempted; build the layer with unroll=True (a fixed sequence "
        f"length; it then has no loop and quantizes), or set {field}.quantization to "
        f"dynamic-range or float16 for this model: both convert the loop and run on every "
        f"LiteRT runtime"
    )


def conversion_error(
    error: BaseException,
    variant: Variant,
    field: str,
    source_format: str | None = None,
    signatures: Sequence[SignatureInfo] = (),
) -> ConversionFailedError:
    """A ConversionFailedError naming the cause, the field or model change, and the run-time cost.

    field: the variant's spec path (spec.variants[i]); source_format and signatures (the
    source's, after spec.source.inputShapes) tailor the fix to the model at hand.
    """
    text = str(error)
    prefix = f"variant {variant.name!r} ({variant.quantization}): "
    if "Flex delegate" in text and variant.quantization in (
        Quantization.INT8,
        Quantization.INT16X8,
    ):
        flex = re.findall(r"\(Flex(\w+)\) failed to prepare", text)
        ops_text = f" ({', '.join(sorted(set(flex)))})" if flex else ""
        return ConversionFailedError(
            f"{prefix}calibration runs the model, and the model keeps Select TF ops{ops_text} "
            f"that the pip LiteRT runtime cannot run ({FLEX_ISSUE}); quantize this model with "
            f"dynamic-range or float16 instead, or replace those ops in the model so "
            f"{field}.ops can stay builtins"
        )
    if _TWO_GB.search(text):
        return ConversionFailedError(prefix + two_gb_message(text, field))
    if any(marker in text for marker in _TENSOR_LIST):
        return ConversionFailedError(
            prefix + tensor_list_message(variant, field, source_format, signatures)
        )
    element_type = unconvertible_element_type(error)
    if element_type:
        return ConversionFailedError(
            f"{prefix}the model has tensors of type {element_type}, which TFLite has no type "
            f"for; cast them in the model to a type TFLite has (float32, int8, int32, bool...) "
            f"and export it again: no converter setting can change a tensor's type"
        )
    return ConversionFailedError(prefix + "; ".join(_ops_parts(error, variant, field)))


def _ops_parts(error: BaseException, variant: Variant, field: str) -> list[str]:
    ops = unsupported_ops(error)
    by_type = unusual_types(error)
    typed = {op for type_ops in by_type.values() for op in type_ops}
    parts = [dtype_message(dtype, type_ops, variant, field) for dtype, type_ops in by_type.items()]
    flex = [op for op in ops.flex if op not in typed]
    if flex:
        if variant.ops == OpsPolicy.SELECT_TF_OPS:
            parts.append(
                f"the ops {', '.join(flex)} could not be converted even with Select TF ops allowed"
            )
        else:
            parts.append(
                f"the model uses TensorFlow ops with no TFLite builtin: {', '.join(flex)}; set "
                f"{field}.ops: select-tf-ops to keep them as Select TF (Flex) ops, or "
                f"replace them in the model; with select-tf-ops {FLEX_AT_RUN_TIME}"
            )
    if ops.custom:
        parts.append(
            f"the model uses TensorFlow ops that have neither a TFLite builtin nor a Select TF "
            f"kernel: {', '.join(ops.custom)}; select-tf-ops cannot convert them either, so "
            f"replace them in the model with ops TFLite has (see {TFLITE_OPS_URL}); keeping "
            f"them as custom ops would need a kernel of your own for each, registered in the "
            f"app's interpreter on every device, which no stock LiteRT runtime has"
        )
    if not parts:
        parts.append(f"the converter failed: {meaningful_line(error)}")
    return parts


def tensor_list_message(
    variant: Variant,
    field: str,
    source_format: str | None,
    signatures: Sequence[SignatureInfo],
) -> str:
    """A recurrent layer whose loop state (a TensorList) has a dynamic element shape.

    Measured on a Keras 3 LSTM (64 units, 10 steps x 4 features), TF 2.21, by
    benchmarks/recurrent_fixes.py: builtins fail, also with spec.source.inputShapes on a
    SavedModel (the loop was traced with the dynamic batch); the .keras file traced with a fixed
    batch converts to builtins (a WHILE loop; fp32 80 kB) and runs, int8 excepted
    (calibration_crash); unroll=True converts every variant (fp32 102 kB) and runs;
    select-tf-ops converts (82 kB) but does not run on the pip runtime.
    """
    inputs = [t for s in signatures[:1] for t in s.inputs]
    example = ", ".join(field_example(t).strip("{}") for t in inputs) or "seq: [1, 10, 4]"
    if source_format == KERAS_FORMAT:
        batch_fix = (
            f"set {INPUT_SHAPES} with a fixed batch, e.g. {{{example}}}: the model is traced "
            f"with it and the loop converts to builtin ops (a WHILE loop) that every LiteRT "
            f"runtime runs, for exactly that batch and sequence length"
        )
    else:
        batch_fix = (
            f"export the SavedModel with a fixed batch (keras.Input(shape, batch_size=1), or "
            f"tf.TensorSpec([1, ...]) in the serving signature), or convert the .keras file "
            f"with {INPUT_SHAPES} {{{example}}}; {INPUT_SHAPES} alone cannot fix a SavedModel, "
            f"whose loop was traced with a dynamic batch. The loop then converts to builtin "
            f"ops (a WHILE loop) that every LiteRT runtime runs"
        )
    flex_fix = (
        f"or set {field}.ops: select-tf-ops, and {FLEX_AT_RUN_TIME}"
        if variant.ops != OpsPolicy.SELECT_TF_OPS
        else "select-tf-ops is already set and did not help"
    )
    return (
        f"the model has a recurrent layer (LSTM, GRU, RNN) whose loop keeps its steps in a "
        f"TensorList of dynamic shape, which TFLite builtins cannot hold; {batch_fix}; or build "
        f"the layer with unroll=True (needs a fixed sequence length; no loop, a model that grows "
        f"with the length, the only fix that also quantizes to int8); {flex_fix}"
    )


def dtype_message(dtype: str, ops: list[str], variant: Variant, field: str) -> str:
    """Ops that fail only because of the type they compute on (float64, string, complex)."""
    flex = (
        f"or set {field}.ops: select-tf-ops to run them as TensorFlow kernels, and "
        f"{FLEX_AT_RUN_TIME}"
        if variant.ops != OpsPolicy.SELECT_TF_OPS
        else "select-tf-ops did not help either"
    )
    names = ", ".join(ops)
    if dtype == "float64":
        return (
            f"the model computes in float64 ({names}), and TFLite builtins compute in float32 "
            f"(or int8/int16 when quantized): build or cast the model in float32 (Keras: the "
            f"default float32 dtype policy; tf.cast at the inputs) and export it again; {flex}"
        )
    if dtype == "string":
        return (
            f"the model processes strings ({names}), and TFLite builtins have almost no string "
            f"ops: move the text processing (tokenizer, vocabulary lookup) out of the model so it "
            f"takes token ids (int32) the app computes; {flex}"
        )
    return (
        f"the model computes on complex numbers ({names}), which TFLite builtins support for a "
        f"few ops only (COMPLEX_ABS, REAL, IMAG, RFFT2D): keep real and imaginary parts as two "
        f"float32 tensors in the model; {flex}"
    )


def two_gb_message(text: str, field: str) -> str:
    """The 2 GB limit of protobuf (the TensorFlow graph) or FlatBuffers (the .tflite).

    Texts from TF 2.21: "Message tensorflow.GraphDef exceeds maximum protobuf size of 2GB",
    Python flatbuffers' "cannot grow buffer beyond 2 gigabytes" (lite.py rebuilding a model),
    flatbuffer_export.cc's "Model structure size is bigger than 2gb". Weights alone over 2 GB
    do not fail there: the exporter writes them after the FlatBuffer (buffer offsets).
    """
    if "protobuf" in text:
        where = (
            "the TensorFlow graph is over the 2 GB limit of a protobuf (its weights are stored "
            "as constants in the graph): keep weights in variables (Keras layers do), or split "
            "the model into parts converted separately"
        )
    else:
        where = (
            "the model is over the 2 GB limit of a FlatBuffer (the .tflite format): set "
            f"{field}.quantization: dynamic-range (int8 weights, about 4x smaller) or float16 "
            "(2x smaller), or split the model into parts converted separately (e.g. encoder and "
            "decoder)"
        )
    return (
        f"{where}. At run time a model that size must be loaded or memory-mapped whole on the "
        f"device: few phones have the RAM to spare, and runtimes that read the model from one "
        f"buffer (Android assets, TFLite Micro) cannot take 2 GB at all"
    )
