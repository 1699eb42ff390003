"""Kopf handlers: thin shells around admission, status, render and job_builder.

The handlers are sync functions (Kopf runs them in a thread pool) because they make blocking
API calls; the probe is async so that it answers even while every worker is busy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import kopf

from tflite_operator import API_GROUP, API_VERSION
from tflite_operator.api.errors import SpecError
from tflite_operator.api.manifest import parse_spec
from tflite_operator.api.status import Phase
from tflite_operator.controller import admission
from tflite_operator.controller import job_builder as jb
from tflite_operator.controller import render as rd
from tflite_operator.controller import status as st
from tflite_operator.controller.crd import PLURAL
from tflite_operator.controller.job_index import generation_of, index_entry, owner
from tflite_operator.controller.kube import Kube
from tflite_operator.controller.runtime import Runtime, expire_job, runtime, write_status
from tflite_operator.controller.settings import Settings

log = logging.getLogger(__name__)

CONVERTER_JOBS = {jb.LABEL_MANAGED_BY: jb.MANAGER, jb.LABEL_COMPONENT: "converter"}


def _ready(rt: Runtime, converter_jobs: Any) -> None:
    """Called by the resource handlers, which Kopf starts only once its indexes are filled:
    from then on the index can be trusted to count running Jobs, and admission may begin."""
    admission.start(rt, converter_jobs)


# --- reading a Job --------------------------------------------------------------------------


def _events_of(rt: Runtime, namespace: str, job: Mapping[str, Any]) -> list[dict[str, Any]]:
    selector = f"involvedObject.uid={job['metadata']['uid']}"
    path = f"/api/v1/namespaces/{quote(namespace)}/events?fieldSelector={quote(selector)}"
    return list(rt.kube.request("GET", path).get("items") or [])


def outcome_from_job(rt: Runtime, obj: Mapping[str, Any]) -> st.Outcome | None:
    """The outcome of the current generation's Job, if there is one and it is ours."""
    meta = obj["metadata"]
    namespace, generation = meta["namespace"], int(meta["generation"])
    job = rt.kube.get(Kube.jobs_path(namespace, jb.job_name(meta["name"], generation)))
    if job is None or owner(job)[1] != meta["uid"]:
        return None
    pods = rt.kube.pods_of_job(namespace, job)
    # Events only while no pod runs: they say why none could be created.
    events = [] if pods or st.is_finished(job) else _events_of(rt, namespace, job)
    return st.observe_job(job, pods, events)


# --- TFLiteConversion ---------------------------------------------------------------------


@kopf.index("batch", "v1", "jobs", labels=CONVERTER_JOBS)
def converter_jobs(body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return index_entry(body)


def _delete_other_generations(rt: Runtime, namespace: str, name: str, uid: str, gen: int) -> None:
    for job in rt.jobs.of(namespace, name):
        # Only Jobs labelled as ours (the index holds no others) and owned by this resource.
        stale = job.owner_uid == uid and job.generation != gen
        if stale and rt.kube.delete(Kube.jobs_path(namespace, job.name)):
            log.info("deleted Job %s of an earlier generation of %s", job.name, name)


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
    converter_jobs: kopf.Index,
    **_: Any,
) -> None:
    """One Job per generation: adopt the one that exists, or wait for a slot to create it."""
    rt = runtime(memo)
    _ready(rt, converter_jobs)
    uid, generation = meta["uid"], int(meta["generation"])
    current = dict(body)  # apiVersion and kind too: Events about it need them

    def this_generation(outcome: st.Outcome) -> Any:
        return lambda o: outcome if int(o["metadata"]["generation"]) == generation else None

    try:
        parse_spec(dict(spec))
    except SpecError as err:
        # The CRD's schema and CEL rules should have refused this; say so and stop.
        write_status(rt, namespace, name, uid, this_generation(st.invalid_spec(err.message)))
        raise kopf.PermanentError(f"invalid spec: {err.message}") from None

    mine = rt.jobs.of(namespace, name)
    if any(j.owner_uid == uid and j.generation != generation for j in mine):
        with rt.queue.slot():  # not while the admission loop creates one of them
            _delete_other_generations(rt, namespace, name, uid, generation)
    wanted = jb.job_name(name, generation)
    if rd.is_settled(status, generation):
        if any(j.name == status.get("jobName") for j in mine):
            expire_job(rt, namespace, status["jobName"])  # in case we stopped before it
        return  # a resume after the end: nothing to run again
    known = any(j.generation == generation and j.owner_uid == uid for j in mine)
    if known or admission.in_progress(status, generation):
        # A Job was made for this generation: follow it, or, gone, say so (never re-run it).
        followed = False

        def compute(o: dict[str, Any]) -> st.Outcome | None:
            nonlocal followed
            lost = admission.in_progress(o.get("status"), generation)
            outcome = outcome_from_job(rt, o) or (st.job_lost(wanted) if lost else None)
            followed = outcome is not None
            return outcome

        write_status(rt, namespace, name, uid, compute)
        if followed:
            return
    admission.enqueue(rt, current)


def resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """While Pending or Running, read the Job again: watch events can be missed, and the
    status must say why a pod does not start."""
    rt = runtime(memo)
    meta = body["metadata"]

    def compute(obj: dict[str, Any]) -> st.Outcome | None:
        generation = int(obj["metadata"]["generation"])
        if not admission.in_progress(obj.get("status"), generation):
            return None  # a new generation or an ending is being handled elsewhere
        found = outcome_from_job(rt, obj)
        return found or st.job_lost(jb.job_name(obj["metadata"]["name"], generation))

    write_status(rt, meta["namespace"], meta["name"], meta["uid"], compute)


def _in_progress(status: kopf.Status, meta: kopf.Meta, **_: Any) -> bool:
    return admission.in_progress(status, int(meta.get("generation") or 0))


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


def _wants_output_removal(spec: kopf.Spec, **_: Any) -> bool:
    return bool((spec.get("output") or {}).get("deleteOnResourceDeletion"))


@kopf.on.delete(API_GROUP, API_VERSION, PLURAL, optional=True)
def forget(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    """Best effort, no finalizer: a deleted resource leaves the queue now.

    Its Jobs need nothing from us: their ownerReferences make the garbage collector delete
    them (and their pods) once the resource is gone.
    """
    rt = runtime(memo)
    rt.queue.remove((namespace, name))
    rt.wake.set()


@kopf.on.delete(API_GROUP, API_VERSION, PLURAL, when=_wants_output_removal, timeout=1800)
def remove_outputs(
    body: kopf.Body, spec: kopf.Spec, namespace: str, name: str, memo: kopf.Memo, **_: Any
) -> None:
    """spec.output.deleteOnResourceDeletion: a cleanup Job removes the outputs, then we let go.

    The cleanup runs in the converter image, with the conversion's ServiceAccount, because
    that is what holds the storage credentials; the operator itself has none.
    """
    rt = runtime(memo)
    rt.queue.remove((namespace, name))
    try:
        parsed = parse_spec(dict(spec))
    except SpecError as err:
        raise kopf.PermanentError(f"cannot remove outputs of an invalid spec: {err}") from None
    manifest = jb.build_cleanup_job(body, parsed, rt.settings)
    path = Kube.jobs_path(namespace, manifest["metadata"]["name"])
    job = rt.kube.get(path)
    if job is None:
        job = rt.kube.create(Kube.jobs_path(namespace), manifest)
        kopf.info(body, reason="RemovingOutputs", message=f"Job {path.rsplit('/', 1)[1]}")
    if not st.is_finished(job):
        raise kopf.TemporaryError("waiting for the outputs to be removed", delay=3)
    outcome = st.observe_job(job, rt.kube.pods_of_job(namespace, job))
    if outcome.phase == Phase.FAILED:
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
    if st.is_finished(body):
        rt.wake.set()  # a slot is free
    owner_name, uid = owner(body)
    generation = generation_of(body)
    if uid is None or owner_name is None or generation is None:
        return

    def compute(obj: dict[str, Any]) -> st.Outcome | None:
        if int(obj["metadata"]["generation"]) != generation:
            return None  # a Job of an older spec, being deleted
        # Read the Job again: after a write conflict the event's copy may be out of date.
        return outcome_from_job(rt, obj)

    write_status(rt, namespace, owner_name, uid, compute)


@kopf.on.event("batch", "v1", "jobs", labels=CONVERTER_JOBS)
def job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A Job gone: a slot is free; and one deleted before its result was read ends its
    conversion as JobDeleted now, the outcome the resync and a restart reach later.

    An event handler, not on.delete: without a finalizer of ours (which would keep users
    from deleting Jobs) Kopf calls delete handlers only for objects that linger. An event
    handler keeps no state and swallows errors; the resync timer is the safety net.
    """
    if event.get("type") != "DELETED":
        return
    rt = runtime(memo)
    rt.wake.set()
    body = event["object"]
    owner_name, uid = owner(body)
    generation = generation_of(body)
    if uid is None or owner_name is None or generation is None:
        return
    name = body["metadata"]["name"]

    def compute(obj: dict[str, Any]) -> st.Outcome | None:
        if int(obj["metadata"]["generation"]) != generation:
            return None
        if not admission.in_progress(obj.get("status"), generation):
            return None
        return outcome_from_job(rt, obj) or st.job_lost(name)

    write_status(rt, body["metadata"]["namespace"], owner_name, uid, compute)


# --- operator lifecycle -------------------------------------------------------------------


@kopf.on.probe(id="queue")
async def queue_probe(memo: kopf.Memo, **_: Any) -> dict[str, int]:
    # Async and in memory: a liveness probe must never wait behind busy handler threads.
    rt = runtime(memo)
    return {"waiting": rt.queue.depth(), "limit": rt.queue.limit}


@kopf.on.cleanup()
def stop_admission(memo: kopf.Memo, **_: Any) -> None:
    runtime(memo).stop.set()
    runtime(memo).wake.set()
