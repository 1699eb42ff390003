"""Whether each variant fits the device, and which one to ship. Pure functions on report data.

A variant is judged on every selected signature: a budget holds only if it holds for each
(the worst signature's latency, error and agreement count). A variant this runtime could not
validate or run is `unverified`, never `meets`: its measured budgets are unknown, and only
spec.target.allowUnverified lets it be selected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tflite_operator.api.report import Selection, VariantReport, VariantStatus
from tflite_operator.api.report_metrics import (
    AccuracyReport,
    SignatureCheck,
    TargetVerdict,
    Verdict,
)
from tflite_operator.api.spec_checks import Target
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
    _accuracy(checks, target, tolerance, failed, unknown)
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


def _accuracy(
    checks: list[SignatureCheck],
    target: Target,
    tolerance: float | None,
    failed: list[str],
    unknown: list[tuple[str, str]],
) -> None:
    """The accuracy budgets: what keeping layers in float can fix (accuracy_failures)."""
    if tolerance is not None:
        _error(checks, tolerance, failed, unknown)
    if target.min_top1_agreement is not None:
        _agreement(checks, target.min_top1_agreement, failed, unknown)
    for budget in METRIC_BUDGETS:
        limit = getattr(target, budget.attribute)
        if limit is not None:
            _metric(checks, budget, limit, failed, unknown)


def accuracy_budgets(target: Target, tolerance: float | None) -> list[str]:
    """The accuracy budgets in force, as the user wrote them ("maxOutputError 0.05")."""
    budgets = []
    if tolerance is not None:
        budgets.append(f"maxOutputError {tolerance}")
    if target.min_top1_agreement is not None:
        budgets.append(f"minTop1Agreement {target.min_top1_agreement}")
    for budget in METRIC_BUDGETS:
        limit = getattr(target, budget.attribute)
        if limit is not None:
            budgets.append(f"{budget.field} {limit}")
    return budgets


def accuracy_failures(
    checks: list[SignatureCheck], target: Target, tolerance: float | None
) -> list[str]:
    """Every unmet (or unmeasured) accuracy budget over the signatures' checks: the predicate
    accuracy control searches with, so a budget added to _accuracy is one it works towards."""
    failed: list[str] = []
    unknown: list[tuple[str, str]] = []
    _accuracy(checks, target, tolerance, failed, unknown)
    return failed + [why for _, why in unknown]


def _checks(variant: VariantReport) -> list[SignatureCheck]:
    """Each selected signature's figures; reports without them have the primary's only."""
    if variant.signature_checks:
        return variant.signature_checks
    return [SignatureCheck(key="", accuracy=variant.accuracy, benchmark=variant.benchmark)]


def _where(check: SignatureCheck, checks: list[SignatureCheck]) -> str:
    """Which signature a figure comes from, when there is more than one to tell apart."""
    return f" (signature {check.key!r})" if len(checks) > 1 else ""


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
        where = _where(missing[0], checks)
        unknown.append(
            ("maxLatencyMs", f"latency unknown{where} ({why}); maxLatencyMs {budget} ms")
        )
        return
    worst, p50 = max(measured, key=lambda m: m[1])
    if p50 > budget:
        failed.append(
            f"p50 latency {p50:.2f} ms{_where(worst, checks)} exceeds maxLatencyMs {budget} ms"
        )


def _error(
    checks: list[SignatureCheck],
    tolerance: float,
    failed: list[str],
    unknown: list[tuple[str, str]],
) -> None:
    measured = [(c, c.accuracy.max_abs_error) for c in checks if c.accuracy]
    if len(measured) < len(checks):
        unknown.append(
            ("maxOutputError", f"output error unknown (validation not run); budget {tolerance}")
        )
        return
    worst, error = max(measured, key=lambda m: m[1])
    if error > tolerance:
        failed.append(
            f"max abs error {error:.4g}{_where(worst, checks)} exceeds maxOutputError {tolerance}"
        )


def _agreement(
    checks: list[SignatureCheck], minimum: float, failed: list[str], unknown: list[tuple[str, str]]
) -> None:
    # Top-1 agreement applies to the signatures with a classifier-like output; the others
    # have no argmax to agree on. At least one must have it, or the budget is unchecked.
    measured = [
        (c, c.accuracy.top1_agreement)
        for c in checks
        if c.accuracy and c.accuracy.top1_agreement is not None
    ]
    if not measured or any(c.accuracy is None for c in checks):
        unknown.append(
            ("minTop1Agreement", "top-1 agreement unknown (no classifier output validated)")
        )
        return
    worst, agreement = min(measured, key=lambda m: m[1])
    if agreement < minimum:
        failed.append(
            f"top-1 agreement {agreement:.3f}{_where(worst, checks)} below minTop1Agreement "
            f"{minimum}"
        )


def _not_runnable_reason(variant: VariantReport, checks: list[SignatureCheck]) -> str | None:
    """Why this runtime could not run the variant, or None if it could (or was not asked)."""
    for check in checks:
        if check.benchmark is not None and not check.benchmark.runnable:
            return (check.benchmark.reason or "not runnable") + _where(check, checks)
    # With validation and benchmark disabled nothing tried; the ops alone can say it.
    return not_runnable_reason(variant.ops) if variant.ops is not None else None


@dataclass(frozen=True)
class MetricBudget:
    """A target budget on one figure of AccuracyReport (metrics.py computes them)."""

    attribute: str  # Target's field, snake_case
    field: str  # the same, as the user writes it
    what: str
    read: Callable[[AccuracyReport], float | None]
    at_least: bool  # a minimum (higher is better) or a maximum
    shown: Callable[[float], str]
    unmeasured: str  # why a validated signature may have no such figure
    primary_only: bool = False  # the labelled dataset scores the primary signature only


METRIC_BUDGETS = (
    MetricBudget(
        attribute="min_snr_db",
        field="minSnrDb",
        what="SNR",
        read=lambda a: a.min_snr_db,
        at_least=True,
        shown=lambda v: f"{v:.1f} dB",
        unmeasured="no output compared",
    ),
    MetricBudget(
        attribute="max_kl_divergence",
        field="maxKlDivergence",
        what="KL divergence",
        read=lambda a: a.max_kl_divergence,
        at_least=False,
        shown=lambda v: f"{v:.4g}",
        unmeasured="no probability output validated: rows of a classifier output that are "
        "non-negative and sum to 1",
    ),
    MetricBudget(
        attribute="min_top5_agreement",
        field="minTop5Agreement",
        what="top-5 agreement",
        read=lambda a: a.top5_agreement,
        at_least=True,
        shown=lambda v: f"{v:.3f}",
        unmeasured="no classifier output with more than 5 classes validated",
    ),
    MetricBudget(
        attribute="max_accuracy_drop",
        field="maxAccuracyDrop",
        what="task accuracy drop",
        read=lambda a: a.accuracy_drop_points,
        at_least=False,
        shown=lambda v: f"{v:.2f} points",
        unmeasured="no labels in validation.datasetUri",
        primary_only=True,
    ),
)


def _metric(
    checks: list[SignatureCheck],
    budget: MetricBudget,
    limit: float,
    failed: list[str],
    unknown: list[tuple[str, str]],
) -> None:
    """The worst signature's figure against the budget; NaN (an output with NaN or inf) is the
    worst of all and fails it. Signatures without the figure (no classifier output, say) are
    skipped, but at least one must have it, and every one must have been validated."""
    scope = checks[:1] if budget.primary_only else checks
    if any(c.accuracy is None for c in scope):
        why = "validation not run"
    else:
        measured = [
            (c, v) for c in scope if c.accuracy and (v := budget.read(c.accuracy)) is not None
        ]
        why = budget.unmeasured if not measured else ""
    if why:
        unknown.append((budget.field, f"{budget.what} unknown ({why}); {budget.field} {limit}"))
        return

    def badness(item: tuple[SignatureCheck, float]) -> float:
        value = item[1]
        if math.isnan(value):
            return math.inf
        return -value if budget.at_least else value

    worst, value = max(measured, key=badness)
    holds = value >= limit if budget.at_least else value <= limit  # False for NaN
    if not holds:
        word = "below" if budget.at_least else "exceeds"
        failed.append(
            f"{budget.what} {budget.shown(value)}{_where(worst, checks)} {word} "
            f"{budget.field} {limit}"
        )


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
