"""Job, Pod and Event state -> where a conversion stands (an Outcome). Pure functions.

controller/render.py turns an Outcome into the status model of api/status.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tflite_operator.api import errors
from tflite_operator.api.report import Summary
from tflite_operator.api.status import Phase
from tflite_operator.api.units import human_size
from tflite_operator.controller import pod_causes as pc


@dataclass(frozen=True)
class Outcome:
    """Where one generation of a conversion stands."""

    phase: Phase
    reason: str
    message: str
    job_name: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    summary: Summary | None = None
    exit_code: int | None = None
    # Not finished, but it cannot progress without a change from the user (kstatus Stalled).
    stalled: bool = False


def queued(limit: int) -> Outcome:
    # No queue position or counts here: they change with every admission, and rewriting a
    # thousand waiting statuses on each one is what the status must not cost.
    return Outcome(
        Phase.QUEUED,
        "Queued",
        f"waiting for one of the {limit} converter Job slots (the operator's "
        "MAX_CONCURRENT_JOBS); the oldest waiting conversion starts first",
    )


def invalid_spec(message: str) -> Outcome:
    return Outcome(Phase.FAILED, errors.SpecError.reason, message, exit_code=2)


def job_created(job_name: str) -> Outcome:
    return Outcome(Phase.PENDING, "JobCreated", f"Job {job_name} created", job_name=job_name)


def job_lost(job_name: str) -> Outcome:
    return Outcome(
        Phase.FAILED,
        "JobDeleted",
        f"Job {job_name} was deleted before it finished; to run the conversion again, change "
        "the spec (any field), or delete and re-apply the resource",
        job_name=job_name,
    )


# No job_name in these two: there is no Job of ours to point at (or to expire).
def job_rejected(job_name: str, message: str) -> Outcome:
    return Outcome(
        Phase.FAILED,
        "JobRejected",
        trim(
            f"the apiserver refused to create Job {job_name}: {message}; fix what it names "
            "(a spec.job field, the namespace's ResourceQuota or policy), then change the spec "
            "to try again"
        ),
    )


def job_conflict(job_name: str) -> Outcome:
    return Outcome(
        Phase.FAILED,
        "JobNameConflict",
        f"a Job named {job_name} exists that this operator did not create for this resource; "
        "it was left alone: delete or rename it (then change the spec to try again), or "
        "rename the TFLiteConversion",
    )


def tenancy_refused(message: str) -> Outcome:
    return Outcome(Phase.FAILED, "TenantPolicy", trim(message))


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


def trim(text: str, limit: int = 1500) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _succeeded(name: str, conds: Mapping[str, Any], pods: list, times: dict) -> Outcome:
    done = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
    summary = parse_summary((pc.terminated(done[-1]) or {}).get("message") if done else None)
    # Complete has no completionTime only in odd cases; the condition time is close.
    times["completion_time"] = times["completion_time"] or conds["Complete"].get(
        "lastTransitionTime"
    )
    message = (
        _success_message(summary)
        if summary
        else f"Job {name} succeeded, but its pod's summary could not be read (pod gone?); "
        "the figures are in the report at spec.output.uri"
    )
    return Outcome(
        Phase.SUCCEEDED, "Succeeded", message, name, summary=summary, exit_code=0, **times
    )


def _pod_trouble(pods: list) -> str | None:
    for pod in reversed(pods):
        why = pc.death(pod) or pc.not_running(pod)
        if why:
            return why
    return None


def _failed(name: str, st: Mapping[str, Any], conds: Mapping, pods: list, times: dict) -> Outcome:
    times["completion_time"] = times["completion_time"] or conds["Failed"].get("lastTransitionTime")
    attempts = int(st.get("failed") or 0)
    failed = [p for p in pods if pc.terminated(p) or pc.death(p)]
    last = failed[-1] if failed else None
    term = pc.terminated(last) if last else None
    job_reason = str(conds["Failed"].get("reason") or "") or "JobFailed"
    summary = parse_summary(str((term or {}).get("message") or ""))
    if summary is None and (trouble := _pod_trouble(pods)):
        # Killed from outside (OOM, eviction) or never started: that is the cause to name,
        # not the Job's DeadlineExceeded or BackoffLimitExceeded that followed from it.
        reason = "OOMKilled" if trouble.startswith("OOMKilled") else job_reason
        if trouble.startswith("evicted"):
            reason = "Evicted"
        text = f"{trouble} (Job {name}: {conds['Failed'].get('message') or job_reason}"
        return Outcome(Phase.FAILED, reason, trim(f"{text}, {attempts} failed attempt(s))"),
                       name, **times)  # fmt: skip
    if job_reason == "DeadlineExceeded" or term is None:
        hint = _JOB_FAILURE_HINTS.get(job_reason, "")
        text = str(conds["Failed"].get("message") or "the Job failed")
        return Outcome(
            Phase.FAILED, job_reason, f"Job {name}: {text}" + (f"; {hint}" if hint else ""),
            name, **times,
        )  # fmt: skip
    code = term.get("exitCode")
    raw = str(term.get("message") or "")
    if summary is not None:
        code = summary.exit_code or code
        detail = summary.error or "the converter failed without saying why"
        reason = failure_reason(code, detail)
        if detail.startswith(f"{reason}: "):
            detail = detail[len(reason) + 2 :]
    else:
        reason = failure_reason(code, raw)
        detail = raw or str(term.get("reason") or "no termination message")
    return Outcome(
        Phase.FAILED,
        reason,
        trim(f"{detail} (exit code {code}, Job {name}, {attempts} failed attempt(s))"),
        job_name=name,
        summary=summary,
        exit_code=code,
        **times,
    )


# Job condition reasons the user can act on without reading pod logs.
_JOB_FAILURE_HINTS = {
    "DeadlineExceeded": "the converter ran longer than spec.job.activeDeadlineSeconds; "
    "raise it, or give the Job more CPU in spec.job.resources",
    "BackoffLimitExceeded": "the converter failed more often than spec.job.backoffLimit allows",
}


def observe_job(
    job: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]] = (),
) -> Outcome:
    """The outcome a Job (its pods, and the Events about it) stands for."""
    name = str((job.get("metadata") or {}).get("name"))
    st = job.get("status") or {}
    conds = _job_conditions(job)
    times = {"start_time": st.get("startTime"), "completion_time": st.get("completionTime")}
    pods = sorted(pods, key=_created)
    if "Complete" in conds:
        return _succeeded(name, conds, pods, times)
    if "Failed" in conds:
        return _failed(name, st, conds, pods, times)

    retry = ""
    if failed_before := int(st.get("failed") or 0):
        last = [p for p in pods if pc.terminated(p) or pc.death(p)]
        why = (pc.death(last[-1]) if last else None) or (
            str((pc.terminated(last[-1]) or {}).get("message") or "") if last else ""
        )
        s = parse_summary(why)
        why = (s.error if s else why) or "no termination message"
        retry = f"; attempt {failed_before} failed ({trim(why, 300)}), retrying"
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    if running:
        pod = running[-1]["metadata"]["name"]
        return Outcome(
            Phase.RUNNING, "Converting", f"converter pod {pod} is running{retry}", name, **times
        )
    live = [p for p in pods if (p.get("status") or {}).get("phase") in (None, "Pending")]
    if not live and (rejected := pc.rejected_pods(events)):
        return Outcome(
            Phase.PENDING, "PodsRejected", trim(f"Job {name} cannot create its pod: {rejected}"),
            name, stalled=True, **times,
        )  # fmt: skip
    trouble = next((w for p in reversed(live) if (w := pc.not_running(p))), None)
    waiting = f": {trouble}" if trouble else ""
    return Outcome(
        Phase.PENDING,
        "JobPending",
        trim(f"Job {name} is waiting for its pod to start{waiting}{retry}"),
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
        if sel and sel.verdict == "unverified":
            figures.append("unverified here, allowed by target.allowUnverified")
        more = f" ({', '.join(figures)})" if figures else ""
        return f"{head}; selected {summary.selected}{more}"
    return f"{head}; none selected: {summary.selection_reason or 'no variant fits the target'}"
