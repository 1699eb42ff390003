"""The pipeline's stages, each a function over the RunState (converter/run_state.py).

A stage reads what earlier stages set and sets what it produces; pipeline.run orders them.
The TensorFlow and LiteRT work itself lives in the modules a stage calls (convert, validate,
benchmark); the stages only decide what to run on which variant and record it. The validate
and benchmark stages, which run every selected signature, are in signature_checks.py.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime

from tflite_operator import __version__
from tflite_operator.api.errors import ConversionError
from tflite_operator.api.report import (
    REPORT_HTML,
    REPORT_JSON,
    Report,
    VariantReport,
    VariantStatus,
)
from tflite_operator.api.report_metrics import SourceReport
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.api.spec_variant import NEEDS_REPRESENTATIVE_DATA, Variant
from tflite_operator.converter import (
    data,
    input_shapes,
    resources,
    reuse,
    signature_checks,
    source,
    worker_tasks,
    workers,
)
from tflite_operator.converter.report_html import render_html
from tflite_operator.converter.run_state import RunState, produced
from tflite_operator.converter.target import evaluate_target, select_variant
from tflite_operator.storage import storage_for


def output_names(spec: ConversionSpec) -> list[str]:
    return [f"{v.name}.tflite" for v in spec.variants] + [REPORT_JSON, REPORT_HTML]


def earlier_report(state: RunState) -> Report | None:
    """The report an earlier attempt of this generation published, or None to go on.

    Refuses outputs that are not ours early, before minutes of conversion; publish re-checks
    atomically.
    """
    spec = state.spec
    existing = state.out_store.check_publishable(
        spec.output.uri, output_names(spec), spec.output.overwrite, state.owner
    )
    earlier = state.out_store.published_by(spec.output.uri, existing, state.owner, REPORT_JSON)
    if earlier is None:
        return None
    # The pod published, then died before exiting 0 (node drain, SIGTERM): done already.
    state.progress.warn(
        f"{spec.output.uri} already holds this generation's outputs; not converting"
    )
    return Report.model_validate_json(earlier)


def fetch(state: RunState) -> None:
    uri = state.spec.source.uri
    with state.clock.stage("fetch", uri):
        state.local_source = storage_for(uri).fetch(
            uri, state.workdir / "source", state.spec.source.max_bytes
        )


def inspect(state: RunState) -> None:
    src = state.spec.source
    with state.clock.stage("inspect", str(state.local_source)):
        state.model = source.load_source(
            state.local_source, src.format, src.signature_keys, src.input_shapes
        )
        # Before any conversion: an unknown dim other than the batch needs source.inputShapes.
        input_shapes.require_static(state.model.signatures)


def convert_all(state: RunState) -> None:
    """Convert every variant not reused from the previous generation, in worker processes
    when the machine has room for them (workers.py)."""
    spec, model = state.spec, state.source_model
    pool = resources.plan(
        model.size_bytes, len(spec.variants), resources.requested_workers(state.worker_count)
    )
    with state.clock.stage(
        "convert",
        f"{len(spec.variants)} variant(s), {pool.count} worker(s) ({pool.reason})",
        total=len(spec.variants),
    ):
        reused = reuse.take_previous(state)
        tasks = [
            worker_tasks.Task(index, variant, _calibration(state, index, variant) or None)
            for index, variant in enumerate(spec.variants)
            if variant.name not in reused
        ]
        if pool.count > 1 and len(tasks) > 1 and spec.validation.enabled:
            # Workers validate what they convert while others still convert.
            samples = signature_checks.validation_samples(state)
            for task in tasks:
                tolerance = spec.tolerance_for(task.variant)
                task.check = worker_tasks.Check(samples, tolerance, spec.benchmark.threads)
        results = workers.run_tasks(model, tasks, pool.count, lambda r: _converted(state, r))
        for task in tasks:
            state.worker_results[task.variant.name] = results[task.index]
        for index, variant in enumerate(spec.variants):
            if variant.name in reused:
                state.variants.append(reused[variant.name])
            else:
                task = next(t for t in tasks if t.index == index)
                state.variants.append(_report_one(state, task, results[index]))
        reuse.record(state)


def _calibration(state: RunState, index: int, variant: Variant) -> dict[str, data.Samples]:
    calib_by_signature: dict[str, data.Samples] = {}
    if variant.quantization in NEEDS_REPRESENTATIVE_DATA:
        cal = variant.calibration
        field = f"spec.variants[{index}].representativeDataset.uri"
        for sig in state.source_model.signatures:
            calib_by_signature[sig.key] = state.samples_for(
                cal.uri, cal.samples, cal.seed, sig, field
            )
    return calib_by_signature


def _converted(state: RunState, result: worker_tasks.Result) -> None:
    """Progress as each variant finishes, in whatever order the workers finish them."""
    name = state.spec.variants[result.index].name
    size = f"{len(result.converted.tflite):,} B" if result.converted else "failed"
    state.progress.step("convert", f"{name}: {size}")


def _report_one(
    state: RunState, task: worker_tasks.Task, result: worker_tasks.Result
) -> VariantReport:
    model, variant = state.source_model, task.variant
    calib = (task.calibration or {}).get(state.primary_signature.key)
    converted = result.converted
    if result.error is not None or converted is None:
        err = result.error or ConversionError(f"variant {variant.name!r}: no result")
        state.first_error = state.first_error or err
        return _failed(variant, err, calib)
    state.tflite[variant.name] = converted.tflite
    return VariantReport(
        name=variant.name,
        quantization=variant.quantization,
        status=VariantStatus.CONVERTED,
        size_bytes=len(converted.tflite),
        compression_ratio=round(model.size_bytes / len(converted.tflite), 3),
        input_types=converted.input_types,
        output_types=converted.output_types,
        requested_io_type=variant.io_type,
        calibration=calib.report if calib else None,
        ops=converted.ops,
        convert_seconds=round(converted.seconds, 3),
        converter_settings=converted.settings,
    )


def _failed(variant: Variant, err: ConversionError, calib: data.Samples | None) -> VariantReport:
    return VariantReport(
        name=variant.name,
        quantization=variant.quantization,
        status=VariantStatus.FAILED,
        error=err.message,
        requested_io_type=variant.io_type,
        calibration=calib.report if calib else None,
    )


def evaluate(state: RunState) -> None:
    """Each variant's verdict against spec.target, then the one to ship."""
    spec = state.spec
    for variant, rep in zip(spec.variants, state.variants, strict=True):
        rep.target = evaluate_target(rep, spec.target, spec.tolerance_for(variant))
    state.selected = select_variant(state.variants)


def assemble_report(state: RunState) -> None:
    spec, model = state.spec, state.source_model
    state.report = Report(
        name=state.name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        spec=spec.to_wire(),
        source=SourceReport(
            uri=spec.source.uri,
            format=model.format,
            size_bytes=model.size_bytes,
            signatures=model.signatures,
            latency_ms=state.source_latency,
            latency_note=state.source_note,
            task_accuracy=state.source_task_accuracy,
        ),
        validation_data=state.validation_data,
        variants=state.variants,
        selected=produced(state.selected, "evaluate"),
        timings_seconds=state.clock.seconds,
        versions=_versions(),
        output_uri=spec.output.uri,
    )


def publish(state: RunState) -> None:
    spec, store = state.spec, state.out_store
    report = produced(state.report, "assemble_report")
    with state.clock.stage("publish", spec.output.uri):
        report.report_uri = store.uri_of(spec.output.uri, REPORT_JSON)
        for rep in state.variants:
            if rep.name in state.tflite:
                rep.uri = store.uri_of(spec.output.uri, f"{rep.name}.tflite")
        report.timings_seconds = state.clock.seconds
        store.publish(
            spec.output.uri,
            files={f"{n}.tflite": b for n, b in state.tflite.items()},
            last={
                REPORT_JSON: report.model_dump_json(
                    by_alias=True, exclude_none=True, indent=2
                ).encode(),
                REPORT_HTML: render_html(report).encode(),
            },
            overwrite=spec.output.overwrite,
            owner=state.owner,
        )


def _versions() -> dict[str, str]:
    import ai_edge_litert
    import numpy
    import tensorflow as tf

    return {
        "tfliteOperator": __version__,
        "tensorflow": tf.__version__,
        "aiEdgeLitert": getattr(ai_edge_litert, "__version__", "unknown"),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
