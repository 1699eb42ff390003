"""Job and Pod state -> status: phases, kstatus conditions, figures, and failure causes."""

from __future__ import annotations

from typing import Any

import pytest

from tflite_operator.api import status as api_status
from tflite_operator.api.report import Summary, VariantSummary
from tflite_operator.api.units import human_size
from tflite_operator.controller import render as rd
from tflite_operator.controller import status as st

T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z", "2026-01-01T00:01:00Z"


def job(conditions: list[dict] | None = None, **status: Any) -> dict:
    return {
        "metadata": {"name": "digits-g1", "uid": "j1"},
        "status": {"startTime": T0, **status, "conditions": conditions or []},
    }


def pod(
    name: str,
    phase: str,
    *,
    terminated: dict | None = None,
    waiting: dict | None = None,
    created: str = T0,
) -> dict:
    state: dict[str, Any] = {}
    if terminated is not None:
        state["terminated"] = terminated
    if waiting is not None:
        state["waiting"] = waiting
    if phase == "Running":
        state["running"] = {"startedAt": T0}
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "status": {"phase": phase, "containerStatuses": [{"name": "converter", "state": state}]},
    }


SUMMARY = Summary(
    ok=True,
    source_size_bytes=400_000,
    source_p50_ms=2.0,
    selected="int8",
    selection_reason="smallest variant meeting the target",
    report_uri="gs://out/m/report.json",
    variants=[
        VariantSummary(
            name="fp32",
            ok=True,
            uri="gs://out/m/fp32.tflite",
            size_bytes=150_000,
            compression_ratio=2.7,
            p50_ms=0.5,
            p90_ms=0.6,
            p99_ms=0.9,
            max_abs_error=1e-6,
            meets_target=False,
            note="size 150000 > 100000",
        ),
        VariantSummary(
            name="int8",
            ok=True,
            uri="gs://out/m/int8.tflite",
            size_bytes=42_000,
            compression_ratio=9.5,
            p50_ms=0.3,
            p90_ms=0.4,
            p99_ms=0.5,
            max_abs_error=0.01,
            top1_agreement=0.98,
            meets_target=True,
        ),
    ],
)


def complete(summary: Summary | str) -> tuple[dict, list[dict]]:
    message = summary if isinstance(summary, str) else summary.to_termination_message()
    j = job(
        [{"type": "Complete", "status": "True", "lastTransitionTime": T2}],
        succeeded=1,
        completionTime=T2,
    )
    p = pod("digits-g1-abc", "Succeeded", terminated={"exitCode": 0, "message": message})
    return j, [p]


def conditions(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status["conditions"]}


def test_success_publishes_figures_and_ready():
    outcome = st.observe_job(*complete(SUMMARY))
    assert outcome.phase == api_status.Phase.SUCCEEDED
    status = rd.render({}, 1, outcome, T2)
    api_status.ConversionStatus.model_validate(status)  # nothing the CRD would prune
    c = conditions(status)
    assert c["Ready"]["status"] == "True" and c["Ready"]["reason"] == "Succeeded"
    assert "selected int8 (41.0 KiB, p50 0.3 ms)" in c["Ready"]["message"]
    assert c["Reconciling"]["status"] == "False" and c["Stalled"]["status"] == "False"
    assert c["Converted"]["status"] == "True"
    assert c["TargetMet"]["status"] == "True" and "int8" in c["TargetMet"]["message"]
    assert all(x["observedGeneration"] == 1 for x in status["conditions"])
    assert status["phase"] == "Succeeded" and status["observedGeneration"] == 1
    assert status["jobName"] == "digits-g1"
    assert status["startTime"] == T0 and status["completionTime"] == T2
    assert status["selected"] == {
        "name": "int8",
        "reason": "smallest variant meeting the target",
        "uri": "gs://out/m/int8.tflite",
        "sizeBytes": 42_000,
        "size": "41.0 KiB",
        "p50Ms": 0.3,
    }
    fp32 = status["variants"][0]
    assert fp32["sizeBytes"] == 150_000 and fp32["compressionRatio"] == 2.7
    assert (fp32["p50Ms"], fp32["p90Ms"], fp32["p99Ms"]) == (0.5, 0.6, 0.9)
    assert fp32["meetsTarget"] is False and fp32["note"] == "size 150000 > 100000"
    assert status["reportUri"] == "gs://out/m/report.json"
    assert status["sourceSizeBytes"] == 400_000


def test_no_variant_meets_the_target():
    s = SUMMARY.model_copy(deep=True)
    s.selected = None
    s.selection_reason = "no variant meets the target: size over 100000 B"
    for v in s.variants:
        v.meets_target = False
    status = rd.render({}, 1, st.observe_job(*complete(s)), T2)
    c = conditions(status)
    assert c["Ready"]["status"] == "True"  # the conversion did its job; the verdict is separate
    assert c["TargetMet"]["status"] == "False"
    assert c["TargetMet"]["reason"] == "NoVariantMeetsTarget"
    assert status["selected"] == {"reason": s.selection_reason}


def test_an_unverified_variant_is_never_said_to_meet_the_target():
    s = SUMMARY.model_copy(deep=True)
    s.variants[1].meets_target = False
    s.variants[1].verdict = "unverified"
    s.variants[1].note = "unverified: this runtime cannot run it: uses Select TF ops"
    s.selected, s.selection_reason = None, "no variant meets the target"
    status = rd.render({}, 1, st.observe_job(*complete(s)), T2)
    api_status.ConversionStatus.model_validate(status)
    c = conditions(status)
    assert c["TargetMet"]["status"] == "False"
    assert status["variants"][1]["verdict"] == "unverified"

    # Allowed by target.allowUnverified: selectable, but still not "meets".
    s.variants[1].meets_target = True
    s.selected = "int8"
    status = rd.render({}, 1, st.observe_job(*complete(s)), T2)
    c = conditions(status)
    assert c["TargetMet"]["status"] == "True"
    assert c["TargetMet"]["reason"] == "OnlyUnverifiedVariants"
    assert "meet the target" not in c["TargetMet"]["message"]
    assert "unverified here, allowed by target.allowUnverified" in c["Ready"]["message"]

    s.variants[0].meets_target, s.variants[0].verdict = True, "meets"
    c = conditions(rd.render({}, 1, st.observe_job(*complete(s)), T2))
    assert c["TargetMet"]["reason"] == "VariantMeetsTarget"
    assert c["TargetMet"]["message"] == (
        "meet the target: fp32; unverified here, allowed by the target: int8"
    )


def test_converter_failure_is_stalled_with_the_cause_from_the_termination_message():
    s = Summary(
        ok=False,
        exit_code=3,
        error="SourceNotFound: gs://models/m/saved_model does not exist; check spec.source.uri",
    )
    j = job(
        [
            {
                "type": "Failed",
                "status": "True",
                "reason": "PodFailurePolicy",
                "message": "Container converter for pod ml/digits-g1-x failed with exit code 3 "
                "matching FailJob rule at index 1",
                "lastTransitionTime": T1,
            }
        ],
        failed=1,
    )
    p = pod(
        "digits-g1-x", "Failed", terminated={"exitCode": 3, "message": s.to_termination_message()}
    )
    outcome = st.observe_job(j, [p])
    status = rd.render({}, 1, outcome, T1)
    api_status.ConversionStatus.model_validate(status)
    c = conditions(status)
    assert status["phase"] == "Failed"
    assert c["Stalled"]["status"] == "True" and c["Stalled"]["reason"] == "SourceNotFound"
    assert "does not exist; check spec.source.uri" in c["Stalled"]["message"]
    assert "exit code 3" in c["Stalled"]["message"]
    assert c["Ready"]["status"] == "False" and c["Reconciling"]["status"] == "False"
    assert status["completionTime"] == T1


def test_partial_failure_keeps_the_figures_of_what_converted():
    s = SUMMARY.model_copy(deep=True)
    s.ok, s.exit_code = False, 4
    s.variants[1] = VariantSummary(name="int8", ok=False, note="op not supported")
    s.error = "variants failed: int8: op not supported"
    j = job([{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}], failed=1)
    p = pod("p", "Failed", terminated={"exitCode": 4, "message": s.to_termination_message()})
    status = rd.render({}, 1, st.observe_job(j, [p]), T1)
    c = conditions(status)
    assert c["Stalled"]["reason"] == "ConversionFailed"
    assert c["Converted"]["status"] == "False" and "int8" in c["Converted"]["message"]
    assert status["variants"][0]["ok"] is True and status["variants"][1]["ok"] is False


def test_crash_without_summary_uses_the_log_tail():
    j = job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], failed=2)
    p = pod("p", "Failed", terminated={"exitCode": 1, "message": "Traceback ...\nImportError: x"})
    outcome = st.observe_job(j, [p])
    assert outcome.phase == api_status.Phase.FAILED and outcome.reason == "InternalError"
    assert "ImportError: x" in outcome.message and "2 failed attempt(s)" in outcome.message


def test_oom_kill_says_which_limit_to_raise():
    j = job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], failed=1)
    p = pod("p", "Failed", terminated={"exitCode": 137, "reason": "OOMKilled"})
    outcome = st.observe_job(j, [p])
    assert outcome.reason == "OOMKilled"
    assert "spec.job.resources.limits.memory" in outcome.message


def test_deadline_exceeded_points_at_the_spec_field():
    j = job(
        [
            {
                "type": "Failed",
                "status": "True",
                "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline",
            }
        ]
    )
    outcome = st.observe_job(j, [])
    assert outcome.reason == "DeadlineExceeded"
    assert "spec.job.activeDeadlineSeconds" in outcome.message


def test_pending_running_and_retrying():
    pending = st.observe_job(
        job(active=1),
        [pod("p1", "Pending", waiting={"reason": "ErrImagePull", "message": "no such image"})],
    )
    assert pending.phase == api_status.Phase.PENDING
    assert "ErrImagePull (no such image)" in pending.message
    running = st.observe_job(job(active=1, ready=1), [pod("p1", "Running")])
    assert running.phase == api_status.Phase.RUNNING and running.reason == "Converting"
    s = Summary(ok=False, exit_code=6, error="StorageError: 503 from GCS")
    retrying = st.observe_job(
        job(active=1, failed=1),
        [
            pod("p1", "Failed", terminated={"exitCode": 6, "message": s.to_termination_message()}),
            pod("p2", "Running", created=T1),
        ],
    )
    assert retrying.phase == api_status.Phase.RUNNING
    assert "attempt 1 failed (StorageError: 503 from GCS), retrying" in retrying.message
    status = rd.render({}, 1, retrying, T1)
    c = conditions(status)
    assert c["Reconciling"]["status"] == "True" and c["Ready"]["status"] == "False"
    assert c["Stalled"]["status"] == "False"


def test_queued_says_the_same_thing_to_every_waiter():
    """No position or counts: they would rewrite every waiting status on each admission."""
    status = rd.render({}, 2, st.queued(limit=3), T0)
    api_status.ConversionStatus.model_validate(status)
    assert status["phase"] == "Queued" and "queuePosition" not in status
    c = conditions(status)
    assert c["Reconciling"]["status"] == "True" and c["Reconciling"]["reason"] == "Queued"
    assert "one of the 3 converter Job slots" in c["Reconciling"]["message"]
    assert rd.same_status(status, rd.render(status, 2, st.queued(limit=3), T1))


def test_transition_time_moves_only_when_the_value_changes():
    first = rd.render({}, 1, st.job_created("digits-g1"), T0)
    running = st.observe_job(job(active=1, ready=1), [pod("p", "Running")])
    second = rd.render(first, 1, running, T1)
    assert conditions(second)["Reconciling"]["lastTransitionTime"] == T0  # still True
    assert conditions(second)["Reconciling"]["reason"] == "Converting"
    third = rd.render(second, 1, st.observe_job(*complete(SUMMARY)), T2)
    assert conditions(third)["Reconciling"]["lastTransitionTime"] == T2
    assert conditions(third)["Ready"]["lastTransitionTime"] == T2
    assert conditions(third)["Stalled"]["lastTransitionTime"] == T0  # False all along
    assert rd.same_status(third, rd.render(third, 1, st.observe_job(*complete(SUMMARY)), T2))


def test_a_new_generation_restarts_the_clock_and_clears_old_figures():
    done = rd.render({}, 1, st.observe_job(*complete(SUMMARY)), T1)
    done["kopf"] = {"progress": {}}
    new = rd.render(done, 2, st.job_created("digits-g2"), T2)
    assert all(c["lastTransitionTime"] == T2 for c in new["conditions"])
    assert all(c["observedGeneration"] == 2 for c in new["conditions"])
    patch = rd.merge_patch(done, new)
    for stale in ("variants", "selected", "reportUri", "completionTime", "sourceSizeBytes"):
        assert patch[stale] is None
    assert "kopf" not in patch  # Kopf's own field is not ours to clear
    assert patch["jobName"] == "digits-g2"
    assert [c["type"] for c in new["conditions"]] == ["Ready", "Reconciling", "Stalled"]


def test_settled_generation():
    done = rd.render({}, 1, st.observe_job(*complete(SUMMARY)), T1)
    assert rd.is_settled(done, 1) and not rd.is_settled(done, 2)
    assert not rd.is_settled(rd.render({}, 1, st.job_created("x"), T1), 1)


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        (3, "InvalidSource: not a SavedModel", "InvalidSource"),
        (3, "something odd", "SourceError"),
        (7, None, "OutputExists"),
        (2, "InvalidSpec: spec.variants ...", "InvalidSpec"),
        (99, "?", "ConverterFailed"),
    ],
)
def test_failure_reasons(code, message, reason):
    assert st.failure_reason(code, message) == reason


def test_unparseable_success_message_still_succeeds():
    outcome = st.observe_job(*complete("not json"))
    assert outcome.phase == api_status.Phase.SUCCEEDED and "could not be read" in outcome.message


def test_active_jobs():
    assert st.is_active(job(active=1))
    assert not st.is_active(job([{"type": "Complete", "status": "True"}]))
    assert not st.is_active(job([{"type": "Failed", "status": "True"}]))
    deleting = job(active=1)
    deleting["metadata"]["deletionTimestamp"] = T1
    assert not st.is_active(deleting)


def test_human_size():
    assert human_size(512) == "512 B"
    assert human_size(42_000) == "41.0 KiB"
    assert human_size(5 * 1024**2) == "5.0 MiB"


def test_sigterm_reason_does_not_depend_on_what_was_imported():
    """The reason table is explicit: the operator process never imports cli.py, where
    TerminatedError used to live, and a SIGTERM'd pod read as "ConverterFailed" there."""
    import subprocess
    import sys

    code = (
        "import sys; from tflite_operator.controller import status as st; "
        "assert 'tflite_operator.cli' not in sys.modules; "
        "print(st.failure_reason(143, None), st.failure_reason(1, 'Terminated: stopped'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["Terminated", "Terminated"]
