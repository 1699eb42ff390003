"""Kopf handlers: thin shells around job_builder, status and queue.

The handlers are sync functions (Kopf runs them in a thread pool) because they make several
blocking API calls in a row; every status write is a read-modify-write guarded by the
resource's resourceVersion, so the TFLiteConversion handlers and the Job handlers can write
the same status without losing each other's changes.
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

from tflite_operator import API_GROUP, API_VERSION
from tflite_operator.api.errors import SpecError
from tflite_operator.api.manifest import parse_spec
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.controller import job_builder as jb
from tflite_operator.controller import metrics
from tflite_operator.controller import status as st
from tflite_operator.controller.crd import PLURAL
from tflite_operator.controller.kube import ApiError, Kube
from tflite_operator.controller.queue import AdmissionQueue
from tflite_operator.controller.settings import Settings

log = logging.getLogger(__name__)

CONVERTER_JOBS = {jb.LABEL_MANAGED_BY: jb.MANAGER, jb.LABEL_COMPONENT: "converter"}
STATUS_WRITE_ATTEMPTS = 8


@dataclass
class Runtime:
    """What every handler shares; it travels in Kopf's memo."""

    settings: Settings
    kube: Kube
    queue: AdmissionQueue
    _locks: defaultdict[tuple[str, str], threading.Lock] = field(
        default_factory=lambda: defaultdict(threading.Lock)
    )
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def lock_for(self, namespace: str, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[(namespace, name)]

    def forget(self, namespace: str, name: str) -> None:
        # The status lock stays: a handler may still hold it, and a second lock for the same
        # resource would let two writers in.
        self.queue.forget((namespace, name))


def runtime(memo: Any) -> Runtime:
    return memo.runtime  # type: ignore[no-any-return]


# --- status writing -----------------------------------------------------------------------


def write_status(
    rt: Runtime,
    namespace: str,
    name: str,
    uid: str | None,
    compute: Callable[[dict[str, Any]], st.Outcome | None],
) -> dict[str, Any] | None:
    """Read the resource, compute its outcome, write the status if it changed.

    `compute` gets the fresh resource and may return None to leave the status alone (for
    instance when the Job it was asked about belongs to an older generation).
    """
    path = Kube.conversion_path(namespace, name)
    with rt.lock_for(namespace, name):
        for _ in range(STATUS_WRITE_ATTEMPTS):
            obj = rt.kube.get(path)
            if obj is None or (uid is not None and obj["metadata"]["uid"] != uid):
                return None
            outcome = compute(obj)
            if outcome is None:
                return obj
            generation = int(obj["metadata"]["generation"])
            prev = obj.get("status") or {}
            # A finished generation never goes back to running: late events are stale.
            if st.is_settled(prev, generation) and outcome.phase not in st.TERMINAL_PHASES:
                return obj
            new = st.render(prev, generation, outcome, st.now_rfc3339())
            if st.same_status(prev, new):
                return obj
            patch = {
                # Optimistic lock: a concurrent write makes this one fail with 409, and retry.
                "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                "status": st.merge_patch(prev, new),
            }
            try:
                updated = rt.kube.merge_patch(Kube.conversion_path(namespace, name, True), patch)
            except ApiError as err:
                if err.status == 409:
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
    """Events and metrics, once per change of phase (or of generation)."""
    changed = prev.get("phase") != new.get("phase") or prev.get("observedGeneration") != new.get(
        "observedGeneration"
    )
    if not changed:
        return
    warning = outcome.phase == st.Phase.FAILED
    kopf.event(
        dict(obj),
        type="Warning" if warning else "Normal",
        reason=outcome.reason,
        message=outcome.message[:1024],
    )
    if outcome.phase in st.TERMINAL_PHASES:
        result = "succeeded" if outcome.phase == st.Phase.SUCCEEDED else "failed"
        metrics.CONVERSIONS.labels(result=result, reason=outcome.reason).inc()
        seconds = _seconds_between(outcome.start_time, outcome.completion_time)
        if seconds is not None:
            metrics.DURATION.labels(result=result).observe(seconds)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    try:
        return (datetime.strptime(end, fmt) - datetime.strptime(start, fmt)).total_seconds()
    except ValueError:
        return None


def outcome_from_job(rt: Runtime, obj: Mapping[str, Any]) -> st.Outcome | None:
    """The outcome of the current generation's Job, if there is one and it is ours."""
    meta = obj["metadata"]
    namespace, generation = meta["namespace"], int(meta["generation"])
    job = rt.kube.get(Kube.jobs_path(namespace, jb.job_name(meta["name"], generation)))
    if job is None or jb.owner_uid(job) != meta["uid"]:
        return None
    return st.observe_job(job, rt.kube.pods_of_job(namespace, job))


# --- TFLiteConversion ---------------------------------------------------------------------


def _count_active_jobs(rt: Runtime) -> int:
    selector = ",".join(f"{k}={v}" for k, v in CONVERTER_JOBS.items())
    namespaces = rt.settings.namespaces or (None,)
    jobs = [j for ns in namespaces for j in rt.kube.list(Kube.jobs_path(ns), selector)]
    return sum(1 for j in jobs if st.is_active(j))


def _delete_other_generations(rt: Runtime, namespace: str, name: str, generation: int) -> None:
    selector = f"{jb.selector(name)},{jb.LABEL_COMPONENT}=converter"
    for job in rt.kube.list(Kube.jobs_path(namespace), selector):
        meta = job["metadata"]
        if jb.generation_of(job) != generation and not meta.get("deletionTimestamp"):
            if meta.get("annotations", {}).get(jb.ANNOTATION_CONVERSION, name) != name:
                continue  # a label-hash collision with another conversion: not ours
            rt.kube.delete(Kube.jobs_path(namespace, meta["name"]))
            log.info("deleted Job %s of an earlier generation of %s", meta["name"], name)


def _parse(spec: Mapping[str, Any]) -> ConversionSpec:
    return parse_spec(dict(spec))


def _ensure_job(
    rt: Runtime, body: kopf.Body, parsed: ConversionSpec, logger: kopf.Logger
) -> dict[str, Any] | None:
    """This generation's Job: the one that exists, or a new one if a slot is free.

    None means queued: the status says so, and the `retry_queued` timer asks again.
    """
    meta = body["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    wanted = jb.job_name(name, int(meta["generation"]))
    path = Kube.jobs_path(namespace, wanted)
    job = rt.kube.get(path)
    if job is not None and jb.owner_uid(job) != uid:
        # Left by an earlier resource of the same name; the garbage collector is on it.
        rt.kube.delete(path)
        raise kopf.TemporaryError(f"Job {wanted} belongs to a deleted {name}; waiting", delay=2)
    if job is not None:
        return job

    with rt.queue.slot():
        # Again under the lock: the timer and a change handler may both have got here.
        job = rt.kube.get(path)
        if job is not None:
            return job
        active = _count_active_jobs(rt)
        metrics.ACTIVE_JOBS.set(active)
        decision = rt.queue.ask((namespace, name), str(meta.get("creationTimestamp") or ""), active)
        if decision.admit:
            try:
                job = rt.kube.create(
                    Kube.jobs_path(namespace), jb.build_job(body, parsed, rt.settings)
                )
                metrics.JOBS_CREATED.inc()
                metrics.ACTIVE_JOBS.set(active + 1)
                logger.info(f"created Job {wanted} ({active + 1}/{rt.queue.limit or '-'})")
            except ApiError as err:
                if err.status != 409:
                    raise
                job = rt.kube.get(path)  # created by an earlier run that did not finish
    metrics.QUEUE_DEPTH.set(rt.queue.depth())
    if not decision.admit:
        queued = st.queued(decision.position, decision.active, decision.limit)
        write_status(rt, namespace, name, uid, lambda _obj: queued)
        return None
    if job is None:
        raise kopf.TemporaryError(f"Job {wanted} vanished right after creation", delay=2)
    return job


def _sync_from_job(rt: Runtime, body: kopf.Body) -> None:
    meta = body["metadata"]
    created = st.job_created(jb.job_name(meta["name"], int(meta["generation"])))
    write_status(
        rt,
        meta["namespace"],
        meta["name"],
        meta["uid"],
        lambda obj: outcome_from_job(rt, obj) or created,
    )


@kopf.on.resume(API_GROUP, API_VERSION, PLURAL)
@kopf.on.create(API_GROUP, API_VERSION, PLURAL)
@kopf.on.update(API_GROUP, API_VERSION, PLURAL, field="spec")
def reconcile(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    namespace: str,
    name: str,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """One Job per generation: adopt the one that exists, or create it when a slot is free."""
    rt = runtime(memo)
    uid, generation = meta["uid"], int(meta["generation"])
    try:
        parsed = _parse(spec)
    except SpecError as err:
        # The CRD's schema and CEL rules should have refused this; say so and stop.
        invalid = st.invalid_spec(err.message)
        write_status(rt, namespace, name, uid, lambda _obj: invalid)
        raise kopf.PermanentError(f"invalid spec: {err.message}") from None

    _delete_other_generations(rt, namespace, name, generation)
    if st.is_settled(status, generation):
        return  # a resume after the end: nothing to run again
    if _ensure_job(rt, body, parsed, logger) is not None:
        _sync_from_job(rt, body)


def _is_queued(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") == st.Phase.QUEUED


def retry_queued(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """While Queued, ask for a slot every queue_retry_seconds.

    A timer rather than a handler retrying with TemporaryError: Kopf logs every temporary
    failure as an error, posts it as an Event and records the retry on the object, which for
    a long queue would be an Event and two writes per waiting resource per retry.
    """
    if status.get("observedGeneration") != int(meta["generation"]):
        return  # the change handler has not seen this generation yet; it goes first
    try:
        parsed = _parse(spec)
    except SpecError:
        return  # reconcile has reported it
    rt = runtime(memo)
    if _ensure_job(rt, body, parsed, logger) is not None:
        _sync_from_job(rt, body)


def _in_progress(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in (st.Phase.PENDING, st.Phase.RUNNING)


def resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """While Pending or Running, read the Job again: watch events can be missed, and a Job
    deleted by hand must not leave the conversion Running forever."""
    rt = runtime(memo)
    meta = body["metadata"]

    def compute(obj: dict[str, Any]) -> st.Outcome | None:
        generation = int(obj["metadata"]["generation"])
        status = obj.get("status") or {}
        if status.get("observedGeneration") != generation or status.get("phase") not in (
            st.Phase.PENDING,
            st.Phase.RUNNING,
        ):
            return None  # a new generation or an ending is being handled elsewhere
        found = outcome_from_job(rt, obj)
        return found or st.job_lost(jb.job_name(obj["metadata"]["name"], generation))

    write_status(rt, meta["namespace"], meta["name"], meta["uid"], compute)


def register_timers(settings: Settings) -> None:
    """Timers whose interval is a setting, so they are registered once settings are known."""
    kopf.timer(
        API_GROUP,
        API_VERSION,
        PLURAL,
        id="resync",
        interval=settings.resync_seconds,
        initial_delay=settings.resync_seconds,
        when=_in_progress,
    )(resync)
    kopf.timer(
        API_GROUP,
        API_VERSION,
        PLURAL,
        id="retry_queued",
        interval=settings.queue_retry_seconds,
        when=_is_queued,
    )(retry_queued)


def _wants_output_removal(spec: kopf.Spec, **_: Any) -> bool:
    return bool((spec.get("output") or {}).get("deleteOnResourceDeletion"))


@kopf.on.delete(API_GROUP, API_VERSION, PLURAL, optional=True)
def forget(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    """Best effort, no finalizer: a deleted resource leaves the queue now, not when stale.

    Its Jobs need nothing from us: their ownerReferences make the garbage collector delete
    them (and their pods) once the resource is gone.
    """
    runtime(memo).forget(namespace, name)


@kopf.on.delete(API_GROUP, API_VERSION, PLURAL, when=_wants_output_removal, timeout=1800)
def remove_outputs(
    body: kopf.Body, spec: kopf.Spec, namespace: str, name: str, memo: kopf.Memo, **_: Any
) -> None:
    """spec.output.deleteOnResourceDeletion: a cleanup Job removes the outputs, then we let go.

    The cleanup runs in the converter image, with the conversion's ServiceAccount, because
    that is what holds the storage credentials; the operator itself has none.
    """
    rt = runtime(memo)
    rt.forget(namespace, name)
    try:
        parsed = _parse(spec)
    except SpecError as err:
        raise kopf.PermanentError(f"cannot remove outputs of an invalid spec: {err}") from None
    manifest = jb.build_cleanup_job(body, parsed, rt.settings)
    path = Kube.jobs_path(namespace, manifest["metadata"]["name"])
    job = rt.kube.get(path)
    if job is None:
        try:
            job = rt.kube.create(Kube.jobs_path(namespace), manifest)
        except ApiError as err:
            if err.status != 409:
                raise
            job = rt.kube.get(path) or {}
        kopf.info(body, reason="RemovingOutputs", message=f"Job {path.rsplit('/', 1)[1]}")
    if not st.is_finished(job):
        raise kopf.TemporaryError("waiting for the outputs to be removed", delay=3)
    outcome = st.observe_job(job, rt.kube.pods_of_job(namespace, job))
    if outcome.phase == st.Phase.FAILED:
        kopf.warn(body, reason="OutputsNotRemoved", message=outcome.message[:1024])
        # Deletion goes on: a resource stuck in Terminating helps nobody, the event says why.
        raise kopf.PermanentError(f"outputs not removed: {outcome.message}")
    kopf.info(body, reason="OutputsRemoved", message=f"removed the outputs at {parsed.output.uri}")


# --- converter Jobs -----------------------------------------------------------------------


@kopf.on.resume("batch", "v1", "jobs", labels=CONVERTER_JOBS)
@kopf.on.create("batch", "v1", "jobs", labels=CONVERTER_JOBS)
@kopf.on.update("batch", "v1", "jobs", labels=CONVERTER_JOBS, field="status")
def job_changed(body: kopf.Body, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """A converter Job moved: bring its conversion's status along (if it is still current)."""
    rt = runtime(memo)
    uid = jb.owner_uid(body)
    generation = jb.generation_of(body)
    owner = next(
        (r["name"] for r in body["metadata"].get("ownerReferences", []) if r.get("uid") == uid),
        None,
    )
    if uid is None or owner is None or generation is None:
        return

    def compute(obj: dict[str, Any]) -> st.Outcome | None:
        if int(obj["metadata"]["generation"]) != generation:
            return None  # a Job of an older spec, being deleted
        # Read the Job again: after a write conflict the event's copy may be out of date.
        return outcome_from_job(rt, obj)

    write_status(rt, namespace, owner, uid, compute)


# --- operator lifecycle -------------------------------------------------------------------


@kopf.on.probe(id="queue")
def queue_probe(memo: kopf.Memo, **_: Any) -> dict[str, int]:
    rt = runtime(memo)
    return {"waiting": rt.queue.depth(), "limit": rt.queue.limit}
