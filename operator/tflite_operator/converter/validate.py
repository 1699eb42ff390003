"""Compare a converted model's outputs with the source model's on the same inputs.

Errors are measured in the float domain: inputs of integer-typed (quantized) tensors are
quantized with the tensor's own scale and zero point, outputs dequantized, so an int8-io
variant is judged on the numbers a caller would get after dequantizing.

The metric helpers at the top are plain numpy and tested without TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tflite_operator.api.errors import ValidationFailedError
from tflite_operator.api.report import AccuracyReport, OutputError
from tflite_operator.converter.data import Samples
from tflite_operator.converter.ops import NotRunnableError, not_runnable_reason, op_summary
from tflite_operator.converter.source import SourceModel, first_line

__all__ = [
    "NotRunnableError",
    "accuracy_report",
    "compare",
    "cosine_similarity",
    "dequantize",
    "is_classifier_like",
    "open_runner",
    "output_error",
    "quantize",
    "run_tflite",
    "top1_agreement",
    "verdict",
]

QUANTIZED_KINDS = "iu"


# --- Pure helpers -----------------------------------------------------------------------------


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between the flattened arrays; 1.0 when both are all zeros."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx == 0.0 and ny == 0.0:
        return 1.0
    if nx == 0.0 or ny == 0.0:
        return 0.0
    return float(np.clip(np.dot(x, y) / (nx * ny), -1.0, 1.0))


def is_classifier_like(per_sample_shape: tuple[int, ...]) -> bool:
    """A classifier output is one row of C > 1 scores per sample: shape (1, C).

    Rank-2 with a batch of 1 is what Dense-softmax/logits heads produce; anything else
    (detection boxes, embeddings of rank 3+, a single sigmoid score) has no meaningful argmax.
    """
    return len(per_sample_shape) == 2 and per_sample_shape[0] == 1 and per_sample_shape[1] > 1


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Share of rows whose argmax is the same; arrays are (N, C)."""
    ref = np.asarray(reference).reshape(-1, np.shape(reference)[-1])
    cand = np.asarray(candidate).reshape(-1, np.shape(candidate)[-1])
    return float(np.mean(np.argmax(ref, axis=-1) == np.argmax(cand, axis=-1)))


def output_error(
    name: str, reference: np.ndarray, candidate: np.ndarray, classifier: bool
) -> OutputError:
    """Error metrics of one output over all samples (arrays stacked along axis 0)."""
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape:
        raise ValidationFailedError(
            f"output {name!r}: the converted model returns shape {cand.shape}, the source "
            f"{ref.shape}; the outputs cannot be compared"
        )
    diff = np.abs(ref - cand)
    return OutputError(
        name=name,
        max_abs_error=float(diff.max()) if diff.size else 0.0,
        mean_abs_error=float(diff.mean()) if diff.size else 0.0,
        cosine_similarity=cosine_similarity(ref, cand),
        top1_agreement=top1_agreement(ref, cand) if classifier else None,
    )


def verdict(max_abs_error: float, tolerance: float | None, top1: float | None) -> tuple[bool, str]:
    """(within_tolerance, a sentence for humans).

    A non-finite error (NaN/inf in an output) is never within tolerance, even without one.
    """
    top = f"; top-1 agreement {top1:.1%}" if top1 is not None else ""
    if not math.isfinite(max_abs_error):
        return False, f"max abs error is {max_abs_error}: an output is not finite{top}"
    if tolerance is None:
        return True, f"max abs error {max_abs_error:.3g} (no tolerance set){top}"
    if max_abs_error <= tolerance:
        return True, f"max abs error {max_abs_error:.3g} within tolerance {tolerance:.3g}{top}"
    return False, f"max abs error {max_abs_error:.3g} exceeds tolerance {tolerance:.3g}{top}"


def accuracy_report(
    outputs: list[OutputError], samples: int, tolerance: float | None
) -> AccuracyReport:
    """Overall figures: the worst output's max error, the worst classifier's top-1 agreement."""
    max_abs = max((o.max_abs_error for o in outputs), default=0.0)
    if any(math.isnan(o.max_abs_error) for o in outputs):
        max_abs = math.nan
    top1s = [o.top1_agreement for o in outputs if o.top1_agreement is not None]
    top1 = min(top1s) if top1s else None
    ok, text = verdict(max_abs, tolerance, top1)
    return AccuracyReport(
        samples=samples,
        outputs=outputs,
        max_abs_error=max_abs,
        top1_agreement=top1,
        tolerance=tolerance,
        within_tolerance=ok,
        verdict=text,
    )


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


# --- The LiteRT side --------------------------------------------------------------------------


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
    details = runner.get_output_details()
    result = {}
    for name, value in outputs.items():
        scale, zero_point = details[name]["quantization"]
        if np.asarray(value).dtype.kind in QUANTIZED_KINDS and scale != 0.0:
            result[name] = dequantize(value, scale, zero_point)
        else:
            result[name] = np.asarray(value)
    return result


def match_outputs(source_names: list[str], converted_names: list[str]) -> dict[str, str]:
    """source output name -> converted output name: by name, else by sorted position."""
    if set(source_names) == set(converted_names):
        return {n: n for n in source_names}
    if len(source_names) == len(converted_names):
        return dict(zip(sorted(source_names), sorted(converted_names), strict=True))
    raise ValidationFailedError(
        f"the converted model's outputs {sorted(converted_names)} do not correspond to the "
        f"source's {sorted(source_names)}"
    )


def run_tflite(
    tflite: bytes,
    signature_key: str,
    inputs: Sequence[Mapping[str, np.ndarray]],
    threads: int = 2,
) -> list[dict[str, np.ndarray]]:
    """Run the converted model on each float-domain sample; outputs dequantized to floats."""
    _, runner = open_runner(tflite, signature_key, threads)
    return [float_outputs(runner, runner(**feed(runner, sample))) for sample in inputs]


def compare(
    source: SourceModel,
    signature_key: str,
    tflite: bytes,
    samples: Samples,
    tolerance: float | None,
    threads: int = 2,
) -> AccuracyReport:
    """Run the source (TensorFlow) and the converted model (LiteRT) on every sample.

    Raises NotRunnableError when this runtime cannot run the model (Select TF ops).
    """
    if not samples.inputs:
        raise ValidationFailedError("no samples to compare on")
    _, runner = open_runner(tflite, signature_key, threads)
    sig = source.signature(signature_key)
    names = match_outputs([t.name for t in sig.outputs], list(runner.get_output_details()))
    reference: dict[str, list[np.ndarray]] = {n: [] for n in names}
    converted: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for sample in samples.inputs:
        expected = source.run(signature_key, sample)
        try:
            actual = float_outputs(runner, runner(**feed(runner, sample)))
        except (RuntimeError, ValueError) as e:
            raise ValidationFailedError(
                f"the converted model failed on a validation sample: {first_line(e)}; check "
                f"that the validation data matches the model's inputs"
            ) from e
        for src_name, tfl_name in names.items():
            reference[src_name].append(np.asarray(expected[src_name]))
            converted[src_name].append(np.asarray(actual[tfl_name]))

    errors = []
    for name in names:
        classifier = is_classifier_like(np.shape(reference[name][0]))
        errors.append(
            output_error(
                name,
                _stack(reference[name]),
                _stack(converted[name]),
                classifier=classifier,
            )
        )
    return accuracy_report(errors, len(samples.inputs), tolerance)


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Samples along axis 0 (scalar outputs become a vector)."""
    if arrays[0].ndim == 0:
        return np.stack(arrays)
    return np.concatenate(arrays, axis=0)
