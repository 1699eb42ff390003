"""Starting converter Jobs: the admission loop and the one function that creates a Job.

A conversion that finds no free slot waits in the in-memory queue. One thread admits the
head of the queue whenever a slot frees (woken by the Job handlers) or every
queue_retry_seconds: waiting resources cost no timers, no API calls and no status writes.

Whatever admits a conversion reads the resource again under the slot lock and builds the
Job from that one read, so the Job's name (generation) and its spec always belong together
however the resource was edited while it waited.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Mapping
from typing import Any

from tflite_operator.api.errors import SpecError
from tflite_operator.api.manifest import parse_spec
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.api.status import Phase
from tflite_operator.controller import job_builder as jb
from tflite_operator.controller import metrics, tenancy
from tflite_operator.controller import render as rd
from tflite_operator.controller import status as st
from tflite_operator.controller.job_index import owner
from tflite_operator.controller.kube import ApiError, Kube
from tflite_operator.controller.queue import Waiter, free_slots
from tflite_operator.controller.runtime import Runtime, write_status

log = logging.getLogger(__name__)

# Creation errors that no retry will fix: the request itself is refused.
REJECTED = (400, 403, 422)


def _is_ours(job: Mapping[str, Any], name: str) -> bool:
    labels = (job.get("metadata") or {}).get("labels") or {}
    return labels.get(jb.LABEL_MANAGED_BY) == jb.MANAGER and owner(job)[0] == name


def start_job(rt: Runtime, obj: Mapping[str, Any]) -> None:
    """Create (or adopt) the Job of `obj`'s current generation and say so in its status.

    Call with the slot lock held and `obj` freshly read. Every ending writes a status: the
    Job's, or why there is none.
    """
    meta = obj["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    generation = int(meta["generation"])
    wanted = jb.job_name(name, generation)

    def settle(outcome: st.Outcome) -> None:
        def compute(o: dict[str, Any]) -> st.Outcome | None:
            return outcome if int(o["metadata"]["generation"]) == generation else None

        write_status(rt, namespace, name, uid, compute, current=obj)

    try:
        spec = parse_spec(dict(obj.get("spec") or {}))
    except SpecError as err:
        settle(st.invalid_spec(err.message))
        return
    if refusal := _tenancy_refusal(rt, namespace, spec):
        settle(st.tenancy_refused(refusal))
        return
    path = Kube.jobs_path(namespace, wanted)
    job = rt.kube.get(path)
    if job is None:
        try:
            job = rt.kube.create(Kube.jobs_path(namespace), jb.build_job(obj, spec, rt.settings))
        except ApiError as err:
            if err.status in REJECTED:
                settle(st.job_rejected(wanted, str(_message(err))))
                return
            if err.status != 409:
                raise
            job = rt.kube.get(path)  # created meanwhile: look at whose it is below
        else:
            rt.queue.created(namespace, wanted)
            metrics.JOBS_CREATED.inc()
            log.info("created Job %s/%s (%d running)", namespace, wanted, rt.running_jobs())
    if job is None:
        return  # created and deleted in between: the next event or the resync says what
    if owner(job)[1] != uid:
        if _is_ours(job, name):
            # Left by an earlier resource of the same name; the garbage collector removes it,
            # and the resource waits for the name to be free.
            rt.kube.delete(path)
            rt.queue.add(Waiter((namespace, name), uid, str(meta.get("creationTimestamp"))))
            return
        settle(st.job_conflict(wanted))
        return
    settle(st.job_created(wanted))


def _tenancy_refusal(rt: Runtime, namespace: str, spec: ConversionSpec) -> str | None:
    """The namespace's tenant policy, checked again: admission only saw the spec as it was
    when applied, and a policy written or tightened since must hold for new Jobs too."""
    name = rt.settings.tenant_policy_configmap
    if not name:
        return None
    try:
        policy = tenancy.load_policy(rt.kube, namespace, name=name)
    except ApiError as err:
        if err.status != 403:
            raise
        return (
            f"the operator may not read the tenant policy ConfigMap {namespace}/{name}: grant "
            "it get on that ConfigMap (the chart's Role does when rbac.create is true), or "
            "unset TENANT_POLICY_CONFIGMAP"
        )
    problems = tenancy.violations(
        spec, policy, namespace, when_missing=rt.settings.tenant_when_no_policy, policy_name=name
    )
    return "; ".join(problems) or None


def _message(err: ApiError) -> object:
    return err.body.get("message", err.body) if isinstance(err.body, Mapping) else err.body


def enqueue(rt: Runtime, obj: Mapping[str, Any]) -> None:
    """Wait for a slot (or take one now); a conversion still waiting says Queued."""
    meta = obj["metadata"]
    key = (meta["namespace"], meta["name"])
    rt.queue.add(Waiter(key, meta["uid"], str(meta.get("creationTimestamp") or "")))
    admit(rt)
    metrics.QUEUE_DEPTH.set(rt.queue.depth())
    generation = int(meta["generation"])

    def compute(o: dict[str, Any]) -> st.Outcome | None:
        # Checked under the status lock: once admitted, the admission wrote Pending.
        if key not in rt.queue or int(o["metadata"]["generation"]) != generation:
            return None
        return st.queued(rt.queue.limit)

    write_status(rt, key[0], key[1], meta["uid"], compute, current=obj)


def admit(rt: Runtime) -> None:
    """Start the oldest waiting conversions while slots are free."""
    tried: set[tuple[str, str]] = set()
    while True:
        with rt.queue.slot():
            running = rt.running_jobs()
            metrics.ACTIVE_JOBS.set(running)
            free = free_slots(rt.queue.limit, running)
            head = rt.queue.head()
            # A head put back (its Job name still taken) waits for the next round.
            if head is None or free == 0 or head.key in tried:
                return
            tried.add(head.key)
            rt.queue.remove(head.key)
            obj = rt.kube.get(Kube.conversion_path(*head.key))
            if (
                obj is None
                or obj["metadata"]["uid"] != head.uid
                or obj["metadata"].get("deletionTimestamp")
            ):
                continue
            if rd.is_settled(obj.get("status"), int(obj["metadata"]["generation"])):
                continue
            try:
                start_job(rt, obj)
            except Exception:
                # Back in the queue: an apiserver hiccup must not lose a waiting conversion.
                rt.queue.add(head)
                raise


_start_guard = threading.Lock()


def start(rt: Runtime, index: Any) -> None:
    """Attach Kopf's Job index and start the admission thread, once."""
    with _start_guard:
        if rt.admission_thread is not None:
            return
        rt.jobs.attach(index)
        # Kopf's context (where kopf.event posts to) is copied into handler threads; the
        # admission thread writes statuses and posts Events too, so it runs in a copy of it.
        context = contextvars.copy_context()
        rt.admission_thread = threading.Thread(
            target=context.run, args=(admission_loop, rt), name="admission", daemon=True
        )
        rt.admission_thread.start()


def admission_loop(rt: Runtime) -> None:
    while not rt.stop.is_set():
        rt.wake.wait(rt.settings.queue_retry_seconds)
        rt.wake.clear()
        if rt.stop.is_set():
            return
        try:
            admit(rt)
        except Exception:
            log.exception("admission failed; retrying in %ss", rt.settings.queue_retry_seconds)
        metrics.QUEUE_DEPTH.set(rt.queue.depth())


def in_progress(status: Mapping[str, Any] | None, generation: int) -> bool:
    status = status or {}
    return status.get("observedGeneration") == generation and status.get("phase") in (
        Phase.PENDING,
        Phase.RUNNING,
    )
