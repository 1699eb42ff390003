"""Job and Pod state -> the TFLiteConversion's status. Pure functions on plain dicts.

The status model here is also the CRD's status schema (controller/crd.py), so the operator
cannot write a field the apiserver would prune without a test noticing.

Conditions follow the kstatus convention that `kubectl wait --for=condition=Ready`, Flux and
Argo CD understand: `Ready` (True when done), `Reconciling` (True while work is in progress),
`Stalled` (True when it cannot progress without a change from the user). Two specific ones
say what a user asks next: did every variant convert (`Converted`), and does any variant fit
the device (`TargetMet`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from tflite_operator.api import errors
from tflite_operator.api.job_contract import CONTAINER_NAME
from tflite_operator.api.report import Summary, VariantSummary


class Phase(StrEnum):
    QUEUED = "Queued"
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


TERMINAL_PHASES = (Phase.SUCCEEDED, Phase.FAILED)

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
CONVERTED = "Converted"
TARGET_MET = "TargetMet"

# --- the status model (also the CRD's status schema) ---------------------------------------

DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class _Status(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Condition(_Status):
    type: Annotated[str, Field(min_length=1, max_length=316)]
    status: Literal["True", "False", "Unknown"]
    reason: Annotated[str, Field(min_length=1, max_length=1024)]
    message: Annotated[str, Field(max_length=32768)] = ""
    last_transition_time: DateTime
    observed_generation: Annotated[int | None, Field(ge=0)] = None


class VariantResult(_Status):
    name: str
    ok: bool
    uri: str | None = None
    size_bytes: int | None = None
    size: Annotated[str | None, Field(description="sizeBytes for humans, e.g. 1.2 MiB")] = None
    compression_ratio: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    speedup: Annotated[float | None, Field(description="source p50 / variant p50")] = None
    max_abs_error: float | None = None
    top1_agreement: float | None = None
    meets_target: bool | None = None
    note: str | None = None


class SelectedVariant(_Status):
    name: str | None = None
    reason: str | None = None
    uri: str | None = None
    size_bytes: int | None = None
    size: str | None = None
    p50_ms: float | None = None


def _doc(text: str) -> Any:
    return Field(description=text)


class ConversionStatus(_Status):
    observed_generation: Annotated[
        int | None, _doc("The metadata.generation this status describes.")
    ] = None
    phase: Annotated[Phase | None, _doc("Queued, Pending, Running, Succeeded or Failed.")] = None
    conditions: Annotated[
        list[Condition], _doc("Ready, Reconciling, Stalled (kstatus); Converted, TargetMet.")
    ] = []
    job_name: Annotated[str | None, _doc("The converter Job of this generation.")] = None
    queue_position: Annotated[
        int | None, _doc("Place in the queue for a converter Job slot (1: next).")
    ] = None
    start_time: Annotated[DateTime | None, _doc("When the converter Job started.")] = None
    completion_time: Annotated[DateTime | None, _doc("When the converter Job ended.")] = None
    source_size_bytes: Annotated[int | None, _doc("Size of the source model.")] = None
    source_p50_ms: Annotated[
        float | None, _doc("Median latency of the source model in TensorFlow, ms.")
    ] = None
    variants: Annotated[
        list[VariantResult] | None, _doc("One entry per spec.variants item, in that order.")
    ] = None
    selected: Annotated[
        SelectedVariant | None, _doc("The variant to ship, or no name and the reason.")
    ] = None
    report_uri: Annotated[str | None, _doc("report.json with every figure.")] = None


# Fields owned by others that a status rewrite must not clear: Kopf keeps its state in `kopf`.
FOREIGN_STATUS_FIELDS = ("kopf",)

# --- outcomes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """Where one generation of a conversion stands; `render` turns it into status."""

    phase: Phase
    reason: str
    message: str
    job_name: str | None = None
    queue_position: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    summary: Summary | None = None
    exit_code: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def queued(position: int, active: int, limit: int) -> Outcome:
    return Outcome(
        Phase.QUEUED,
        "Queued",
        f"waiting for a converter Job slot: {active} of {limit} running; "
        f"position {position} in the queue",
        queue_position=position,
    )


def invalid_spec(message: str) -> Outcome:
    return Outcome(Phase.FAILED, errors.SpecError.reason, message, exit_code=2)


def job_created(job_name: str) -> Outcome:
    return Outcome(Phase.PENDING, "JobCreated", f"Job {job_name} created", job_name=job_name)


def job_lost(job_name: str) -> Outcome:
    return Outcome(
        Phase.FAILED,
        "JobDeleted",
        f"Job {job_name} was deleted before it finished; change the spec to run the "
        "conversion again",
        job_name=job_name,
    )


def _job_conditions(job: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        c.get("type", ""): c
        for c in (job.get("status") or {}).get("conditions") or []
        if c.get("status") == "True"
    }


def is_finished(job: Mapping[str, Any]) -> bool:
    conds = _job_conditions(job)
    return "Complete" in conds or "Failed" in conds


def is_active(job: Mapping[str, Any]) -> bool:
    """Counts against the concurrency limit: not finished and not being deleted."""
    return not is_finished(job) and not (job.get("metadata") or {}).get("deletionTimestamp")


def _container_status(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == CONTAINER_NAME:
            return cs
    return {}


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    cs = _container_status(pod)
    return (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
        "terminated"
    )


def _created(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("creationTimestamp") or "")


def parse_summary(message: str | None) -> Summary | None:
    if not message:
        return None
    try:
        return Summary.from_termination_message(message)
    except (ValueError, ValidationError):
        # FallbackToLogsOnError: the message is the log tail when the converter died before
        # writing its summary (OOM kill, crash at import).
        return None


# "SourceNotFound: gs://... does not exist" -> SourceNotFound, when it is a known reason.
_REASON_PREFIX = re.compile(r"^([A-Z][A-Za-z]+): ")


KNOWN_REASONS = errors.REASON_EXIT_CODES
# Exit code -> reason, for when the message does not name one: the first class per code.
EXIT_REASONS: dict[int, str] = {}
for _reason, _code in sorted(KNOWN_REASONS.items(), key=lambda kv: kv[0]):
    EXIT_REASONS.setdefault(_code, _reason)
EXIT_REASONS[3] = "SourceError"  # SourceNotFound and InvalidSource share it


def failure_reason(exit_code: int | None, message: str | None) -> str:
    if message and (m := _REASON_PREFIX.match(message)) and m.group(1) in KNOWN_REASONS:
        return m.group(1)
    if exit_code is not None and exit_code in EXIT_REASONS:
        return EXIT_REASONS[exit_code]
    return "ConverterFailed"


def _trim(text: str, limit: int = 1500) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Job condition reasons the user can act on without reading pod logs.
_JOB_FAILURE_HINTS = {
    "DeadlineExceeded": "the converter ran longer than spec.job.activeDeadlineSeconds; "
    "raise it, or give the Job more CPU in spec.job.resources",
    "BackoffLimitExceeded": "the converter failed more often than spec.job.backoffLimit allows",
}


def observe_job(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> Outcome:
    """The outcome a Job (and its pods) stands for."""
    name = str((job.get("metadata") or {}).get("name"))
    st = job.get("status") or {}
    conds = _job_conditions(job)
    times = {"start_time": st.get("startTime"), "completion_time": st.get("completionTime")}
    pods = sorted(pods, key=_created)

    if "Complete" in conds:
        succeeded = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
        term = _terminated(succeeded[-1]) if succeeded else None
        summary = parse_summary((term or {}).get("message"))
        # Complete has no completionTime only in odd cases; the condition time is close.
        times["completion_time"] = times["completion_time"] or conds["Complete"].get(
            "lastTransitionTime"
        )
        if summary is None:
            return Outcome(
                Phase.SUCCEEDED,
                "Succeeded",
                f"Job {name} succeeded, but its pod's summary could not be read (pod gone?); "
                "the figures are in the report at spec.output.uri",
                job_name=name,
                exit_code=0,
                **times,
            )
        return Outcome(
            Phase.SUCCEEDED,
            "Succeeded",
            _success_message(summary),
            job_name=name,
            summary=summary,
            exit_code=0,
            **times,
        )

    if "Failed" in conds:
        times["completion_time"] = times["completion_time"] or conds["Failed"].get(
            "lastTransitionTime"
        )
        failed = [p for p in pods if _terminated(p)]
        term = _terminated(failed[-1]) if failed else None
        job_reason = str(conds["Failed"].get("reason") or "")
        if job_reason == "DeadlineExceeded" or term is None:
            reason = job_reason or "JobFailed"
            hint = _JOB_FAILURE_HINTS.get(reason, "")
            text = str(conds["Failed"].get("message") or "the Job failed")
            return Outcome(
                Phase.FAILED,
                reason,
                f"Job {name}: {text}" + (f"; {hint}" if hint else ""),
                job_name=name,
                **times,
            )
        code = term.get("exitCode")
        raw = str(term.get("message") or "")
        summary = parse_summary(raw)
        if summary is not None:
            code = summary.exit_code or code
            detail = summary.error or "the converter failed without saying why"
            reason = failure_reason(code, detail)
            if detail.startswith(f"{reason}: "):
                detail = detail[len(reason) + 2 :]
        elif term.get("reason") == "OOMKilled":
            reason = "OOMKilled"
            detail = "the converter ran out of memory; raise spec.job.resources.limits.memory"
        else:
            reason = failure_reason(code, raw)
            detail = raw or str(term.get("reason") or "no termination message")
        attempts = int(st.get("failed") or 0)
        return Outcome(
            Phase.FAILED,
            reason,
            _trim(f"{detail} (exit code {code}, Job {name}, {attempts} failed attempt(s))"),
            job_name=name,
            summary=summary,
            exit_code=code,
            **times,
        )

    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    failed_before = int(st.get("failed") or 0)
    retry = ""
    if failed_before:
        last = [p for p in pods if _terminated(p)]
        why = str((_terminated(last[-1]) or {}).get("message") or "") if last else ""
        s = parse_summary(why)
        why = (s.error if s else why) or "no termination message"
        retry = f"; attempt {failed_before} failed ({_trim(why, 300)}), retrying"
    if running:
        return Outcome(
            Phase.RUNNING,
            "Converting",
            f"converter pod {running[-1]['metadata']['name']} is running{retry}",
            job_name=name,
            **times,
        )
    waiting = ""
    for p in reversed(pods):
        w = (_container_status(p).get("state") or {}).get("waiting") or {}
        if w.get("reason"):
            waiting = f": {w['reason']}" + (f" ({w['message']})" if w.get("message") else "")
            break
    return Outcome(
        Phase.PENDING,
        "JobPending",
        f"Job {name} is waiting for its pod to start{waiting}{retry}",
        job_name=name,
        **times,
    )


def _success_message(summary: Summary) -> str:
    n = len(summary.variants)
    ok = sum(1 for v in summary.variants if v.ok)
    head = f"{ok} of {n} variants converted"
    if summary.selected:
        sel = next((v for v in summary.variants if v.name == summary.selected), None)
        figures = []
        if sel and sel.size_bytes is not None:
            figures.append(human_size(sel.size_bytes))
        if sel and sel.p50_ms is not None:
            figures.append(f"p50 {sel.p50_ms:.3g} ms")
        more = f" ({', '.join(figures)})" if figures else ""
        return f"{head}; selected {summary.selected}{more}"
    return f"{head}; none selected: {summary.selection_reason or 'no variant fits the target'}"


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


# --- rendering ----------------------------------------------------------------------------


def now_rfc3339(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(
    ctype: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int,
    prev: Mapping[str, Mapping[str, Any]],
    now: str,
) -> dict[str, Any]:
    value = "Unknown" if status is None else ("True" if status else "False")
    old = prev.get(ctype)
    # The time the status last flipped, not the time of the last write.
    since = old.get("lastTransitionTime") if old and old.get("status") == value else None
    return {
        "type": ctype,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or now,
        "observedGeneration": generation,
    }


def _variant(v: VariantSummary) -> dict[str, Any]:
    out = v.to_wire()
    if v.size_bytes is not None:
        out["size"] = human_size(v.size_bytes)
    return VariantResult.model_validate(out).model_dump(by_alias=True, exclude_none=True)


def _selected(summary: Summary) -> dict[str, Any]:
    sel: dict[str, Any] = {"name": summary.selected, "reason": summary.selection_reason}
    chosen = next((v for v in summary.variants if v.name == summary.selected), None)
    if chosen:
        sel |= {"uri": chosen.uri, "sizeBytes": chosen.size_bytes, "p50Ms": chosen.p50_ms}
        if chosen.size_bytes is not None:
            sel["size"] = human_size(chosen.size_bytes)
    return {k: v for k, v in sel.items() if v is not None}


def render(
    prev_status: Mapping[str, Any] | None,
    generation: int,
    outcome: Outcome,
    now: str,
) -> dict[str, Any]:
    """The whole status (Kopf's fields aside) for one outcome; lists are written whole."""
    prev_status = prev_status or {}
    prev = {c.get("type"): c for c in prev_status.get("conditions") or [] if c.get("type")}
    # A new generation's clock starts again even if the Ready value is the same.
    if prev_status.get("observedGeneration") != generation:
        prev = {k: v for k, v in prev.items() if v.get("status") == "Unknown"}
    phase = outcome.phase
    msg = outcome.message
    done = phase == Phase.SUCCEEDED
    failed = phase == Phase.FAILED
    in_progress = not (done or failed)

    def cond(ctype: str, status: bool | None, reason: str, message: str) -> dict[str, Any]:
        return _condition(ctype, status, reason, message, generation, prev, now)

    conditions = [
        cond(READY, done, outcome.reason, msg),
        cond(
            RECONCILING,
            in_progress,
            outcome.reason if in_progress else "Done",
            msg if in_progress else "",
        ),
        cond(STALLED, failed, outcome.reason if failed else "NotStalled", msg if failed else ""),
    ]
    summary = outcome.summary
    if summary and summary.variants:
        bad = [v.name for v in summary.variants if not v.ok]
        conditions.append(
            cond(
                CONVERTED,
                not bad,
                "AllConverted" if not bad else "VariantsFailed",
                f"all {len(summary.variants)} variants converted"
                if not bad
                else f"failed: {', '.join(bad)}",
            )
        )
        verdicts = [v.meets_target for v in summary.variants if v.meets_target is not None]
        if verdicts:
            meeting = [v.name for v in summary.variants if v.meets_target]
            conditions.append(
                cond(
                    TARGET_MET,
                    bool(meeting),
                    "VariantMeetsTarget" if meeting else "NoVariantMeetsTarget",
                    f"meet the target: {', '.join(meeting)}"
                    if meeting
                    else _trim(summary.selection_reason or "no variant meets the target", 1000),
                )
            )

    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": str(phase),
        "conditions": conditions,
        "jobName": outcome.job_name,
        "queuePosition": outcome.queue_position,
        "startTime": outcome.start_time,
        "completionTime": outcome.completion_time,
    }
    if summary:
        status |= {
            "sourceSizeBytes": summary.source_size_bytes,
            "sourceP50Ms": summary.source_p50_ms,
            "variants": [_variant(v) for v in summary.variants],
            "selected": (
                _selected(summary) if summary.selected or summary.selection_reason else None
            ),
            "reportUri": summary.report_uri,
        }
    # Keep the job name of an earlier write (e.g. Pending) when this outcome does not know it.
    if status["jobName"] is None and prev_status.get("observedGeneration") == generation:
        status["jobName"] = prev_status.get("jobName")
    return {k: v for k, v in status.items() if v is not None}


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
    """This generation already ended; a resume must not start it again."""
    status = status or {}
    return status.get("observedGeneration") == generation and status.get("phase") in (
        Phase.SUCCEEDED,
        Phase.FAILED,
    )
