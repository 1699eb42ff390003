"""The converter pipeline: fetch, inspect, convert, validate, benchmark, select, publish.

This is what a converter Job runs, and what `tflite-operator convert` runs on a workstation.
The stages are functions over a RunState (run_state.py), in stages.py and, for validate and
benchmark over every selected signature, signature_checks.py; reuse.py fingerprints the
variants before the fetch and lets the convert stage copy unchanged ones from the previous
outputs. This module only orders them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tflite_operator.api.errors import ConversionError, ConversionFailedError
from tflite_operator.api.report import Report, VariantStatus
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.converter import accuracy_control_stage, reuse, signature_checks, stages
from tflite_operator.converter.progress import Progress
from tflite_operator.converter.run_state import RunState, produced
from tflite_operator.converter.stages import REPORT_HTML, REPORT_JSON, output_names
from tflite_operator.storage.ownership import Owner

__all__ = ["REPORT_HTML", "REPORT_JSON", "STAGES", "Outcome", "output_names", "run"]

# In order; each reads what the ones before it set on the RunState.
STAGES: tuple[Callable[[RunState], None], ...] = (
    reuse.look_back,
    stages.fetch,
    stages.inspect,
    stages.convert_all,
    signature_checks.validate_all,
    accuracy_control_stage.control_all,
    signature_checks.benchmark_all,
    stages.evaluate,
    stages.assemble_report,
    stages.publish,
)


@dataclass
class Outcome:
    """What a run produced; `error` is set when the run must end with a failure exit code."""

    report: Report
    tflite: dict[str, bytes] = field(default_factory=dict)
    error: ConversionError | None = None
    # True when an earlier attempt of the same resource generation had published everything.
    reused: bool = False


def run(
    name: str,
    spec: ConversionSpec,
    workdir: Path,
    progress: Progress | None = None,
    owner: Owner | None = None,
    worker_count: int | None = None,
) -> Outcome:
    """Run the whole pipeline; raises ConversionError for failures that leave nothing to report.

    owner: the resource a converter Job runs for (None for the CLI). Its outputs are tagged
    with it, and a retry of the same generation that finds a complete set of its own returns
    that set's report instead of converting again.
    worker_count: conversion processes (--workers); None: $TFLITE_CONVERT_WORKERS, else
    as many as the cores and the memory allow (workers.py).
    """
    state = RunState.start(name, spec, workdir, progress, owner, worker_count)
    earlier = stages.earlier_report(state)
    if earlier is not None:
        return _reused(earlier)
    for stage in STAGES:
        stage(state)
    return Outcome(
        report=produced(state.report, "assemble_report"),
        tflite=state.tflite,
        error=state.first_error,
    )


def _reused(report: Report) -> Outcome:
    failed = [v for v in report.variants if v.status == VariantStatus.FAILED]
    # The report keeps each failed variant's message, not its class; a variant that does not
    # convert is ConversionFailed, which is what the first attempt would have exited with.
    error = ConversionFailedError(failed[0].error or "variant failed") if failed else None
    return Outcome(report=report, error=error, reused=True)
