"""The accuracy-control stage: after validation, before the benchmark.

For every validated variant with `accuracyControl` it records the per-layer quantization error
(the report's layer chart) and, when the variant misses its accuracy budgets, keeps the worst
layers in float until the budgets hold or `maxFloatLayers` is reached; the variant then ships
that model. Opt-in, because the debugger converts the model a second time (MobileNetV2 0.35
at 96x96: 26 s on top of the 20 s conversion; re-quantizing and validating an attempt then
takes about a second). Ranking and search order live in accuracy_control.py, the TensorFlow
calls in quant_debug.py; this module joins them to validation, the target and the benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping

from tflite_operator.api.errors import ConversionError
from tflite_operator.api.report import VariantReport
from tflite_operator.api.report_metrics import AccuracyControlReport, SignatureCheck
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.api.spec_variant import Variant
from tflite_operator.converter import accuracy_control, benchmark, validate
from tflite_operator.converter.accuracy_budgets import (
    METRIC_BUDGETS,
    accuracy_budgets,
    accuracy_failures,
)
from tflite_operator.converter.convert import check_io_types
from tflite_operator.converter.data import Samples
from tflite_operator.converter.ops import op_summary
from tflite_operator.converter.quant_debug import LayerDebugger, unsupported_reason
from tflite_operator.converter.run_state import RunState
from tflite_operator.converter.signature_checks import validation_samples
from tflite_operator.converter.source import SourceModel, first_line

STAGE = "accuracy-control"
# Runs per model for the latency cost: a few, since the benchmark stage times the result fully.
COST_RUNS = 10

Checks = list[SignatureCheck]


def control_all(state: RunState) -> None:
    """The stage: every converted variant with accuracyControl, once validation has run."""
    spec = state.spec
    wanted = [(v, r) for v, r in state.converted() if v.accuracy_control]
    chosen = [(v, r) for v, r in wanted if r.accuracy is not None]
    for variant, rep in wanted:
        if rep.accuracy is None:
            why = "validation is disabled" if not spec.validation.enabled else "it cannot run here"
            state.progress.warn(
                f"variant {variant.name!r}: accuracyControl needs the variant validated, and "
                f"{why}; no layer kept in float"
            )
    if not chosen:
        return
    samples = validation_samples(state)
    with state.clock.stage(STAGE, f"{len(chosen)} quantized variant(s)", total=len(chosen)):
        for variant, rep in chosen:
            state.tflite[variant.name] = control_variant(
                state.source_model,
                variant,
                rep,
                state.tflite[variant.name],
                _calibration(state, variant),
                samples,
                spec,
                state.references,
            )
            control = rep.accuracy_control
            assert control is not None
            detail = f"{len(control.float_layers)} float layer(s), met={control.met}"
            state.progress.step(STAGE, f"{variant.name}: {detail}")


def _calibration(state: RunState, variant: Variant) -> dict[str, Samples]:
    """The variant's calibration samples per signature: the ones its conversion used (cached)."""
    cal = variant.calibration
    field = f"spec.variants[{state.spec.variants.index(variant)}].representativeDataset.uri"
    return {
        sig.key: state.samples_for(cal.uri, cal.samples, cal.seed, sig, field)
        for sig in state.source_model.signatures
    }


def _worst_error(checks: Checks) -> float:
    return max((c.accuracy.max_abs_error for c in checks if c.accuracy), default=float("nan"))


def control_variant(
    model: SourceModel,
    variant: Variant,
    rep: VariantReport,
    plain: bytes,
    calibration: Mapping[str, Samples],
    samples: Mapping[str, Samples],
    spec: ConversionSpec,
    references: Mapping[str, validate.Reference] | None = None,
) -> bytes:
    """The model this variant ships; rep gets the layer errors and the control's report.

    samples: validation inputs per signature; every signature is re-validated per attempt,
    against the source's outputs in references (validation's, so the source is not run again).
    """
    references = references or {}
    assert rep.accuracy is not None and variant.accuracy_control is not None
    key = model.signatures[0].key
    tolerance = spec.tolerance_for(variant)
    checks = rep.signature_checks or [SignatureCheck(key=key, accuracy=rep.accuracy)]
    failures = accuracy_failures(checks, spec.target, tolerance)
    budget = ", ".join(accuracy_budgets(spec.target, tolerance)) or "none set"
    error = _worst_error(checks)
    # TensorFlow's debugger runs the model's first subgraph only; say so where it matters.
    scope = (
        "; per-layer errors and float layers cover the model's first subgraph only"
        if len(model.signatures) > 1
        else ""
    )

    def report(note: str, met: bool = not failures, steps: int = 0) -> bytes:
        """Ship the plain model; the control's report says why."""
        rep.accuracy_control = AccuracyControlReport(
            float_layers=[],
            budget=budget,
            error_before=error,
            error_after=error,
            size_cost_bytes=0,
            met=met,
            steps=steps,
            note=note + scope,
        )
        return plain

    reason = unsupported_reason(variant)
    if reason is not None:
        return report(reason)
    try:
        debugger = LayerDebugger(model, variant, calibration)
        ranked = accuracy_control.rank_layers(debugger.layer_errors())
    except Exception as e:  # the debugger is experimental TensorFlow: say what failed, go on
        return report(f"per-layer errors could not be measured: {first_line(e)}")
    rep.layer_errors = ranked[: accuracy_control.MAX_REPORTED_LAYERS]
    if budget == "none set":
        return report(
            "no accuracy budget to meet: set target.maxOutputError, minTop1Agreement, "
            + ", ".join(b.field for b in METRIC_BUDGETS)
        )
    if not failures:
        return report("the plain quantized model meets the budgets: no layer kept in float")

    threads = spec.benchmark.threads

    def attempt(layers: list[str]) -> tuple[bytes, Checks | None]:
        candidate = debugger.quantize(layers)
        try:
            return candidate, [
                SignatureCheck(
                    key=sig.key,
                    accuracy=validate.compare(
                        model,
                        sig.key,
                        candidate,
                        samples[sig.key],
                        tolerance,
                        threads,
                        reference=references.get(sig.key),
                    ),
                )
                for sig in model.signatures
            ]
        except (ConversionError, validate.NotRunnableError):
            return candidate, None  # not runnable or not comparable: does not meet

    def meets(result: tuple[bytes, Checks | None]) -> bool:
        tried = result[1]
        return tried is not None and not accuracy_failures(tried, spec.target, tolerance)

    names = accuracy_control.candidates(ranked)
    limit = variant.accuracy_control.max_float_layers
    search = accuracy_control.search(names, limit, attempt, meets)
    chosen, largest = search.chosen, search.largest
    if largest is None:
        return report("no layer has a quantization error above zero to remove", met=False)
    if chosen is None:
        tried = largest.result[1]
        reached = f"max abs error {_worst_error(tried):.4g}" if tried else "not runnable"
        more = "raise maxFloatLayers, or " if len(names) > limit else ""
        note = (
            f"budgets still missed with {len(largest.float_layers)} float layer(s) ({reached}); "
            f"shipped without float layers: {more}relax the budget or use a float variant"
        )
        return report(note, met=False, steps=len(search.attempts))
    shipped, new_checks = chosen.result
    assert new_checks is not None
    field = f"spec.variants[{variant.name}]"
    try:
        types = check_io_types(shipped, model.signatures, variant, field)
    except ConversionError as e:
        return report(f"the model with float layers breaks ioType: {e.message}", met=False)

    rep.input_types, rep.output_types = types
    rep.accuracy_control = AccuracyControlReport(
        float_layers=chosen.float_layers,
        budget=budget,
        error_before=error,
        error_after=_worst_error(new_checks),
        size_cost_bytes=len(shipped) - len(plain),
        latency_cost_ms=_latency_cost(plain, shipped, key, samples[key], spec),
        met=True,
        steps=len(search.attempts),
        note=scope.removeprefix("; ") or None,
    )
    rep.signature_checks = new_checks
    rep.accuracy = new_checks[0].accuracy
    rep.size_bytes = len(shipped)
    rep.compression_ratio = round(model.size_bytes / len(shipped), 3)
    rep.ops = op_summary(shipped)
    rep.converter_settings = debugger.settings_with(chosen.float_layers)
    return shipped


def _latency_cost(
    plain: bytes, shipped: bytes, key: str, samples: Samples, spec: ConversionSpec
) -> float | None:
    """p50 of the shipped model minus the plain one's, a few runs each (None: no benchmark)."""
    bench = spec.benchmark
    if not bench.enabled:
        return None
    runs, warmup = min(bench.runs, COST_RUNS), min(bench.warmup_runs, 2)
    inputs = samples.inputs[0]
    before = benchmark.benchmark_tflite(plain, key, inputs, runs, warmup, bench.threads)
    after = benchmark.benchmark_tflite(shipped, key, inputs, runs, warmup, bench.threads)
    if before.latency_ms is None or after.latency_ms is None:
        return None
    return round(after.latency_ms.p50 - before.latency_ms.p50, 3) + 0.0  # no "-0.0"
