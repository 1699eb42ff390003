"""spec.source.inputShapes: fix the unknown dims of a model's inputs before anything converts.

Pure functions on SignatureInfo, no TensorFlow. The shells that trace the model again with the
fixed shapes are in static_export.py (a SavedModel) and source.py (a .keras file).

A batch dim of None is not "unknown" here: the converter makes it 1 and the runtime can resize
it (shape_signature -1), as it always has. Any other None dim (height, width, sequence length)
has no size the converter, the synthetic data or the benchmark could pick for the user, so a run
refuses it before converting and names the field that fixes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tflite_operator.api.errors import SpecError
from tflite_operator.api.report_metrics import SignatureInfo, TensorInfo

FIELD = "spec.source.inputShapes"

Shapes = Mapping[str, Sequence[int]]


def _dims(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def field_example(tensor: TensorInfo) -> str:
    """The field as the user would write it, with placeholders where a size must be chosen."""
    dims = [
        "1" if i == 0 and d is None else (f"<d{i}>" if d is None else str(d))
        for i, d in enumerate(tensor.shape)
    ]
    return f"{{{tensor.name}: [{', '.join(dims)}]}}"


def unknown_dims(tensor: TensorInfo) -> list[int]:
    """Axes of unknown size, the batch (axis 0) excepted."""
    return [i for i, d in enumerate(tensor.shape) if d is None and i > 0]


def fix_shape(tensor: TensorInfo, dims: Sequence[int], signature_key: str) -> TensorInfo:
    """The tensor with `dims` as its shape; refuses a rank or a known size that differs."""
    if len(dims) != len(tensor.shape):
        raise SpecError(
            f"{FIELD}.{tensor.name} has {len(dims)} dims {list(dims)}, but input "
            f"{tensor.name!r} of signature {signature_key!r} has rank {len(tensor.shape)}: "
            f"{_dims(tensor.shape)}; give one size per axis, batch included, e.g. "
            f"{field_example(tensor)}"
        )
    clashes = [
        f"axis {i} is {known}, not {given}"
        for i, (known, given) in enumerate(zip(tensor.shape, dims, strict=True))
        if known is not None and known != given
    ]
    if clashes:
        raise SpecError(
            f"{FIELD}.{tensor.name} {list(dims)} contradicts input {tensor.name!r} of "
            f"signature {signature_key!r}, shape {_dims(tensor.shape)}: {'; '.join(clashes)}; "
            f"only unknown (None) dims can be set, e.g. {field_example(tensor)}"
        )
    return tensor.model_copy(update={"shape": [int(d) for d in dims]})


def apply_input_shapes(
    signatures: Sequence[SignatureInfo], shapes: Shapes | None
) -> list[SignatureInfo]:
    """The signatures with spec.source.inputShapes applied to every input of that name.

    A name that is no input of any selected signature is an error (a typo would otherwise
    leave the dims unknown and fail later with a less useful message).
    """
    shapes = shapes or {}
    names = {t.name for s in signatures for t in s.inputs}
    unknown = sorted(set(shapes) - names)
    if unknown:
        listing = "; ".join(
            f"{s.key}: {', '.join(t.name for t in s.inputs) or 'none'}" for s in signatures
        )
        raise SpecError(
            f"{FIELD} names {', '.join(repr(n) for n in unknown)}, which is not an input of "
            f"the selected signatures ({listing}); use the input names that "
            f"`tflite-operator inspect` lists"
        )
    return [
        sig.model_copy(
            update={
                "inputs": [
                    fix_shape(t, shapes[t.name], sig.key) if t.name in shapes else t
                    for t in sig.inputs
                ]
            }
        )
        for sig in signatures
    ]


def require_static(signatures: Sequence[SignatureInfo]) -> None:
    """Refuse inputs with an unknown dim other than the batch, naming spec.source.inputShapes."""
    problems = [(sig, t) for sig in signatures for t in sig.inputs if unknown_dims(t)]
    if not problems:
        return
    described = "; ".join(
        f"input {t.name!r} of signature {sig.key!r} has unknown dims {_dims(t.shape)}"
        for sig, t in problems
    )
    example = ", ".join(field_example(t).strip("{}") for _, t in problems)
    raise SpecError(
        f"{described}: TFLite needs a fixed size for every axis but the batch, and the "
        f"calibration data, validation and benchmark need one too; set {FIELD}: {{{example}}} "
        f"with the sizes the device will feed (the converted model then takes exactly that "
        f"shape)"
    )


def changed(before: Sequence[SignatureInfo], after: Sequence[SignatureInfo]) -> bool:
    return [s.inputs for s in before] != [s.inputs for s in after]
