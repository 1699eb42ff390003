"""The control loop under the conditions users live with (issue 8), on the real control plane:
edits while queued, Jobs refused or taken by name, Jobs deleted by hand, pods that cannot be
created, settled results after pods vanish and the operator restarts.

Most tests here run converter pods as the test node's probe image sleeping (the operator's
--converter-image and --converter-command): what is under test is the operator's reading of
Jobs and pods, and a pod that stays Running is what these scenarios need. The probe is a
static binary built with the node (no `make images` needed), starts in a fraction of a second
and leaves when its pod is deleted (SIGTERM). The tests whose point is a real result run the
real converter image (product_images).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from test_operator_controlplane import (
    FAST,
    READY_TIMEOUT,
    conditions,
    conversion,
    describe,
    get,
    jobs,
    pods_of,
    ready,
)

from cluster_helpers import wait_for
from controlplane.images import PROBE_IMAGE

pytestmark = [pytest.mark.controlplane, pytest.mark.gcs, pytest.mark.slow]

SLEEPER = [
    "--converter-image", PROBE_IMAGE,
    "--converter-command", json.dumps(["/probe", "sleep", "600"]),
]  # fmt: skip


def _spec(uri: str = "gs://models/m", out: str = "gs://out/m/", **extra: Any) -> dict[str, Any]:
    return {
        "source": {"uri": uri},
        "output": {"uri": out},
        "variants": [{"name": "fp32"}],
        **FAST,
        **extra,
    }


def _stalled(cluster, ns: str, name: str, reason: str):
    c = conditions(get(cluster, ns, name)).get("Stalled") or {}
    return c if c.get("status") == "True" and c.get("reason") == reason else None


def _phase(cluster, ns: str, name: str) -> str | None:
    return ((get(cluster, ns, name) or {}).get("status") or {}).get("phase")


def test_edit_while_queued_starts_one_job_with_the_latest_spec(
    kube_cluster, crd, restricted_namespace, start_operator
):
    """Scenario 1: the Job's name and spec come from one read of the resource."""
    ns = restricted_namespace
    op = start_operator([ns], max_jobs=1, extra=SLEEPER)
    kube_cluster.apply(conversion("busy", _spec()), ns)
    wait_for(lambda: _phase(kube_cluster, ns, "busy") == "Running", 60, "busy to run",
             diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip
    kube_cluster.apply(conversion("edited", _spec()), ns)
    wait_for(lambda: _phase(kube_cluster, ns, "edited") == "Queued", 30, "Queued", diag=op.tail)
    for n in (2, 3):
        spec = _spec(variants=[{"name": f"v{i}"} for i in range(n)])
        spec["variants"] = [{"name": f"v{i}"} for i in range(n)]
        kube_cluster.apply(conversion("edited", spec), ns)
    assert get(kube_cluster, ns, "edited")["metadata"]["generation"] == 3
    assert not jobs(kube_cluster, ns, "edited")  # still waiting: no slot

    kube_cluster.kubectl("delete", "-n", ns, "tflc", "busy", "--wait=false")
    (job,) = wait_for(lambda: jobs(kube_cluster, ns, "edited"), 60, "edited's Job",
                      diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip
    assert job["metadata"]["name"] == "edited-g3"
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert [v["name"] for v in json.loads(env["TFLITE_OPERATOR_SPEC"])["variants"]] == [
        "v0", "v1", "v2",
    ]  # fmt: skip
    assert env["TFLITE_OPERATOR_GENERATION"] == "3"
    time.sleep(3)  # nothing else follows: no Job of an earlier generation
    assert [j["metadata"]["name"] for j in jobs(kube_cluster, ns, "edited")] == ["edited-g3"]


def test_job_refused_by_the_apiserver_ends_stalled_with_its_message(
    kube_cluster, crd, restricted_namespace, start_operator
):
    """Scenario 6: a ResourceQuota refuses the Job; the status says so instead of a retry
    loop that leaves a new resource without any status."""
    ns = restricted_namespace
    kube_cluster.apply(
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-jobs"},
         "spec": {"hard": {"count/jobs.batch": "0"}}}, ns,
    )  # fmt: skip
    op = start_operator([ns], extra=SLEEPER)
    kube_cluster.apply(conversion("refused", _spec()), ns)
    c = wait_for(lambda: _stalled(kube_cluster, ns, "refused", "JobRejected"), 60, "JobRejected",
                 diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip
    assert "exceeded quota" in c["message"] and "no-jobs" in c["message"]
    assert _phase(kube_cluster, ns, "refused") == "Failed"


def test_a_job_the_operator_does_not_own_is_left_alone(
    kube_cluster, crd, restricted_namespace, start_operator
):
    """Scenario 7: a user's Job that happens to be named <name>-g1 is not deleted."""
    ns = restricted_namespace
    theirs = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "clash-g1"},
        "spec": {"suspend": True, "template": {"spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": "x", "command": ["true"],
                            "securityContext": {"allowPrivilegeEscalation": False,
                                                "capabilities": {"drop": ["ALL"]}}}],
        }}},
    }  # fmt: skip
    kube_cluster.apply(theirs, ns)
    uid = kube_cluster.rest.get(f"/apis/batch/v1/namespaces/{ns}/jobs/clash-g1")["metadata"]["uid"]
    op = start_operator([ns], extra=SLEEPER)
    kube_cluster.apply(conversion("clash", _spec()), ns)
    c = wait_for(lambda: _stalled(kube_cluster, ns, "clash", "JobNameConflict"), 60,
                 "JobNameConflict", diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip
    assert "clash-g1" in c["message"] and "left alone" in c["message"]
    time.sleep(2)
    still = kube_cluster.rest.get(f"/apis/batch/v1/namespaces/{ns}/jobs/clash-g1")
    assert still["metadata"]["uid"] == uid and not still["metadata"].get("deletionTimestamp")


def test_a_job_deleted_by_hand_ends_job_deleted_whatever_the_timing(
    kube_cluster, crd, restricted_namespace, start_operator
):
    """Scenario 9: deleted while the operator runs, or while it is down: the same outcome,
    and never a silent second run."""
    ns = restricted_namespace
    op = start_operator([ns], extra=SLEEPER)
    for name in ("seen", "unseen"):
        kube_cluster.apply(conversion(name, _spec()), ns)
        wait_for(lambda n=name: _phase(kube_cluster, ns, n) == "Running", 60, f"{name} running",
                 diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip

    kube_cluster.kubectl("delete", "-n", ns, "job", "seen-g1", "--wait=false")
    wait_for(lambda: _stalled(kube_cluster, ns, "seen", "JobDeleted"), 30, "seen: JobDeleted",
             diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip

    op.kill()
    kube_cluster.kubectl("delete", "-n", ns, "job", "unseen-g1", "--wait=true")
    op2 = start_operator([ns], extra=SLEEPER)
    c = wait_for(lambda: _stalled(kube_cluster, ns, "unseen", "JobDeleted"), 60,
                 "unseen: JobDeleted", diag=lambda: describe(kube_cluster, ns, op2))  # fmt: skip
    assert "change the spec" in c["message"]
    time.sleep(3)
    assert not jobs(kube_cluster, ns, "unseen") and not jobs(kube_cluster, ns, "seen")


def test_pods_that_cannot_be_created_are_named_with_the_fix(
    kube_cluster, crd, restricted_namespace, start_operator
):
    """Scenario 10: a missing ServiceAccount; the Job controller's FailedCreate says why."""
    ns = restricted_namespace
    op = start_operator([ns], extra=[*SLEEPER, "--resync-seconds", "2"])
    spec = _spec(job={"serviceAccountName": "missing-sa"})
    kube_cluster.apply(conversion("nosa", spec), ns)
    c = wait_for(lambda: _stalled(kube_cluster, ns, "nosa", "PodsRejected"), 90, "PodsRejected",
                 diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip
    assert "missing-sa" in c["message"] and "spec.job.serviceAccountName" in c["message"]
    # Not settled: once the ServiceAccount exists the Job goes on.
    assert _phase(kube_cluster, ns, "nosa") == "Pending"
    kube_cluster.kubectl("-n", ns, "create", "serviceaccount", "missing-sa")
    wait_for(lambda: _phase(kube_cluster, ns, "nosa") == "Running", 90, "Running with the SA",
             diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip
    assert conditions(get(kube_cluster, ns, "nosa"))["Stalled"]["status"] == "False"


def test_a_settled_result_survives_lost_pods_and_a_restart(
    kube_cluster,
    crd,
    restricted_namespace,
    start_operator,
    product_images,
    node_model_uris,
    node_gcs,
):
    """Scenario 2: pods gone (pod GC, node removed), operator restarted: the resume must not
    rewrite Succeeded without its figures."""
    ns = restricted_namespace
    op = start_operator([ns])
    out = f"gs://{node_gcs.create_bucket().name}/kept/"
    kube_cluster.apply(conversion("kept", _spec(uri=node_model_uris["dense"], out=out)), ns)
    before = wait_for(lambda: ready(kube_cluster, ns, "kept"), READY_TIMEOUT, "Ready",
                      diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip
    assert before["status"]["variants"] and before["status"]["reportUri"]
    op.stop()
    (job,) = jobs(kube_cluster, ns, "kept")
    for pod in pods_of(kube_cluster, ns, job):
        kube_cluster.kubectl("delete", "-n", ns, "pod", pod["metadata"]["name"], "--wait=true")
    op2 = start_operator([ns])
    # The restarted operator has replayed the Job's resume handler once this line is logged.
    wait_for(lambda: "Handler 'job_changed' succeeded" in op2.tail(200000), 60,
             "the resume of kept-g1", diag=op2.tail)  # fmt: skip
    after = get(kube_cluster, ns, "kept")
    assert after["status"] == before["status"]


def test_a_zero_job_ttl_does_not_turn_success_into_job_deleted(
    kube_cluster,
    crd,
    restricted_namespace,
    start_operator,
    product_images,
    node_model_uris,
    node_gcs,
):
    """Scenario 9's other half: TTL 0 deletes the Job the moment it finishes; the operator
    only starts the TTL once the result is in the status."""
    ns = restricted_namespace
    op = start_operator([ns], extra=["--job-ttl-seconds", "0"])
    out = f"gs://{node_gcs.create_bucket().name}/ttl0/"
    kube_cluster.apply(conversion("ttl0", _spec(uri=node_model_uris["dense"], out=out)), ns)
    obj = wait_for(lambda: ready(kube_cluster, ns, "ttl0"), READY_TIMEOUT, "Ready",
                   diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip
    assert obj["status"]["variants"][0]["ok"] is True
    wait_for(lambda: not jobs(kube_cluster, ns, "ttl0"), 60, "the TTL controller to delete it")
    time.sleep(2)
    assert get(kube_cluster, ns, "ttl0")["status"] == obj["status"]


def test_a_policy_tightened_while_queued_is_enforced_before_the_job(
    kube_cluster, crd, restricted_namespace, start_operator
):
    """Tenant boundaries, operator side: admission saw the spec before the namespace's policy
    was written; the operator checks the policy again when the Job would start."""
    ns = restricted_namespace
    op = start_operator(
        [ns], max_jobs=1, extra=[*SLEEPER, "--tenant-policy-configmap", "tflite-tenant-policy"]
    )
    kube_cluster.apply(conversion("busy", _spec()), ns)
    wait_for(lambda: _phase(kube_cluster, ns, "busy") == "Running", 60, "busy to run",
             diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip
    kube_cluster.apply(
        conversion("elsewhere", _spec(uri="gs://team-b/m", out="gs://team-b/o/")), ns
    )
    wait_for(lambda: _phase(kube_cluster, ns, "elsewhere") == "Queued", 30, "Queued", diag=op.tail)
    kube_cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tflite-tenant-policy"},
         "data": {"bucketPrefixes": "gs://team-a/"}}, ns,
    )  # fmt: skip
    kube_cluster.kubectl("delete", "-n", ns, "tflc", "busy", "--wait=false")
    c = wait_for(lambda: _stalled(kube_cluster, ns, "elsewhere", "TenantPolicy"), 60,
                 "TenantPolicy", diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip
    assert "gs://team-b/m" in c["message"] and "gs://team-a/" in c["message"]
    assert not jobs(kube_cluster, ns, "elsewhere")
