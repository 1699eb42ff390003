"""One unit of a conversion worker's work: a Task (a variant, its calibration data and what to
validate it on) and its Result, and execute(), which turns one into the other. Used alike in a
worker process and, with one worker, in this process (workers.py runs the pool).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tflite_operator.api.errors import ConversionError
from tflite_operator.api.report_metrics import AccuracyReport
from tflite_operator.api.spec_variant import Variant
from tflite_operator.converter.convert import ConvertedVariant, convert_variant
from tflite_operator.converter.data import Samples
from tflite_operator.converter.ops import NotRunnableError
from tflite_operator.converter.source import SourceModel


@dataclass(frozen=True)
class Check:
    """Validate right after converting: samples per signature key, compared like the parent."""

    samples: Mapping[str, Samples]
    tolerance: float | None
    threads: int


@dataclass
class Task:
    index: int
    variant: Variant
    calibration: Mapping[str, Samples] | None
    check: Check | None = None


@dataclass
class Result:
    index: int
    converted: ConvertedVariant | None = None
    error: ConversionError | None = None
    # signature key -> its accuracy, or the exception validating it raised (re-raised in the
    # parent where it would have been raised without workers).
    checks: dict[str, AccuracyReport | Exception] = field(default_factory=dict)
    peak_rss_bytes: int | None = None  # the worker's peak so far (None in-process)

    def checked(self, key: str) -> AccuracyReport | None:
        """The accuracy the worker measured for signature `key` (None: not validated there),
        raising what validating it raised there."""
        checked = self.checks.get(key)
        if isinstance(checked, Exception):
            raise checked
        return checked


def execute(model: SourceModel, task: Task) -> Result:
    """Convert one variant (and validate it if asked); ConversionErrors become the result."""
    from tflite_operator.converter import validate

    result = Result(index=task.index)
    try:
        result.converted = convert_variant(model, task.variant, task.calibration, index=task.index)
    except ConversionError as err:
        result.error = err
        return result
    if task.check is not None:
        for key, samples in task.check.samples.items():
            try:
                result.checks[key] = validate.compare(
                    model,
                    key,
                    result.converted.tflite,
                    samples,
                    task.check.tolerance,
                    threads=task.check.threads,
                )
            except (ConversionError, NotRunnableError) as err:
                result.checks[key] = err
    return result
