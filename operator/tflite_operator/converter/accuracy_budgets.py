"""The accuracy budgets of spec.target, checked over a variant's signatures. Pure functions.

A budget holds only if it holds for each signature (the worst signature's error, agreement or
metric counts). A budget that could not be measured is reported as unknown, not as met.
evaluate_target (target.py) and accuracy control (accuracy_control_stage.py) both judge with
check_accuracy, so a budget added here is one both work towards.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tflite_operator.api.report_metrics import AccuracyReport, SignatureCheck
from tflite_operator.api.spec_checks import Target


def check_accuracy(
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
    accuracy control searches with, so a budget added to check_accuracy is one it works towards."""
    failed: list[str] = []
    unknown: list[tuple[str, str]] = []
    check_accuracy(checks, target, tolerance, failed, unknown)
    return failed + [why for _, why in unknown]


def signature_suffix(check: SignatureCheck, checks: list[SignatureCheck]) -> str:
    """Which signature a figure comes from, when there is more than one to tell apart."""
    return f" (signature {check.key!r})" if len(checks) > 1 else ""


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
            f"max abs error {error:.4g}{signature_suffix(worst, checks)} exceeds "
            f"maxOutputError {tolerance}"
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
            f"top-1 agreement {agreement:.3f}{signature_suffix(worst, checks)} below "
            f"minTop1Agreement {minimum}"
        )


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
            f"{budget.what} {budget.shown(value)}{signature_suffix(worst, checks)} {word} "
            f"{budget.field} {limit}"
        )
