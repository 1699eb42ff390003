"""Whether each variant fits the device, and which one to ship. Pure functions on report data."""

from __future__ import annotations

from collections.abc import Sequence

from tflite_operator.api.report import (
    AccuracyReport,
    Selection,
    TargetVerdict,
    VariantReport,
    VariantStatus,
)
from tflite_operator.api.spec import Target


def evaluate_target(
    variant: VariantReport, target: Target, tolerance: float | None
) -> TargetVerdict:
    """Every unmet constraint of `target`, in words a user can act on.

    A constraint that could not be measured (no benchmark, no validation) counts as unmet:
    shipping a model whose latency is unknown against a latency budget would be a guess.
    """
    if variant.status != VariantStatus.CONVERTED:
        return TargetVerdict(meets=False, failed=[f"conversion failed: {variant.error}"])
    failed: list[str] = []
    max_size = target.max_model_size_bytes
    if max_size is not None and variant.size_bytes is not None and variant.size_bytes > max_size:
        failed.append(f"size {variant.size_bytes} B exceeds maxModelSizeBytes {max_size} B")
    if target.max_latency_ms is not None:
        bench = variant.benchmark
        if bench is None or bench.latency_ms is None:
            why = bench.reason if bench and bench.reason else "benchmark disabled"
            failed.append(f"latency unknown ({why}); maxLatencyMs {target.max_latency_ms} ms")
        elif bench.latency_ms.p50 > target.max_latency_ms:
            failed.append(
                f"p50 latency {bench.latency_ms.p50:.2f} ms exceeds maxLatencyMs "
                f"{target.max_latency_ms} ms"
            )
    failed.extend(accuracy_failures(variant.accuracy, target, tolerance))
    if target.allowed_ops is not None and variant.ops is not None:
        allowed = set(target.allowed_ops)
        used = [*variant.ops.builtin, *variant.ops.select_tf, *variant.ops.custom]
        unsupported = sorted({op for op in used if op not in allowed})
        if unsupported:
            failed.append(f"uses ops outside allowedOps: {', '.join(unsupported)}")
    return TargetVerdict(meets=not failed, failed=failed)


def accuracy_budgets(target: Target, tolerance: float | None) -> list[str]:
    """The accuracy budgets in force, as the user wrote them ("maxOutputError 0.05")."""
    budgets = []
    if tolerance is not None:
        budgets.append(f"maxOutputError {tolerance}")
    if target.min_top1_agreement is not None:
        budgets.append(f"minTop1Agreement {target.min_top1_agreement}")
    return budgets


def accuracy_failures(
    accuracy: AccuracyReport | None, target: Target, tolerance: float | None
) -> list[str]:
    """Every unmet accuracy budget: the predicate accuracy control searches with, so a budget
    added here is one it keeps layers in float for."""
    failed: list[str] = []
    if tolerance is not None:
        if accuracy is None:
            failed.append(f"output error unknown (validation not run); budget {tolerance}")
        elif accuracy.max_abs_error > tolerance:
            failed.append(
                f"max abs error {accuracy.max_abs_error:.4g} exceeds maxOutputError {tolerance}"
            )
    if target.min_top1_agreement is not None:
        agreement = accuracy.top1_agreement if accuracy else None
        if agreement is None:
            failed.append("top-1 agreement unknown (no classifier output validated)")
        elif agreement < target.min_top1_agreement:
            failed.append(
                f"top-1 agreement {agreement:.3f} below minTop1Agreement "
                f"{target.min_top1_agreement}"
            )
    return failed


def select_variant(variants: Sequence[VariantReport]) -> Selection:
    """The smallest variant that meets every constraint; ties go to the lower p50 latency."""
    meeting = [v for v in variants if v.target and v.target.meets and v.size_bytes is not None]
    if not meeting:
        converted = [v for v in variants if v.status == VariantStatus.CONVERTED]
        if not converted:
            return Selection(name=None, reason="no variant converted")
        reasons = "; ".join(
            f"{v.name}: {', '.join(v.target.failed) if v.target else 'not evaluated'}"
            for v in converted
        )
        return Selection(name=None, reason=f"no variant meets the target ({reasons})")

    def key(v: VariantReport) -> tuple[int, float]:
        lat = v.benchmark.latency_ms if v.benchmark and v.benchmark.latency_ms else None
        return (v.size_bytes or 0, lat.p50 if lat else float("inf"))

    best = min(meeting, key=key)
    return Selection(
        name=best.name,
        reason=f"smallest of {len(meeting)} variant(s) meeting the target ({best.size_bytes} B)",
    )
