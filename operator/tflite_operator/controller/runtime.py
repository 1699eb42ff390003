"""What every handler shares (it travels in Kopf's memo), and the one way to write a status.

Every status write is a read-modify-write guarded by the resource's resourceVersion and a
per-resource lock, so the resource's handlers, the Job handlers and the admission loop can
write the same status without losing each other's changes.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kopf

from tflite_operator.api.status import TERMINAL_PHASES, Phase
from tflite_operator.controller import metrics
from tflite_operator.controller import render as rd
from tflite_operator.controller import status as st
from tflite_operator.controller.job_index import JobIndex
from tflite_operator.controller.kube import ApiError, Kube
from tflite_operator.controller.queue import AdmissionQueue
from tflite_operator.controller.settings import Settings

log = logging.getLogger(__name__)

STATUS_WRITE_ATTEMPTS = 8
Compute = Callable[[dict[str, Any]], st.Outcome | None]


@dataclass
class Runtime:
    settings: Settings
    kube: Kube
    queue: AdmissionQueue
    jobs: JobIndex = field(default_factory=JobIndex)
    # Wakes the admission loop: a slot was freed or a conversion started waiting.
    wake: threading.Event = field(default_factory=threading.Event)
    admission_thread: threading.Thread | None = None
    # Set at shutdown; the admission thread is a daemon, so this is for tests and tidiness.
    stop: threading.Event = field(default_factory=threading.Event)
    _locks: defaultdict[tuple[str, str], threading.Lock] = field(
        default_factory=lambda: defaultdict(threading.Lock)
    )
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def lock_for(self, namespace: str, name: str) -> threading.Lock:
        # A lock is never dropped: a handler may still hold it, and a second lock for the
        # same resource would let two writers in.
        with self._locks_guard:
            return self._locks[(namespace, name)]

    def running_jobs(self) -> int:
        return self.queue.running(self.jobs.active_names(), self.jobs.all_names())


def runtime(memo: Any) -> Runtime:
    return memo.runtime  # type: ignore[no-any-return]


def _moves_back(prev: Mapping[str, Any], generation: int, outcome: st.Outcome) -> bool:
    """Statuses only move forward within a generation: a settled one is final (a late or
    replayed Job event must not rewrite its figures), and a started one is never Queued."""
    if prev.get("observedGeneration") != generation:
        return False
    if rd.is_settled(prev, generation):
        return True
    return outcome.phase == Phase.QUEUED and prev.get("phase") in (Phase.PENDING, Phase.RUNNING)


def write_status(
    rt: Runtime,
    namespace: str,
    name: str,
    uid: str | None,
    compute: Compute,
    current: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Read the resource, compute its outcome, write the status if it changed.

    `compute` gets the fresh resource and may return None to leave the status alone (for
    instance when the Job it was asked about belongs to an older generation). `current`, a
    copy the caller already holds, saves the first read; a stale copy costs one 409 retry.
    """
    with rt.lock_for(namespace, name):
        obj = dict(current) if current is not None else None
        for _ in range(STATUS_WRITE_ATTEMPTS):
            if obj is None:
                obj = rt.kube.get(Kube.conversion_path(namespace, name))
            if obj is None or (uid is not None and obj["metadata"]["uid"] != uid):
                return None
            outcome = compute(obj)
            if outcome is None:
                return obj
            generation = int(obj["metadata"]["generation"])
            prev = obj.get("status") or {}
            if _moves_back(prev, generation, outcome):
                return obj
            expected = len((obj.get("spec") or {}).get("variants") or []) or None
            new = rd.render(prev, generation, outcome, rd.now_rfc3339(), expected)
            if rd.same_status(prev, new):
                return obj
            patch = {
                # Optimistic lock: a concurrent write makes this one fail with 409, and retry.
                "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                "status": rd.merge_patch(prev, new),
            }
            try:
                updated = rt.kube.merge_patch(Kube.conversion_path(namespace, name, True), patch)
            except ApiError as err:
                if err.status == 409:
                    obj = None
                    continue
                if err.status == 404:
                    return None
                raise
            _on_transition(rt, obj, prev, new, outcome)
            return updated
    raise kopf.TemporaryError(f"status of {namespace}/{name} kept changing under us", delay=1)


def _on_transition(
    rt: Runtime,
    obj: Mapping[str, Any],
    prev: Mapping[str, Any],
    new: Mapping[str, Any],
    outcome: st.Outcome,
) -> None:
    """Events, metrics and the finished Job's expiry, once per change of phase or generation."""
    changed = prev.get("phase") != new.get("phase") or prev.get("observedGeneration") != new.get(
        "observedGeneration"
    )
    if not changed:
        return
    warning = outcome.phase == Phase.FAILED or outcome.stalled
    kopf.event(
        dict(obj),
        type="Warning" if warning else "Normal",
        reason=outcome.reason,
        message=outcome.message[:1024],
    )
    if outcome.phase in TERMINAL_PHASES:
        result = "succeeded" if outcome.phase == Phase.SUCCEEDED else "failed"
        metrics.CONVERSIONS.labels(result=result, reason=outcome.reason).inc()
        seconds = _seconds_between(outcome.start_time, outcome.completion_time)
        if seconds is not None:
            metrics.DURATION.labels(result=result).observe(seconds)
        if outcome.job_name:
            expire_job(rt, obj["metadata"]["namespace"], outcome.job_name)


def expire_job(rt: Runtime, namespace: str, job_name: str) -> None:
    """Start the finished Job's TTL now that its result is in the status.

    Jobs are created without ttlSecondsAfterFinished: with a short TTL the Job and its pods
    (and the converter's summary) could be gone before the operator read them, and a success
    would read as "Job deleted".
    """
    ttl = rt.settings.job_ttl_seconds
    if ttl is None:
        return
    try:
        rt.kube.merge_patch(
            Kube.jobs_path(namespace, job_name), {"spec": {"ttlSecondsAfterFinished": ttl}}
        )
    except ApiError as err:
        if err.status != 404:
            log.warning("could not set the TTL of Job %s/%s: %s", namespace, job_name, err)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    try:
        return (datetime.strptime(end, fmt) - datetime.strptime(start, fmt)).total_seconds()
    except ValueError:
        return None
