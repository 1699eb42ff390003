"""The LiteRT side of validation and benchmarks: open a converted model, feed it, read it.

A thin shell over `ai_edge_litert.interpreter`. Callers work in the float domain: inputs of
integer-typed (quantized) tensors are quantized with the tensor's own scale and zero point,
outputs dequantized, so an int8-io variant gives the numbers a caller would get after
dequantizing. Imports nothing heavier than numpy and ai_edge_litert (the benchmark's child
process loads this module and must stay free of TensorFlow).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tflite_operator.api.errors import ValidationFailedError
from tflite_operator.converter.ops import NotRunnableError, not_runnable_reason, op_summary
from tflite_operator.converter.source import first_line

__all__ = [
    "NotRunnableError",
    "dequantize",
    "feed",
    "float_outputs",
    "open_runner",
    "quantize",
    "run_tflite",
]

QUANTIZED_KINDS = "iu"


def quantize(value: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    """Float -> integer tensor type; scale 0 means the tensor is not quantized (plain cast)."""
    dtype = np.dtype(dtype)
    if scale == 0.0:
        return np.asarray(value).astype(dtype)
    info = np.iinfo(dtype)
    q = np.round(np.asarray(value, dtype=np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(value: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    if scale == 0.0:
        return np.asarray(value)
    return (np.asarray(value, dtype=np.float64) - zero_point) * scale


def open_runner(
    tflite: bytes | None,
    signature_key: str,
    threads: int,
    *,
    model_path: Path | None = None,
) -> tuple[Any, Any]:
    """(interpreter, signature runner) ready to run, or NotRunnableError saying why not.

    The model comes from bytes, or from model_path (memory-mapped by the runtime, as on a
    device; the caller has checked its ops). Models converted by other tools can name their
    only signature differently ("serve", "main"); with a single signature that one is used.
    """
    from ai_edge_litert.interpreter import Interpreter

    if tflite is not None:
        reason = not_runnable_reason(op_summary(tflite))
        if reason:
            raise NotRunnableError(reason)
    source = {"model_content": tflite} if tflite is not None else {"model_path": str(model_path)}
    try:
        interpreter = Interpreter(**source, num_threads=threads)
        # Allocate before taking the runner: allocating later fails while the runner holds
        # views of the tensors ("at least 1 reference to internal data").
        interpreter.allocate_tensors()
        keys = list(interpreter.get_signature_list())
        if signature_key in keys:
            key = signature_key
        elif len(keys) == 1:
            key = keys[0]
        else:
            raise ValidationFailedError(
                f"the converted model has no signature {signature_key!r} (it has "
                f"{', '.join(keys) or 'none'})"
            )
        runner = interpreter.get_signature_runner(key)
    except (RuntimeError, ValueError) as e:
        raise NotRunnableError(
            f"the LiteRT runtime could not prepare the model: {first_line(e)}"
        ) from e
    return interpreter, runner


def feed(runner: Any, sample: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A float-domain sample in the converted model's input types."""
    details = runner.get_input_details()
    missing = set(details) - set(sample)
    if missing:
        raise ValidationFailedError(
            f"the converted model needs inputs {sorted(details)}, the samples have {sorted(sample)}"
        )
    fed = {}
    for name, d in details.items():
        value = np.asarray(sample[name])
        dtype = np.dtype(d["dtype"])
        if dtype.kind in QUANTIZED_KINDS and value.dtype.kind == "f":
            scale, zero_point = d["quantization"]
            value = quantize(value, dtype, scale, zero_point)
        fed[name] = value.astype(dtype, copy=False)
    return fed


def float_outputs(runner: Any, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The runner's outputs with integer-typed (quantized) tensors dequantized to floats."""
    details = runner.get_output_details()
    result = {}
    for name, value in outputs.items():
        scale, zero_point = details[name]["quantization"]
        if np.asarray(value).dtype.kind in QUANTIZED_KINDS and scale != 0.0:
            result[name] = dequantize(value, scale, zero_point)
        else:
            result[name] = np.asarray(value)
    return result


def run_tflite(
    tflite: bytes,
    signature_key: str,
    inputs: Sequence[Mapping[str, np.ndarray]],
    threads: int = 2,
) -> list[dict[str, np.ndarray]]:
    """Run the converted model on each float-domain sample; outputs dequantized to floats."""
    _, runner = open_runner(tflite, signature_key, threads)
    return [float_outputs(runner, runner(**feed(runner, sample))) for sample in inputs]
