"""Pods that never run or are killed from outside (issue 8, scenario 10), and a summary cut
short to fit the termination message (scenario 12): the status names the cause and the fix."""

from __future__ import annotations

from typing import Any

from test_status_mapping import SUMMARY, T0, T1, conditions, job, pod

from tflite_operator.api.report import VariantSummary
from tflite_operator.api.status import Phase
from tflite_operator.controller import render as rd
from tflite_operator.controller import status as st

FAILED_DEADLINE = [
    {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
     "message": "Job was active longer than specified deadline", "lastTransitionTime": T1},
]  # fmt: skip


def unschedulable(name: str = "p1") -> dict[str, Any]:
    p = pod(name, "Pending")
    p["status"]["containerStatuses"] = []
    p["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available: 3 Insufficient memory."},
    ]  # fmt: skip
    return p


def evicted(name: str = "p1") -> dict[str, Any]:
    p = pod(name, "Failed")
    p["status"] |= {"reason": "Evicted", "message": "The node was low on resource: memory."}
    return p


def oom(name: str, created: str = T0) -> dict[str, Any]:
    killed = {"exitCode": 137, "reason": "OOMKilled", "message": "log tail"}
    return pod(name, "Failed", created=created, terminated=killed)


def test_an_unschedulable_pod_is_named_with_what_to_change():
    out = st.observe_job(job(active=1), [unschedulable()])
    assert out.phase == Phase.PENDING
    assert "Insufficient memory" in out.message and "spec.job.resources.requests" in out.message


def test_a_deadline_reached_while_unschedulable_names_the_scheduling_not_the_deadline_alone():
    out = st.observe_job(job(FAILED_DEADLINE, failed=1), [unschedulable()])
    assert out.phase == Phase.FAILED and out.reason == "DeadlineExceeded"
    assert out.message.startswith("the pod cannot be scheduled (0/3 nodes")
    assert "spec.job.nodeSelector" in out.message


def test_oom_killed_on_a_retry_says_so_while_the_next_attempt_runs():
    out = st.observe_job(job(active=1, failed=1), [oom("p1"), pod("p2", "Running", created=T1)])
    assert out.phase == Phase.RUNNING
    assert "attempt 1 failed (OOMKilled" in out.message
    assert "spec.job.resources.limits.memory" in out.message


def test_an_evicted_pod_is_named_as_evicted():
    failed = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
               "message": "Job has reached the specified backoff limit"}]  # fmt: skip
    out = st.observe_job(job(failed, failed=2), [evicted()])
    assert out.reason == "Evicted" and "low on resource: memory" in out.message


def test_failed_create_events_stall_without_settling():
    events = [
        {"reason": "FailedCreate", "lastTimestamp": T1,
         "message": 'Error creating: pods "x-g1-abc" is forbidden: error looking up service '
                    'account ns/missing-sa: serviceaccount "missing-sa" not found'},
    ]  # fmt: skip
    out = st.observe_job(job(active=0), [], events)
    assert out.phase == Phase.PENDING and out.stalled and out.reason == "PodsRejected"
    assert "spec.job.serviceAccountName" in out.message
    status = rd.render({}, 1, out, T1)
    c = conditions(status)
    assert c["Stalled"]["status"] == "True" and c["Reconciling"]["status"] == "True"
    assert not rd.is_settled(status, 1)


def test_a_summary_cut_to_fit_4096_bytes_is_not_all_converted():
    many = SUMMARY.model_copy(
        update={
            "variants": [VariantSummary(name=f"v{i}", ok=True) for i in range(10)],
            "variants_total": 16,
        }
    )
    # The pod wrote only what fits; the status must not say "all 10 converted".
    status = rd.render({}, 1, st.Outcome(Phase.SUCCEEDED, "Succeeded", "ok", summary=many), T1)
    c = conditions(status)
    assert c["Converted"]["reason"] == "SummaryTruncated"
    assert "10 of 16 variants listed" in c["Converted"]["message"]
    assert status["variantsOmitted"] == 6 and len(status["variants"]) == 10


def test_converted_counts_what_the_spec_asked_even_from_an_older_converter():
    """A summary without variants_total (older image): the spec's count decides."""
    older = SUMMARY.model_copy(update={"variants_total": None})
    outcome = st.Outcome(Phase.SUCCEEDED, "Succeeded", "ok", summary=older)
    listed = len(older.variants)
    status = rd.render({}, 1, outcome, T1, expected_variants=listed + 2)
    assert conditions(status)["Converted"]["reason"] == "SummaryTruncated"
    assert status["variantsOmitted"] == 2
    whole = rd.render({}, 1, outcome, T1, expected_variants=listed)
    assert conditions(whole)["Converted"]["message"] == f"all {listed} variants converted"


def test_the_trimmed_termination_message_keeps_the_total():
    big = SUMMARY.model_copy(
        update={
            "variants": [
                VariantSummary(name=f"variant-{i:02d}", ok=True, uri=f"gs://b/{'x' * 200}/{i}")
                for i in range(16)
            ],
            "variants_total": 16,
        }
    )
    text = big.to_termination_message()
    assert len(text.encode()) <= 4096
    back = st.parse_summary(text)
    assert back is not None and back.variants_total == 16 and len(back.variants) < 16
