"""Whether each variant fits the device, and which one to ship. Pure functions on report data.

A variant is judged on every selected signature: a budget holds only if it holds for each
(the worst signature's latency, error and agreement count). A variant this runtime could not
validate or run is `unverified`, never `meets`: its measured budgets are unknown, and only
spec.target.allowUnverified lets it be selected.
"""

from __future__ import annotations

from collections.abc import Sequence

from tflite_operator.api.report import Selection, VariantReport, VariantStatus
from tflite_operator.api.report_metrics import (
    SignatureCheck,
    TargetVerdict,
    Verdict,
)
from tflite_operator.api.spec_checks import Target
from tflite_operator.converter.accuracy_budgets import check_accuracy, signature_suffix
from tflite_operator.converter.ops import not_runnable_reason


def evaluate_target(
    variant: VariantReport, target: Target, tolerance: float | None
) -> TargetVerdict:
    """Every unmet constraint of `target`, in words a user can act on.

    A constraint that could not be measured (no benchmark, no validation) counts as unmet:
    shipping a model whose latency is unknown against a latency budget would be a guess. When
    it could not be measured because this runtime cannot run the variant, the verdict is
    "unverified" instead (unless a constraint that was checked already fails: "misses").
    """
    if variant.status != VariantStatus.CONVERTED:
        return TargetVerdict(
            meets=False, verdict="misses", failed=[f"conversion failed: {variant.error}"]
        )
    checks = _checks(variant)
    failed: list[str] = []  # known to be unmet
    unknown: list[tuple[str, str]] = []  # (spec field, why it is unmet): not measured
    max_size = target.max_model_size_bytes
    if max_size is not None and variant.size_bytes is not None and variant.size_bytes > max_size:
        failed.append(f"size {variant.size_bytes} B exceeds maxModelSizeBytes {max_size} B")
    if target.max_latency_ms is not None:
        _latency(checks, target.max_latency_ms, failed, unknown)
    check_accuracy(checks, target, tolerance, failed, unknown)
    if target.allowed_ops is not None and variant.ops is not None:
        allowed = set(target.allowed_ops)
        used = [*variant.ops.builtin, *variant.ops.select_tf, *variant.ops.custom]
        unsupported = sorted({op for op in used if op not in allowed})
        if unsupported:
            failed.append(f"uses ops outside allowedOps: {', '.join(unsupported)}")

    unrunnable = _not_runnable_reason(variant, checks)
    reason = None
    if unrunnable is not None:
        reason = f"this runtime cannot run it: {unrunnable}"
        if unknown:
            reason += f"; not checked: {', '.join(dict.fromkeys(name for name, _ in unknown))}"
    if failed or reason is None:
        # A constraint known to fail decides: it would fail on the device too.
        failed += [why for _, why in unknown]
        verdict: Verdict = "misses" if failed else "meets"
        return TargetVerdict(
            meets=not failed, verdict=verdict, failed=failed, unverified_reason=reason
        )
    return TargetVerdict(
        meets=target.allow_unverified, verdict="unverified", unverified_reason=reason
    )


def _checks(variant: VariantReport) -> list[SignatureCheck]:
    """Each selected signature's figures; reports without them have the primary's only."""
    if variant.signature_checks:
        return variant.signature_checks
    return [SignatureCheck(key="", accuracy=variant.accuracy, benchmark=variant.benchmark)]


def _latency(
    checks: list[SignatureCheck], budget: float, failed: list[str], unknown: list[tuple[str, str]]
) -> None:
    measured = [
        (c, c.benchmark.latency_ms.p50) for c in checks if c.benchmark and c.benchmark.latency_ms
    ]
    missing = [c for c in checks if not (c.benchmark and c.benchmark.latency_ms)]
    if missing:
        bench = missing[0].benchmark
        why = bench.reason if bench and bench.reason else "benchmark disabled"
        where = signature_suffix(missing[0], checks)
        unknown.append(
            ("maxLatencyMs", f"latency unknown{where} ({why}); maxLatencyMs {budget} ms")
        )
        return
    worst, p50 = max(measured, key=lambda m: m[1])
    if p50 > budget:
        failed.append(
            f"p50 latency {p50:.2f} ms{signature_suffix(worst, checks)} exceeds "
            f"maxLatencyMs {budget} ms"
        )


def _not_runnable_reason(variant: VariantReport, checks: list[SignatureCheck]) -> str | None:
    """Why this runtime could not run the variant, or None if it could (or was not asked)."""
    for check in checks:
        if check.benchmark is not None and not check.benchmark.runnable:
            return (check.benchmark.reason or "not runnable") + signature_suffix(check, checks)
    # With validation and benchmark disabled nothing tried; the ops alone can say it.
    return not_runnable_reason(variant.ops) if variant.ops is not None else None


def select_variant(variants: Sequence[VariantReport]) -> Selection:
    """The smallest variant that meets every constraint; ties go to the lower p50 latency.

    Unverified variants take part only when spec.target.allowUnverified made them `meets`.
    """
    meeting = [v for v in variants if v.target and v.target.meets and v.size_bytes is not None]
    if not meeting:
        converted = [v for v in variants if v.status == VariantStatus.CONVERTED]
        if not converted:
            return Selection(name=None, reason="no variant converted")
        reasons = "; ".join(f"{v.name}: {_why_not(v)}" for v in converted)
        return Selection(name=None, reason=f"no variant meets the target ({reasons})")

    def key(v: VariantReport) -> tuple[int, float]:
        lat = v.benchmark.latency_ms if v.benchmark and v.benchmark.latency_ms else None
        return (v.size_bytes or 0, lat.p50 if lat else float("inf"))

    best = min(meeting, key=key)
    reason = f"smallest of {len(meeting)} variant(s) meeting the target ({best.size_bytes} B)"
    if best.target and best.target.verdict == "unverified":
        reason += (
            f"; unverified, allowed by target.allowUnverified: {best.target.unverified_reason}"
        )
    return Selection(name=best.name, reason=reason)


def _why_not(v: VariantReport) -> str:
    if v.target is None:
        return "not evaluated"
    if v.target.verdict == "unverified":
        return f"unverified ({v.target.unverified_reason}); set target.allowUnverified to accept it"
    return ", ".join(v.target.failed)
