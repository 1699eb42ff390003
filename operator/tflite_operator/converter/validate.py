"""Compare a converted model's outputs with the source model's on the same inputs.

Errors are measured in the float domain (litert_runner quantizes inputs and dequantizes
outputs), so an int8-io variant is judged on the numbers a caller would get after
dequantizing. The metrics themselves are pure numpy, in metrics.py; this module runs both
models (source.py for TensorFlow, litert_runner.py for LiteRT) and turns the metrics into the
report's figures and verdicts.
"""

from __future__ import annotations

import math

import numpy as np

from tflite_operator.api.errors import ValidationFailedError
from tflite_operator.api.report import AccuracyReport, OutputError
from tflite_operator.converter.data import Samples
from tflite_operator.converter.litert_runner import (
    NotRunnableError,
    feed,
    float_outputs,
    open_runner,
)
from tflite_operator.converter.metrics import cosine_similarity, is_classifier_like, top1_agreement
from tflite_operator.converter.source import SourceModel, first_line

__all__ = [
    "NotRunnableError",
    "accuracy_report",
    "compare",
    "match_outputs",
    "output_error",
    "verdict",
]


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
