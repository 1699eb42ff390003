"""The validate and benchmark stages: every selected signature of every converted variant.

A model converted with several signatures (source.signatureKeys) ships all of them, so each is
compared with the source and timed. `VariantReport.signature_checks` holds one entry per
signature in the order of the source's signatures; `accuracy` and `benchmark` stay the primary
(first) signature's, the one a device calls. The target is judged on the worst signature
(converter/target.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from tflite_operator.api.report import VariantReport
from tflite_operator.api.report_metrics import BenchmarkReport, SignatureCheck, SignatureInfo
from tflite_operator.api.spec_variant import NEEDS_REPRESENTATIVE_DATA, Variant
from tflite_operator.converter import benchmark, data, validate
from tflite_operator.converter.run_state import RunState


def validate_all(state: RunState) -> None:
    spec, converted = state.spec, state.converted()
    if not spec.validation.enabled or not converted:
        return
    val = spec.validation
    signatures = state.source_model.signatures
    detail = f"{val.samples} sample(s){_count(signatures)}"
    with state.clock.stage("validate", detail, total=len(converted)):
        samples = validation_samples(state)
        state.validation_data = samples[signatures[0].key].report
        # The source runs once per signature; every variant is compared with its outputs.
        # Labels score the primary signature's classifier output (the one a device calls).
        references = state.references = {
            sig.key: validate.run_source(
                state.source_model,
                sig.key,
                samples[sig.key],
                require_labels=spec.target.max_accuracy_drop is not None,
                use_labels=sig is signatures[0],
            )
            for sig in signatures
        }
        state.source_task_accuracy = references[signatures[0].key].task_accuracy
        for variant, rep in converted:
            words: list[tuple[str, str]] = []
            for sig, check in zip(signatures, _checks(rep, signatures), strict=True):
                try:
                    # Measured in the conversion worker already, when there were workers.
                    checked = state.checked(variant.name, sig.key)
                    check.accuracy = checked or validate.compare(
                        state.source_model,
                        sig.key,
                        state.tflite[variant.name],
                        samples[sig.key],
                        spec.tolerance_for(variant),
                        threads=spec.benchmark.threads,
                        reference=references[sig.key],
                    )
                    words.append((sig.key, check.accuracy.verdict))
                except validate.NotRunnableError as err:
                    check.benchmark = BenchmarkReport(runnable=False, reason=str(err))
                    words.append((sig.key, "not runnable here"))
            _primary_figures(rep)
            state.progress.step("validate", f"{variant.name}: {_per_signature(words)}")


def validation_samples(state: RunState) -> dict[str, data.Samples]:
    """The validation inputs of each selected signature (fetched once, then cached)."""
    val = state.spec.validation
    data_uri = val.dataset_uri or _first_calibration_uri(state.spec.variants)
    return {
        sig.key: state.samples_for(
            data_uri, val.samples, val.seed, sig, "spec.validation.datasetUri"
        )
        for sig in state.source_model.signatures
    }


def benchmark_all(state: RunState) -> None:
    bench, converted = state.spec.benchmark, state.converted()
    if not bench.enabled or not converted:
        return
    model, signatures = state.source_model, state.source_model.signatures
    seed = state.spec.validation.seed
    inputs = {sig.key: state.samples_for(None, 1, seed, sig, "").inputs[0] for sig in signatures}
    with state.clock.stage(
        "benchmark",
        f"{bench.runs} run(s) or {bench.max_seconds:g} s, {bench.threads} thread(s)"
        f"{_count(signatures)}",
        total=len(converted) + int(bench.source_baseline),
    ):
        source_p50: dict[str, float] = {}
        if bench.source_baseline:
            for sig in signatures:
                latency = benchmark.benchmark_source(
                    model,
                    sig.key,
                    inputs[sig.key],
                    bench.runs,
                    bench.warmup_runs,
                    bench.max_seconds,
                )
                source_p50[sig.key] = latency.p50
                state.source_latency = state.source_latency or latency  # the primary's
            state.progress.step("benchmark", f"source: p50 {source_p50[signatures[0].key]:.2f} ms")
        else:
            state.source_note = "source baseline disabled (spec.benchmark.sourceBaseline)"
        # One at a time, in this process's child, after the conversion workers have exited:
        # anything running beside the timed runs would take cores from them and inflate the
        # latency figures (this is why benchmarks do not run in the workers).
        for variant, rep in converted:
            words: list[tuple[str, str]] = []
            for sig, check in zip(signatures, _checks(rep, signatures), strict=True):
                if check.benchmark is not None and not check.benchmark.runnable:
                    continue  # validation already found it cannot run here
                check.benchmark = benchmark.benchmark_tflite(
                    state.tflite[variant.name],
                    sig.key,
                    inputs[sig.key],
                    bench.runs,
                    bench.warmup_runs,
                    bench.threads,
                    max_seconds=bench.max_seconds,
                )
                lat = check.benchmark.latency_ms
                if lat and sig.key in source_p50:
                    check.benchmark.speedup_vs_source = round(source_p50[sig.key] / lat.p50, 3)
                cut = f" ({lat.runs} runs: maxSeconds)" if check.benchmark.time_bounded else ""
                words.append(
                    (sig.key, f"p50 {lat.p50:.2f} ms{cut}" if lat else str(check.benchmark.reason))
                )
            _primary_figures(rep)
            if words:
                state.progress.step("benchmark", f"{variant.name}: {_per_signature(words)}")


def _checks(rep: VariantReport, signatures: Sequence[SignatureInfo]) -> list[SignatureCheck]:
    """The variant's checks, one per signature in order, created by whichever stage runs first."""
    if not rep.signature_checks:
        rep.signature_checks = [SignatureCheck(key=sig.key) for sig in signatures]
    return rep.signature_checks


def _primary_figures(rep: VariantReport) -> None:
    primary = rep.signature_checks[0]
    rep.accuracy, rep.benchmark = primary.accuracy, primary.benchmark


def _count(signatures: Sequence[SignatureInfo]) -> str:
    return f", {len(signatures)} signatures" if len(signatures) > 1 else ""


def _per_signature(words: list[tuple[str, str]]) -> str:
    """What each signature gave (the signature named only when there are several)."""
    if len(words) == 1:
        return words[0][1]
    return "; ".join(f"{key}: {word}" for key, word in words)


def _first_calibration_uri(variants: list[Variant]) -> str | None:
    for v in variants:
        if v.quantization in NEEDS_REPRESENTATIVE_DATA and v.calibration.uri:
            return v.calibration.uri
    return None
