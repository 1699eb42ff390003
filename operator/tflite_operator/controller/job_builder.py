"""TFLiteConversion spec -> converter Job manifest. Pure: no API calls, no clock.

The spec reaches the converter as data (one JSON environment variable), never as a shell
string, and the pod passes the `restricted` Pod Security Standard.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from tflite_operator import API_GROUP, API_VERSION, KIND
from tflite_operator.api.job_contract import (
    CONTAINER_NAME,
    DELETE_OUTPUTS_ARG,
    GCS_KEY_DIR,
    GENERATION_ENV,
    NAME_ENV,
    PERMANENT_EXIT_CODES,
    RESERVED_ENV,
    SCRATCH,
    SPEC_ENV,
    TERMINATION_LOG,
    TERMINATION_LOG_ENV,
    UID_ENV,
)
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.controller.settings import Settings

MANAGER = "tflite-operator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_CONVERSION = f"{API_GROUP}/conversion"
LABEL_GENERATION = f"{API_GROUP}/generation"
# Label values stop at 63 characters; the full name is kept here.
ANNOTATION_CONVERSION = f"{API_GROUP}/conversion-name"

MAX_NAME = 63


def _hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def label_value(name: str) -> str:
    """A resource name as a label value: names may be 253 long, label values 63."""
    if len(name) <= MAX_NAME:
        return name
    return f"{name[: MAX_NAME - 9].rstrip('-.')}-{_hash(name)}"


def job_name(conversion: str, generation: int) -> str:
    """`<name>-g<generation>`, deterministic so that a rerun finds the Job it created.

    Kept to 63 characters because the Job controller copies it into the pods' `job-name`
    label; longer names are cut and made unique again with a hash of the full name.
    """
    suffix = f"-g{generation}"
    if len(conversion) + len(suffix) <= MAX_NAME:
        return conversion + suffix
    keep = MAX_NAME - len(suffix) - 9
    return f"{conversion[:keep].rstrip('-.')}-{_hash(conversion)}{suffix}"


def selector(conversion: str | None = None) -> str:
    """Label selector for the operator's Jobs, or one conversion's Jobs."""
    sel = f"{LABEL_MANAGED_BY}={MANAGER}"
    if conversion is not None:
        sel += f",{LABEL_CONVERSION}={label_value(conversion)}"
    return sel


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        # Foreground deletion of the resource waits for its Jobs.
        "blockOwnerDeletion": True,
    }


def spec_json(spec: ConversionSpec) -> str:
    return json.dumps(spec.to_wire(), separators=(",", ":"), sort_keys=True)


def _env(meta: Mapping[str, Any], spec: ConversionSpec, settings: Settings) -> list[dict[str, str]]:
    env = [{"name": k, "value": v} for k, v in sorted(settings.converter_extra_env.items())]
    env = [e for e in env if e["name"] not in RESERVED_ENV]
    ours = {
        SPEC_ENV: spec_json(spec),
        NAME_ENV: meta["name"],
        UID_ENV: meta["uid"],
        GENERATION_ENV: str(meta["generation"]),
        # Named although it is the converter's default: the file the converter writes and
        # the terminationMessagePath the kubelet reads are spelled out side by side.
        TERMINATION_LOG_ENV: TERMINATION_LOG,
        # The root file system is read-only: temp files and caches go to the emptyDir.
        "TMPDIR": SCRATCH,
        "HOME": SCRATCH,
    }
    if settings.gcs_key_secret:
        ours["GOOGLE_APPLICATION_CREDENTIALS"] = f"{GCS_KEY_DIR}/{settings.gcs_key_secret_key}"
    overridable = ("TMPDIR", "HOME")
    names = {e["name"] for e in env}
    for k, v in ours.items():
        if k in overridable and k in names:
            continue
        env.append({"name": k, "value": v})
    return env


def _resources(spec: ConversionSpec, settings: Settings) -> dict[str, dict[str, str]]:
    res = spec.job.resources
    if res and (res.requests or res.limits):
        return {k: dict(v) for k, v in (("requests", res.requests), ("limits", res.limits)) if v}
    return {k: dict(v) for k, v in settings.default_resources.items()}


def labels(conversion: str, generation: int, component: str = "converter") -> dict[str, str]:
    return {
        LABEL_MANAGED_BY: MANAGER,
        LABEL_NAME: "tflite-converter",
        LABEL_COMPONENT: component,
        LABEL_CONVERSION: label_value(conversion),
        LABEL_GENERATION: str(generation),
    }


def pod_security_context(settings: Settings) -> dict[str, Any]:
    uid = settings.run_as_user
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def build_job(body: Mapping[str, Any], spec: ConversionSpec, settings: Settings) -> dict[str, Any]:
    """The converter Job for the resource `body` at its current generation."""
    meta = body["metadata"]
    name, generation = meta["name"], int(meta["generation"])
    job_labels = labels(name, generation)
    sa = spec.job.service_account_name or settings.converter_service_account
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # Never an API token: the converter calls no Kubernetes API, and neither Workload
        # Identity (the GKE metadata server) nor a key Secret needs the token file.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(settings),
        "containers": [
            {
                "name": CONTAINER_NAME,
                "image": settings.converter_image,
                "imagePullPolicy": settings.image_pull_policy,
                "command": list(settings.converter_command),
                "env": _env(meta, spec, settings),
                "resources": _resources(spec, settings),
                "securityContext": copy.deepcopy(CONTAINER_SECURITY_CONTEXT),
                "terminationMessagePath": TERMINATION_LOG,
                # The log tail stands in when the converter dies before writing its summary.
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
            }
        ],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    }
    if sa:
        pod_spec["serviceAccountName"] = sa
    node_selector = spec.job.node_selector or settings.converter_node_selector
    if node_selector:
        pod_spec["nodeSelector"] = dict(node_selector)
    if spec.job.tolerations:
        pod_spec["tolerations"] = [t.to_wire() for t in spec.job.tolerations]
    elif settings.converter_tolerations:
        pod_spec["tolerations"] = [dict(t) for t in settings.converter_tolerations]
    if settings.gcs_key_secret:
        pod_spec["volumes"].append(
            {
                "name": "gcs-key",
                "secret": {
                    "secretName": settings.gcs_key_secret,
                    "items": [
                        {"key": settings.gcs_key_secret_key, "path": settings.gcs_key_secret_key}
                    ],
                    "defaultMode": 0o440,
                },
            }
        )
        pod_spec["containers"][0]["volumeMounts"].append(
            {"name": "gcs-key", "mountPath": GCS_KEY_DIR, "readOnly": True}
        )

    job_spec: dict[str, Any] = {
        "backoffLimit": spec.job.backoff_limit,
        "activeDeadlineSeconds": spec.job.active_deadline_seconds,
        "podFailurePolicy": {
            "rules": [
                # An evicted or preempted pod is not the converter's fault: do not count it.
                {
                    "action": "Ignore",
                    "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                },
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": CONTAINER_NAME,
                        "operator": "In",
                        "values": list(PERMANENT_EXIT_CODES),
                    },
                },
            ]
        },
        "template": {"metadata": {"labels": job_labels}, "spec": pod_spec},
    }
    # No ttlSecondsAfterFinished here: the operator sets it once the result is in the
    # status (runtime.expire_job), so a short TTL cannot delete the Job before it is read.

    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(name, generation),
            "namespace": meta["namespace"],
            "labels": job_labels,
            "annotations": {ANNOTATION_CONVERSION: name},
            "ownerReferences": [owner_reference(body)],
        },
        "spec": job_spec,
    }


def cleanup_job_name(conversion: str, uid: str) -> str:
    """One per resource (uid), so a new resource of the same name gets its own."""
    suffix = f"-rm-{uid[:8]}"
    if len(conversion) + len(suffix) <= MAX_NAME:
        return conversion + suffix
    keep = MAX_NAME - len(suffix) - 9
    return f"{conversion[:keep].rstrip('-.')}-{_hash(conversion)}{suffix}"


def build_cleanup_job(
    body: Mapping[str, Any], spec: ConversionSpec, settings: Settings
) -> dict[str, Any]:
    """The Job that removes a conversion's outputs: the converter image, the same pod shape.

    It runs `tflite-operator job --delete-outputs`: the converter deletes, of the spec's
    outputs, only the objects tagged with this resource's uid (another resource may own the
    same URI), and treats missing files as already deleted.
    """
    job = build_job(body, spec, settings)
    meta = body["metadata"]
    component = labels(meta["name"], int(meta["generation"]), component="cleanup")
    job["metadata"]["name"] = cleanup_job_name(meta["name"], meta["uid"])
    job["metadata"]["labels"] = component
    tmpl = job["spec"]["template"]
    tmpl["metadata"]["labels"] = component
    tmpl["spec"]["containers"][0]["args"] = [DELETE_OUTPUTS_ARG]
    # Deleting a few objects needs neither the converter's memory nor an hour.
    tmpl["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }
    job["spec"]["activeDeadlineSeconds"] = 600
    job["spec"]["backoffLimit"] = 2
    return job
