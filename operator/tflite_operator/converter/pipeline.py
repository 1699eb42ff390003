"""The converter pipeline: fetch, inspect, convert, validate, benchmark, select, publish.

This is what a converter Job runs, and what `tflite-operator convert` runs on a workstation.
Stages live in their own modules; this one only orders them and assembles the report.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tflite_operator import __version__
from tflite_operator.api.errors import ConversionError, ConversionFailedError
from tflite_operator.api.report import (
    BenchmarkReport,
    LatencyStats,
    Report,
    SignatureInfo,
    SourceReport,
    VariantReport,
    VariantStatus,
)
from tflite_operator.api.spec import NEEDS_REPRESENTATIVE_DATA, ConversionSpec, Variant
from tflite_operator.converter import benchmark, data, source, validate, workers
from tflite_operator.converter.progress import Progress, StageClock
from tflite_operator.converter.report_html import render_html
from tflite_operator.converter.target import evaluate_target, select_variant
from tflite_operator.storage import storage_for
from tflite_operator.storage.ownership import Owner

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


@dataclass
class Outcome:
    """What a run produced; `error` is set when the run must end with a failure exit code."""

    report: Report
    tflite: dict[str, bytes] = field(default_factory=dict)
    error: ConversionError | None = None
    # True when an earlier attempt of the same resource generation had published everything.
    reused: bool = False


def output_names(spec: ConversionSpec) -> list[str]:
    return [f"{v.name}.tflite" for v in spec.variants] + [REPORT_JSON, REPORT_HTML]


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
    progress = progress or Progress()
    clock = StageClock(progress)
    out_store = storage_for(spec.output.uri)

    # Refuse early, before minutes of conversion; publish re-checks atomically.
    existing = out_store.check_publishable(
        spec.output.uri, output_names(spec), spec.output.overwrite, owner
    )
    earlier = out_store.published_by(spec.output.uri, existing, owner, REPORT_JSON)
    if earlier is not None:
        # The pod published, then died before exiting 0 (node drain, SIGTERM): done already.
        progress.warn(f"{spec.output.uri} already holds this generation's outputs; not converting")
        return _reused(Report.model_validate_json(earlier))

    with clock.stage("fetch", spec.source.uri):
        src_store = storage_for(spec.source.uri)
        local_source = src_store.fetch(spec.source.uri, workdir / "source", spec.source.max_bytes)

    with clock.stage("inspect", str(local_source)):
        model = source.load_source(local_source, spec.source.format, spec.source.signature_keys)
    # Validation and benchmarks exercise the first chosen signature: the one a device calls.
    signature = model.signatures[0]

    cache: dict[tuple[str | None, int, int, str], data.Samples] = {}

    def samples_for(
        uri: str | None, count: int, seed: int, signature: SignatureInfo, field: str
    ) -> data.Samples:
        """Inputs for one signature: a dataset file, or seeded synthetic data when no URI."""
        key = (uri, count, seed, signature.key)
        if key not in cache:
            if uri is None:
                cache[key] = data.synthetic_samples(signature, count, seed)
            else:
                dest = workdir / "data" / str(len(cache))
                local = storage_for(uri).fetch(uri, dest, spec.source.max_bytes, field=field)
                cache[key] = data.load_samples(local, signature, count, uri)
        return cache[key]

    variants: list[VariantReport] = []
    tflite: dict[str, bytes] = {}
    first_error: ConversionError | None = None
    tasks: list[workers.Task] = []
    for index, variant in enumerate(spec.variants):
        calib_by_signature: dict[str, data.Samples] = {}
        if variant.quantization in NEEDS_REPRESENTATIVE_DATA:
            cal = variant.calibration
            field = f"spec.variants[{index}].representativeDataset.uri"
            for sig in model.signatures:
                calib_by_signature[sig.key] = samples_for(
                    cal.uri, cal.samples, cal.seed, sig, field
                )
        tasks.append(workers.Task(index, variant, calib_by_signature or None))
    pool = workers.plan(model, len(tasks), workers.requested_workers(worker_count))
    if pool.count > 1 and spec.validation.enabled:
        # Workers validate what they convert while others still convert (see workers.py).
        val, bench_threads = spec.validation, spec.benchmark.threads
        val_samples = samples_for(
            val.dataset_uri or _first_calibration_uri(spec.variants),
            val.samples,
            val.seed,
            signature,
            "spec.validation.datasetUri",
        )
        for task in tasks:
            tolerance = spec.tolerance_for(task.variant)
            task.check = workers.Check({signature.key: val_samples}, tolerance, bench_threads)
    with clock.stage(
        "convert",
        f"{len(spec.variants)} variant(s), {pool.count} worker(s) ({pool.reason})",
        total=len(spec.variants),
    ):
        results = workers.run_tasks(
            model,
            tasks,
            pool.count,
            lambda r: progress.step(
                "convert",
                f"{spec.variants[r.index].name}: "
                + (f"{len(r.converted.tflite):,} B" if r.converted else "failed"),
            ),
        )
        for task in tasks:
            variant, result = task.variant, results[task.index]
            calib = (task.calibration or {}).get(signature.key)
            if result.error is not None or result.converted is None:
                err = result.error or ConversionError(f"variant {variant.name!r}: no result")
                first_error = first_error or err
                variants.append(_failed(variant, err, calib))
                continue
            converted = result.converted
            tflite[variant.name] = converted.tflite
            variants.append(
                VariantReport(
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
                )
            )

    converted_variants = [
        (s, r)
        for s, r in zip(spec.variants, variants, strict=True)
        if r.status == VariantStatus.CONVERTED
    ]

    validation_data = None
    if spec.validation.enabled and converted_variants:
        val = spec.validation
        with clock.stage("validate", f"{val.samples} sample(s)", total=len(converted_variants)):
            data_uri = val.dataset_uri or _first_calibration_uri(spec.variants)
            samples = samples_for(
                data_uri, val.samples, val.seed, signature, "spec.validation.datasetUri"
            )
            validation_data = samples.report
            for variant, rep in converted_variants:
                try:
                    checked = results[spec.variants.index(variant)].checked(signature.key)
                    rep.accuracy = checked or validate.compare(
                        model,
                        signature.key,
                        tflite[variant.name],
                        samples,
                        spec.tolerance_for(variant),
                        threads=spec.benchmark.threads,
                    )
                    progress.step("validate", f"{variant.name}: {rep.accuracy.verdict}")
                except validate.NotRunnableError as err:
                    rep.benchmark = BenchmarkReport(runnable=False, reason=str(err))
                    progress.step("validate", f"{variant.name}: not runnable here")

    source_latency: LatencyStats | None = None
    source_note: str | None = None
    bench = spec.benchmark
    if bench.enabled and converted_variants:
        inputs = samples_for(None, 1, spec.validation.seed, signature, "").inputs[0]
        with clock.stage(
            "benchmark",
            f"{bench.runs} run(s) or {bench.max_seconds:g} s, {bench.threads} thread(s)",
            total=len(converted_variants) + int(bench.source_baseline),
        ):
            if bench.source_baseline:
                source_latency = benchmark.benchmark_source(
                    model, signature.key, inputs, bench.runs, bench.warmup_runs, bench.max_seconds
                )
                progress.step("benchmark", f"source: p50 {source_latency.p50:.2f} ms")
            else:
                source_note = "source baseline disabled (spec.benchmark.sourceBaseline)"
            for variant, rep in converted_variants:
                if rep.benchmark is not None and not rep.benchmark.runnable:
                    continue  # validation already found it cannot run here
                rep.benchmark = benchmark.benchmark_tflite(
                    tflite[variant.name],
                    signature.key,
                    inputs,
                    bench.runs,
                    bench.warmup_runs,
                    bench.threads,
                    max_seconds=bench.max_seconds,
                )
                lat = rep.benchmark.latency_ms
                if lat and source_latency:
                    rep.benchmark.speedup_vs_source = round(source_latency.p50 / lat.p50, 3)
                progress.step(
                    "benchmark",
                    f"{variant.name}: p50 {lat.p50:.2f} ms"
                    + (f" ({lat.runs} runs: maxSeconds)" if rep.benchmark.time_bounded else "")
                    if lat
                    else f"{variant.name}: {rep.benchmark.reason}",
                )

    for variant, rep in zip(spec.variants, variants, strict=True):
        rep.target = evaluate_target(rep, spec.target, spec.tolerance_for(variant))
    selected = select_variant(variants)

    report = Report(
        name=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        spec=spec.to_wire(),
        source=SourceReport(
            uri=spec.source.uri,
            format=model.format,
            size_bytes=model.size_bytes,
            signatures=model.signatures,
            latency_ms=source_latency,
            latency_note=source_note,
        ),
        validation_data=validation_data,
        variants=variants,
        selected=selected,
        timings_seconds=clock.seconds,
        versions=_versions(),
        output_uri=spec.output.uri,
    )

    with clock.stage("publish", spec.output.uri):
        report.report_uri = out_store.uri_of(spec.output.uri, REPORT_JSON)
        for rep in variants:
            if rep.name in tflite:
                rep.uri = out_store.uri_of(spec.output.uri, f"{rep.name}.tflite")
        report.timings_seconds = clock.seconds
        out_store.publish(
            spec.output.uri,
            files={f"{n}.tflite": b for n, b in tflite.items()},
            last={
                REPORT_JSON: report.model_dump_json(
                    by_alias=True, exclude_none=True, indent=2
                ).encode(),
                REPORT_HTML: render_html(report).encode(),
            },
            overwrite=spec.output.overwrite,
            owner=owner,
        )
    return Outcome(report=report, tflite=tflite, error=first_error)


def _reused(report: Report) -> Outcome:
    failed = [v for v in report.variants if v.status == VariantStatus.FAILED]
    # The report keeps each failed variant's message, not its class; a variant that does not
    # convert is ConversionFailed, which is what the first attempt would have exited with.
    error = ConversionFailedError(failed[0].error or "variant failed") if failed else None
    return Outcome(report=report, error=error, reused=True)


def _failed(variant: Variant, err: ConversionError, calib: data.Samples | None) -> VariantReport:
    return VariantReport(
        name=variant.name,
        quantization=variant.quantization,
        status=VariantStatus.FAILED,
        error=err.message,
        requested_io_type=variant.io_type,
        calibration=calib.report if calib else None,
    )


def _first_calibration_uri(variants: list[Variant]) -> str | None:
    for v in variants:
        if v.quantization in NEEDS_REPRESENTATIVE_DATA and v.calibration.uri:
            return v.calibration.uri
    return None


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
