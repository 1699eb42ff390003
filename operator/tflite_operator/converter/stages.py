"""The pipeline's stages, each a function over the RunState (converter/run_state.py).

A stage reads what earlier stages set and sets what it produces; pipeline.run orders them.
The TensorFlow and LiteRT work itself lives in the modules a stage calls (convert, validate,
benchmark); the stages only decide what to run on which variant and record it.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime

from tflite_operator import __version__
from tflite_operator.api.errors import ConversionError
from tflite_operator.api.report import (
    BenchmarkReport,
    Report,
    SourceReport,
    VariantReport,
    VariantStatus,
)
from tflite_operator.api.spec import NEEDS_REPRESENTATIVE_DATA, ConversionSpec, Variant
from tflite_operator.converter import benchmark, convert, data, source, validate
from tflite_operator.converter.report_html import render_html
from tflite_operator.converter.run_state import RunState, produced
from tflite_operator.converter.target import evaluate_target, select_variant
from tflite_operator.storage import storage_for

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


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
        state.model = source.load_source(state.local_source, src.format, src.signature_keys)


def convert_all(state: RunState) -> None:
    variants = state.spec.variants
    with state.clock.stage("convert", f"{len(variants)} variant(s)", total=len(variants)):
        for index, variant in enumerate(variants):
            state.variants.append(_convert_one(state, index, variant))


def _convert_one(state: RunState, index: int, variant: Variant) -> VariantReport:
    model = state.source_model
    calib_by_signature: dict[str, data.Samples] = {}
    if variant.quantization in NEEDS_REPRESENTATIVE_DATA:
        cal = variant.calibration
        field = f"spec.variants[{index}].representativeDataset.uri"
        for sig in model.signatures:
            calib_by_signature[sig.key] = state.samples_for(
                cal.uri, cal.samples, cal.seed, sig, field
            )
    calib = calib_by_signature.get(state.primary_signature.key)
    try:
        converted = convert.convert_variant(model, variant, calib_by_signature or None, index=index)
    except ConversionError as err:
        state.first_error = state.first_error or err
        state.progress.step("convert", f"{variant.name}: failed")
        return _failed(variant, err, calib)
    state.tflite[variant.name] = converted.tflite
    state.progress.step("convert", f"{variant.name}: {len(converted.tflite):,} B")
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


def validate_all(state: RunState) -> None:
    spec, converted = state.spec, state.converted()
    if not spec.validation.enabled or not converted:
        return
    val = spec.validation
    signature = state.primary_signature
    with state.clock.stage("validate", f"{val.samples} sample(s)", total=len(converted)):
        data_uri = val.dataset_uri or _first_calibration_uri(spec.variants)
        samples = state.samples_for(
            data_uri, val.samples, val.seed, signature, "spec.validation.datasetUri"
        )
        state.validation_data = samples.report
        for variant, rep in converted:
            try:
                rep.accuracy = validate.compare(
                    state.source_model,
                    signature.key,
                    state.tflite[variant.name],
                    samples,
                    spec.tolerance_for(variant),
                    threads=spec.benchmark.threads,
                )
                state.progress.step("validate", f"{variant.name}: {rep.accuracy.verdict}")
            except validate.NotRunnableError as err:
                rep.benchmark = BenchmarkReport(runnable=False, reason=str(err))
                state.progress.step("validate", f"{variant.name}: not runnable here")


def _first_calibration_uri(variants: list[Variant]) -> str | None:
    for v in variants:
        if v.quantization in NEEDS_REPRESENTATIVE_DATA and v.calibration.uri:
            return v.calibration.uri
    return None


def benchmark_all(state: RunState) -> None:
    bench, converted = state.spec.benchmark, state.converted()
    if not bench.enabled or not converted:
        return
    signature = state.primary_signature
    inputs = state.samples_for(None, 1, state.spec.validation.seed, signature, "").inputs[0]
    with state.clock.stage(
        "benchmark",
        f"{bench.runs} run(s), {bench.threads} thread(s)",
        total=len(converted) + int(bench.source_baseline),
    ):
        if bench.source_baseline:
            state.source_latency = benchmark.benchmark_source(
                state.source_model, signature.key, inputs, bench.runs, bench.warmup_runs
            )
            state.progress.step("benchmark", f"source: p50 {state.source_latency.p50:.2f} ms")
        else:
            state.source_note = "source baseline disabled (spec.benchmark.sourceBaseline)"
        for variant, rep in converted:
            if rep.benchmark is not None and not rep.benchmark.runnable:
                continue  # validation already found it cannot run here
            rep.benchmark = benchmark.benchmark_tflite(
                state.tflite[variant.name],
                signature.key,
                inputs,
                bench.runs,
                bench.warmup_runs,
                bench.threads,
            )
            lat = rep.benchmark.latency_ms
            if lat and state.source_latency:
                rep.benchmark.speedup_vs_source = round(state.source_latency.p50 / lat.p50, 3)
            state.progress.step(
                "benchmark",
                f"{variant.name}: p50 {lat.p50:.2f} ms"
                if lat
                else f"{variant.name}: {rep.benchmark.reason}",
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
