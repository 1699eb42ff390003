"""Why a converter pod does not run, or why it died: pod and Event state -> a sentence that
names the cause and what to change. Pure functions on plain dicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tflite_operator.api.job_contract import CONTAINER_NAME

MEMORY_FIX = "raise spec.job.resources.limits.memory (and requests.memory)"
PLACEMENT_FIX = (
    "lower spec.job.resources.requests, or change spec.job.nodeSelector / spec.job.tolerations "
    "so that a node with room matches"
)
# Container waiting reasons that do not go away by waiting.
_WAITING_FIXES = {
    "ErrImagePull": "the converter image cannot be pulled: check the operator's converter image "
    "setting (CONVERTER_IMAGE) and the node's access to its registry",
    "ImagePullBackOff": "the converter image cannot be pulled: check the operator's converter "
    "image setting (CONVERTER_IMAGE) and the node's access to its registry",
    "InvalidImageName": "the operator's converter image setting (CONVERTER_IMAGE) is not a valid "
    "image reference",
    "CreateContainerConfigError": "a Secret or ConfigMap the pod needs is missing (the GCS key "
    "Secret named by the operator's CONVERTER_GCS_KEY_SECRET?)",
}


def container_status(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == CONTAINER_NAME:
            return cs
    return {}


def terminated(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    cs = container_status(pod)
    return (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
        "terminated"
    )


def death(pod: Mapping[str, Any]) -> str | None:
    """A pod killed from outside the converter: evicted, or OOM-killed by the kernel."""
    status = pod.get("status") or {}
    if status.get("reason") == "Evicted":
        why = status.get("message") or "the node ran short of a resource"
        return f"evicted ({why.strip()}); {MEMORY_FIX} if the node ran out of memory"
    term = terminated(pod)
    if term and term.get("reason") == "OOMKilled":
        return f"OOMKilled: the converter ran out of memory; {MEMORY_FIX}"
    return None


def not_running(pod: Mapping[str, Any]) -> str | None:
    """Why a pod has not started: unschedulable, or a container stuck waiting."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            why = cond.get("message") or "no node fits"
            return f"the pod cannot be scheduled ({why}); {PLACEMENT_FIX}"
    waiting = (container_status(pod).get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason")
    if not reason:
        return None
    detail = f" ({waiting['message']})" if waiting.get("message") else ""
    fix = _WAITING_FIXES.get(reason)
    return f"{reason}{detail}" + (f"; {fix}" if fix else "")


def rejected_pods(events: Sequence[Mapping[str, Any]]) -> str | None:
    """The Job controller could not create a pod (FailedCreate): the apiserver's message and
    the fix for the common causes."""
    failed = [e for e in events if e.get("reason") == "FailedCreate"]
    if not failed:
        return None
    latest = max(failed, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    text = str(latest.get("message") or "pod creation was refused")
    low = text.lower()
    if "serviceaccount" in low and "not found" in low:
        fix = "create that ServiceAccount, or change spec.job.serviceAccountName"
    elif "exceeded quota" in low:
        fix = "free room in the namespace's ResourceQuota, or lower spec.job.resources"
    elif "violates podsecurity" in low:
        fix = "the namespace's Pod Security level refuses the converter pod"
    else:
        fix = "change the spec.job fields the message names"
    return f"{text}; {fix}"
