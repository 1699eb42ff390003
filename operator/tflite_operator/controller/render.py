"""An Outcome -> the resource's whole status, as the api/status.py model dumped by alias.

Pure functions on plain data: no API calls, the clock passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tflite_operator.api.report import Summary, VariantSummary
from tflite_operator.api.status import (
    CONVERTED,
    FOREIGN_STATUS_FIELDS,
    READY,
    RECONCILING,
    STALLED,
    TARGET_MET,
    TERMINAL_PHASES,
    Condition,
    ConversionStatus,
    Phase,
    SelectedVariant,
    VariantResult,
)
from tflite_operator.api.units import human_size
from tflite_operator.controller.status import Outcome, trim


def now_rfc3339(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _variant(v: VariantSummary) -> VariantResult:
    size = human_size(v.size_bytes) if v.size_bytes is not None else None
    return VariantResult.model_validate(v.to_wire() | {"size": size})


def _selected(summary: Summary) -> SelectedVariant:
    chosen = next((v for v in summary.variants if v.name == summary.selected), None)
    if chosen is None:
        return SelectedVariant(name=summary.selected, reason=summary.selection_reason)
    return SelectedVariant(
        name=summary.selected,
        reason=summary.selection_reason,
        uri=chosen.uri,
        size_bytes=chosen.size_bytes,
        size=human_size(chosen.size_bytes) if chosen.size_bytes is not None else None,
        p50_ms=chosen.p50_ms,
    )


class _Conditions:
    """Builds conditions that keep lastTransitionTime while their value stays the same."""

    def __init__(self, prev_status: Mapping[str, Any], generation: int, now: str) -> None:
        prev = {c.get("type"): c for c in prev_status.get("conditions") or [] if c.get("type")}
        # A new generation's clock starts again even if the Ready value is the same.
        if prev_status.get("observedGeneration") != generation:
            prev = {k: v for k, v in prev.items() if v.get("status") == "Unknown"}
        self.prev, self.generation, self.now = prev, generation, now
        self.items: list[Condition] = []

    def add(self, ctype: str, status: bool, reason: str, message: str) -> None:
        value = "True" if status else "False"
        old = self.prev.get(ctype)
        since = old.get("lastTransitionTime") if old and old.get("status") == value else None
        self.items.append(
            Condition(
                type=ctype,
                status=value,
                reason=reason,
                message=message,
                last_transition_time=since or self.now,
                observed_generation=self.generation,
            )
        )


def _summary_conditions(conds: _Conditions, summary: Summary, expected: int | None) -> None:
    listed = len(summary.variants)
    total = max(expected or 0, summary.variants_total or 0, listed)
    bad = [v.name for v in summary.variants if not v.ok]
    omitted = total - listed
    if bad:
        conds.add(CONVERTED, False, "VariantsFailed", f"failed: {', '.join(bad)}")
    elif omitted:
        # Not "all converted": the summary could not say, and the report can.
        conds.add(
            CONVERTED,
            summary.ok,
            "SummaryTruncated",
            f"{listed} of {total} variants listed here, all converted: the other {omitted} "
            f"did not fit the pod's 4096-byte termination message; see {summary.report_uri}",
        )
    else:
        conds.add(CONVERTED, True, "AllConverted", f"all {total} variants converted")
    verdicts = [v.meets_target for v in summary.variants if v.meets_target is not None]
    if verdicts:
        # An unverified variant is never said to meet the target, even when
        # spec.target.allowUnverified lets it be selected.
        meeting = [v.name for v in summary.variants if v.meets_target and not _unverified(v)]
        allowed = [v.name for v in summary.variants if v.meets_target and _unverified(v)]
        if meeting:
            reason, message = "VariantMeetsTarget", f"meet the target: {', '.join(meeting)}"
            if allowed:
                message += f"; unverified here, allowed by the target: {', '.join(allowed)}"
        elif allowed:
            reason = "OnlyUnverifiedVariants"
            message = (
                f"no variant verified here; unverified, allowed by target.allowUnverified: "
                f"{', '.join(allowed)}"
            )
        else:
            reason = "NoVariantMeetsTarget"
            message = trim(summary.selection_reason or "no variant meets the target", 1000)
        conds.add(TARGET_MET, bool(meeting or allowed), reason, message)


def _unverified(v: VariantSummary) -> bool:
    return v.verdict == "unverified"


def render(
    prev_status: Mapping[str, Any] | None,
    generation: int,
    outcome: Outcome,
    now: str,
    expected_variants: int | None = None,
) -> dict[str, Any]:
    """The whole status (Kopf's fields aside) for one outcome; lists are written whole.

    `expected_variants`: how many variants the spec asks for, so that a summary cut short to
    fit the termination message is never read as "all converted".
    """
    prev_status = prev_status or {}
    conds = _Conditions(prev_status, generation, now)
    msg = outcome.message
    done = outcome.phase == Phase.SUCCEEDED
    in_progress = outcome.phase not in TERMINAL_PHASES
    stalled = outcome.phase == Phase.FAILED or outcome.stalled
    conds.add(READY, done, outcome.reason, msg)
    conds.add(
        RECONCILING,
        in_progress,
        outcome.reason if in_progress else "Done",
        msg if in_progress else "",
    )
    conds.add(STALLED, stalled, outcome.reason if stalled else "NotStalled", msg if stalled else "")
    summary = outcome.summary
    if summary and (summary.variants or summary.variants_total):
        _summary_conditions(conds, summary, expected_variants)

    status = ConversionStatus(
        observed_generation=generation,
        phase=outcome.phase,
        conditions=conds.items,
        # Keep the job name of an earlier write (e.g. Pending) when this outcome lacks it.
        job_name=outcome.job_name
        or (
            prev_status.get("jobName")
            if prev_status.get("observedGeneration") == generation
            else None
        ),
        start_time=outcome.start_time,
        completion_time=outcome.completion_time,
    )
    if summary:
        listed = len(summary.variants)
        total = max(expected_variants or 0, summary.variants_total or 0, listed)
        status.source_size_bytes = summary.source_size_bytes
        status.source_p50_ms = summary.source_p50_ms
        status.variants = [_variant(v) for v in summary.variants]
        status.variants_omitted = (total - listed) or None
        if summary.selected or summary.selection_reason:
            status.selected = _selected(summary)
        status.report_uri = summary.report_uri
    return status.to_wire()


def merge_patch(prev_status: Mapping[str, Any] | None, new_status: Mapping[str, Any]) -> dict:
    """A JSON merge patch from the old to the new status: stale fields are set to null."""
    patch: dict[str, Any] = dict(new_status)
    for key in prev_status or {}:
        if key not in new_status and key not in FOREIGN_STATUS_FIELDS:
            patch[key] = None
    return patch


def same_status(prev_status: Mapping[str, Any] | None, new_status: Mapping[str, Any]) -> bool:
    prev = {k: v for k, v in (prev_status or {}).items() if k not in FOREIGN_STATUS_FIELDS}
    return prev == dict(new_status)


def is_settled(status: Mapping[str, Any] | None, generation: int) -> bool:
    """This generation already ended: its status is final and never rewritten."""
    status = status or {}
    return status.get("observedGeneration") == generation and status.get("phase") in (
        Phase.SUCCEEDED,
        Phase.FAILED,
    )
