"""Compare a converted model's outputs with the source model's on the same inputs.

Errors are measured in the float domain (litert_runner quantizes inputs and dequantizes
outputs), so an int8-io variant is judged on the numbers a caller would get after
dequantizing. The metrics themselves are pure numpy, in metrics.py; this module runs both
models (source.py for TensorFlow, litert_runner.py for LiteRT) and turns the metrics into the
report's figures and verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from tflite_operator.api.errors import SpecError, ValidationFailedError
from tflite_operator.api.report_metrics import AccuracyReport, OutputError
from tflite_operator.converter.data import Samples
from tflite_operator.converter.litert_runner import (
    NotRunnableError,
    feed,
    float_outputs,
    open_runner,
)
from tflite_operator.converter.metrics import (
    correct_count,
    cosine_similarity,
    is_classifier_like,
    is_probability,
    kl_divergence,
    snr_db,
    top1_agreement,
    top5_agreement,
)
from tflite_operator.converter.source import SourceModel, first_line

__all__ = [
    "NotRunnableError",
    "Reference",
    "accuracy_report",
    "compare",
    "match_outputs",
    "output_error",
    "run_source",
    "verdict",
]


def output_error(
    name: str, reference: np.ndarray, candidate: np.ndarray, classifier: bool
) -> OutputError:
    """Error metrics of one output over all samples (arrays stacked along axis 0).

    Classifier outputs (one row of C > 1 scores per sample) also get top-1 agreement, top-5
    agreement when C > 5, and KL divergence when the source's rows are probabilities.
    """
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
        snr_db=snr_db(ref, cand),
        kl_divergence=kl_divergence(ref, cand) if classifier and is_probability(ref) else None,
        top5_agreement=top5_agreement(ref, cand) if classifier else None,
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


def _worst(values: Iterable[float | None], pick: Callable[[list[float]], float]) -> float | None:
    """min or max of the measured values; NaN if any is NaN (a non-finite output is the worst)."""
    measured = [v for v in values if v is not None]
    if not measured:
        return None
    if any(math.isnan(v) for v in measured):
        return math.nan
    return pick(measured)


def accuracy_report(
    outputs: list[OutputError], samples: int, tolerance: float | None
) -> AccuracyReport:
    """Overall figures: each metric's worst value over the outputs that have it."""
    max_abs = _worst((o.max_abs_error for o in outputs), max)
    top1 = _worst((o.top1_agreement for o in outputs), min)
    ok, text = verdict(0.0 if max_abs is None else max_abs, tolerance, top1)
    return AccuracyReport(
        samples=samples,
        outputs=outputs,
        max_abs_error=0.0 if max_abs is None else max_abs,
        top1_agreement=top1,
        min_snr_db=_worst((o.snr_db for o in outputs), min),
        max_kl_divergence=_worst((o.kl_divergence for o in outputs), max),
        top5_agreement=_worst((o.top5_agreement for o in outputs), min),
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


@dataclass
class Reference:
    """The source model's outputs on the validation samples: run once, compared with each variant.

    label_output names the classifier output the samples' labels score (None when unlabelled);
    task_accuracy is the source's top-1 accuracy on those labels.
    """

    outputs: dict[str, np.ndarray]
    per_sample_shapes: dict[str, tuple[int, ...]]
    labels: np.ndarray | None = None
    label_output: str | None = None
    task_accuracy: float | None = None
    correct: int | None = None  # labelled samples the source gets right


def run_source(
    source: SourceModel,
    signature_key: str,
    samples: Samples,
    *,
    require_labels: bool = False,
    use_labels: bool = True,
    field: str = "spec.validation.datasetUri",
) -> Reference:
    """Run the source model (TensorFlow) on every sample; with labels, its task accuracy.

    require_labels (target.maxAccuracyDrop is set): a dataset without labels is a SpecError.
    use_labels=False ignores labels (a signature other than the one they score).
    """
    if not samples.inputs:
        raise ValidationFailedError("no samples to compare on")
    names = [t.name for t in source.signature(signature_key).outputs]
    stacked: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for sample in samples.inputs:
        expected = source.run(signature_key, sample)
        for name in names:
            stacked[name].append(np.asarray(expected[name]))
    reference = Reference(
        outputs={n: _stack(v) for n, v in stacked.items()},
        per_sample_shapes={n: np.shape(v[0]) for n, v in stacked.items()},
    )
    if samples.labels is None or not use_labels:
        if require_labels and use_labels:
            where = samples.report.uri or "the validation data (synthetic)"
            raise SpecError(
                f"target.maxAccuracyDrop needs labelled samples, but {where} has no labels "
                f"array; add labels (one integer class id per sample) to the .npz file at "
                f"{field}, or remove target.maxAccuracyDrop"
            )
        return reference
    reference.labels = samples.labels
    reference.label_output = _label_output(reference, samples, signature_key)
    scores = reference.outputs[reference.label_output]
    reference.correct = correct_count(scores, samples.labels)
    reference.task_accuracy = reference.correct / len(samples.labels)
    return reference


def _label_output(reference: Reference, samples: Samples, signature_key: str) -> str:
    """The one classifier output the labels are class ids of."""
    uri = samples.report.uri
    classifiers = [n for n, s in reference.per_sample_shapes.items() if is_classifier_like(s)]
    if len(classifiers) != 1:
        shapes = ", ".join(f"{n} {s}" for n, s in reference.per_sample_shapes.items())
        which = "none of" if not classifiers else f"{len(classifiers)} of"
        raise SpecError(
            f"dataset {uri} has labels, which need exactly one classifier output (one row of "
            f"C > 1 class scores per sample), but {which} the outputs of signature "
            f"{signature_key!r} are ({shapes}); remove the labels array from the file, or "
            f"validate a signature with one classifier output"
        )
    [name] = classifiers
    classes = reference.per_sample_shapes[name][-1]
    top = int(samples.labels.max()) if samples.labels is not None else 0
    if top >= classes:
        raise SpecError(
            f"dataset {uri}: labels has class id {top}, but output {name!r} scores {classes} "
            f"classes (ids 0..{classes - 1}); check that the labels belong to this model"
        )
    return name


def compare(
    source: SourceModel,
    signature_key: str,
    tflite: bytes,
    samples: Samples,
    tolerance: float | None,
    threads: int = 2,
    reference: Reference | None = None,
) -> AccuracyReport:
    """Run the converted model (LiteRT) on every sample and compare it with the source's outputs.

    reference: the source's outputs on these samples (run_source), computed here when None.
    With labelled samples the report has the variant's task accuracy and its drop in points.
    Raises NotRunnableError when this runtime cannot run the model (Select TF ops).
    """
    if not samples.inputs:
        raise ValidationFailedError("no samples to compare on")
    _, runner = open_runner(tflite, signature_key, threads)
    if reference is None:
        reference = run_source(source, signature_key, samples)
    names = match_outputs(list(reference.outputs), list(runner.get_output_details()))
    converted: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for sample in samples.inputs:
        try:
            actual = float_outputs(runner, runner(**feed(runner, sample)))
        except (RuntimeError, ValueError) as e:
            raise ValidationFailedError(
                f"the converted model failed on a validation sample: {first_line(e)}; check "
                f"that the validation data matches the model's inputs"
            ) from e
        for src_name, tfl_name in names.items():
            converted[src_name].append(np.asarray(actual[tfl_name]))

    errors = [
        output_error(
            name,
            reference.outputs[name],
            _stack(converted[name]),
            classifier=is_classifier_like(reference.per_sample_shapes[name]),
        )
        for name in names
    ]
    report = accuracy_report(errors, len(samples.inputs), tolerance)
    if reference.label_output is not None and reference.labels is not None:
        scores = _stack(converted[reference.label_output])
        correct = correct_count(scores, reference.labels)
        report.task_accuracy = correct / len(reference.labels)
        # From counts, not from two rounded shares: 1 sample in 100 is exactly 1.0 point.
        report.accuracy_drop_points = 100.0 * (reference.correct - correct) / len(reference.labels)
        report.verdict += (
            f"; task accuracy {report.task_accuracy:.1%} (source {reference.task_accuracy:.1%})"
        )
    return report


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Samples along axis 0 (scalar outputs become a vector)."""
    if arrays[0].ndim == 0:
        return np.stack(arrays)
    return np.concatenate(arrays, axis=0)
