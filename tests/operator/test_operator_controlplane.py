"""The operator on a real control plane: kube-apiserver (CRD schema, CEL, Pod Security
admission, RBAC), kube-controller-manager (Job controller, garbage collector, TTL), a real
node (kubelet, containerd) running the converter image, and fake-gcs-server for the buckets.

The operator runs as a subprocess (`python -m tflite_operator.controller.main`) with the RBAC
of rbac.yaml, so a test can SIGKILL it and start it again (cluster_helpers.OperatorProcess
says why it is not the chart's pod here).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from malformed_cases import BASE, CASES, Case

from cluster_helpers import REPO, wait_for
from tflite_operator.api import status as api_status
from tflite_operator.api.errors import SpecError
from tflite_operator.api.manifest import parse_spec
from tflite_operator.controller import render as rd
from tflite_operator.controller import status as st

pytestmark = [pytest.mark.controlplane, pytest.mark.gcs, pytest.mark.slow]

API = "/apis/tflite.dev/v1alpha1"
READY_TIMEOUT = 240  # TensorFlow starts in each converter pod; two shared cores
FAST = {"benchmark": {"enabled": False}, "validation": {"enabled": False}}


def conversion(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "tflite.dev/v1alpha1",
        "kind": "TFLiteConversion",
        "metadata": {"name": name},
        "spec": spec,
    }


def get(cluster, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return cluster.rest.get(f"{API}/namespaces/{ns}/tfliteconversions/{name}")
    except Exception as err:
        if getattr(err, "status", None) == 404:
            return None
        raise


def conditions(obj: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions", [])}


def jobs(cluster, ns: str, conversion_name: str | None = None) -> list[dict[str, Any]]:
    sel = "app.kubernetes.io/managed-by=tflite-operator,app.kubernetes.io/component=converter"
    if conversion_name:
        sel += f",tflite.dev/conversion={conversion_name}"
    path = f"/apis/batch/v1/namespaces/{ns}/jobs?labelSelector={quote(sel)}"
    return cluster.rest.get(path)["items"]


def pods_of(cluster, ns: str, job: dict[str, Any]) -> list[dict[str, Any]]:
    sel = quote(f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}")
    return cluster.rest.get(f"/api/v1/namespaces/{ns}/pods?labelSelector={sel}")["items"]


def describe(cluster, ns: str, op=None) -> str:
    """What to print when a wait times out: the resources, Jobs, pods and operator log."""
    out = [cluster.kubectl("-n", ns, "get", "tflc,jobs,pods", "-o", "wide", check=False).stdout]
    out.append(cluster.kubectl("-n", ns, "get", "tflc", "-o", "yaml", check=False).stdout[-6000:])
    out.append(cluster.kubectl("-n", ns, "get", "events", check=False).stdout[-3000:])
    if op is not None:
        out.append(op.tail())
    return "\n".join(out)


def ready(cluster, ns: str, name: str, generation: int = 1) -> dict[str, Any] | None:
    obj = get(cluster, ns, name)
    c = conditions(obj).get("Ready")
    if c and c["status"] == "True" and c.get("observedGeneration") == generation:
        return obj
    if conditions(obj).get("Stalled", {}).get("status") == "True":
        pytest.fail(f"{name} stalled: {conditions(obj)['Stalled']}")
    return None


# --- the schema -----------------------------------------------------------------------------


def test_samples_pass_the_apiservers_validation(kube_cluster, crd, namespace):
    out = kube_cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(REPO / "config" / "samples")
    )
    assert out.stdout.count("created (server dry run)") == 3, out.stdout


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_malformed_manifest_is_refused_naming_the_field(kube_cluster, crd, namespace, case: Case):
    with pytest.raises(SpecError) as by_model:
        parse_spec(case.spec)
    assert case.pydantic in str(by_model.value)

    doc = yaml.safe_dump(conversion(f"bad-{case.id}"[:60], case.spec))
    proc = kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=doc, check=False)
    assert proc.returncode != 0, f"accepted: {case.id}\n{proc.stdout}"
    expected = (case.k8s,) if isinstance(case.k8s, str) else case.k8s
    for text in expected:
        assert text in proc.stderr, proc.stderr
    assert get(kube_cluster, namespace, f"bad-{case.id}"[:60]) is None


def _full_status(now: str) -> dict[str, Any]:
    """A status with every field the operator can write."""
    from tflite_operator.api.report import Summary, VariantSummary

    summary = Summary(
        ok=True,
        source_size_bytes=1000,
        source_p50_ms=1.5,
        source_task_accuracy=0.97,
        selected="a",
        selection_reason="smallest",
        report_uri="gs://b/out/report.json",
        variants_total=2,  # one left out of the summary: variantsOmitted
        variants=[
            VariantSummary(
                name="a", ok=True, uri="gs://b/out/a.tflite", size_bytes=300,
                compression_ratio=3.3, p50_ms=0.25, p90_ms=0.5, p99_ms=0.75, speedup=6.0,
                max_abs_error=0.001, top1_agreement=1.0, task_accuracy=0.96,
                meets_target=True, note="n",
            )
        ],
    )  # fmt: skip
    outcome = st.Outcome(
        api_status.Phase.SUCCEEDED, "Succeeded", "done", job_name="rt-g1",
        start_time=now, completion_time=now, summary=summary,
    )  # fmt: skip
    return rd.render({}, 1, outcome, now)


def test_every_status_field_survives_the_apiserver(kube_cluster, crd, namespace):
    """Nothing the operator writes is pruned: not its fields, not Kopf's."""
    kube_cluster.apply(conversion("rt", BASE), namespace)
    status = _full_status(rd.now_rfc3339())
    written = {f.alias for n, f in api_status.ConversionStatus.model_fields.items()}
    assert set(status) == written  # the round trip covers every declared field
    status["kopf"] = {"progress": {"reconcile": {"retries": 1, "started": "x"}}, "dummy": "y"}
    path = f"{API}/namespaces/{namespace}/tfliteconversions/rt/status"
    kube_cluster.rest.merge_patch(path, {"status": status})
    back = get(kube_cluster, namespace, "rt")["status"]
    assert back == status
    # And the clearing patch of a new generation removes the stale figures.
    new = rd.render(back, 2, st.job_created("rt-g2"), rd.now_rfc3339())
    kube_cluster.rest.merge_patch(path, {"status": rd.merge_patch(back, new)})
    back = get(kube_cluster, namespace, "rt")["status"]
    assert "variants" not in back and "selected" not in back
    assert back["kopf"] == status["kopf"]
    assert back["jobName"] == "rt-g2"


# --- conversions ----------------------------------------------------------------------------


def _sample(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "config" / "samples" / name).read_text())


def test_sample_converts_and_turns_ready(
    kube_cluster,
    crd,
    restricted_namespace,
    start_operator,
    product_images,
    node_model_uris,
    node_gcs,
):
    ns = restricted_namespace
    op = start_operator([ns])
    doc = _sample("mobile-gpu-fp16.yaml")
    name = doc["metadata"]["name"]
    out_uri = f"gs://{node_gcs.create_bucket().name}/gpu/"
    doc["spec"]["source"]["uri"] = node_model_uris["dense"]
    doc["spec"]["output"]["uri"] = out_uri
    doc["spec"]["benchmark"]["runs"] = 20
    kube_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))

    # The Job: deterministic name, labels, owner, the spec as JSON, the restricted pod.
    (job,) = wait_for(lambda: jobs(kube_cluster, ns, name), 30, "the Job", diag=op.tail)
    obj = get(kube_cluster, ns, name)
    assert job["metadata"]["name"] == f"{name}-g1"
    assert job["metadata"]["labels"]["tflite.dev/generation"] == "1"
    (owner,) = job["metadata"]["ownerReferences"]
    assert owner["uid"] == obj["metadata"]["uid"] and owner["controller"] is True
    pod_spec = job["spec"]["template"]["spec"]
    (c,) = pod_spec["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert parse_spec(json.loads(env["TFLITE_OPERATOR_SPEC"])) == parse_spec(doc["spec"])
    assert env["STORAGE_EMULATOR_HOST"] == node_gcs.url  # the operator's --converter-env
    assert c["command"] == ["tflite-operator", "job"]
    assert pod_spec["automountServiceAccountToken"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["spec"]["podFailurePolicy"]["rules"][1]["action"] == "FailJob"
    # No TTL until the result is in the status (then the operator's --job-ttl-seconds).
    assert "ttlSecondsAfterFinished" not in job["spec"]

    # kubectl wait understands the Ready condition.
    waited = kube_cluster.kubectl(
        "wait", "-n", ns, f"tflc/{name}", "--for=condition=Ready", f"--timeout={READY_TIMEOUT}s",
        check=False, timeout=READY_TIMEOUT + 30,
    )  # fmt: skip
    assert waited.returncode == 0, describe(kube_cluster, ns, op)

    status = get(kube_cluster, ns, name)["status"]
    assert status["phase"] == "Succeeded" and status["observedGeneration"] == 1

    def expiring() -> list[dict[str, Any]]:
        return [j for j in jobs(kube_cluster, ns, name) if j["spec"].get("ttlSecondsAfterFinished")]

    expiring_jobs = wait_for(expiring, 30, "the TTL on the finished Job", diag=op.tail)
    assert expiring_jobs[0]["spec"]["ttlSecondsAfterFinished"] == 600
    assert status["jobName"] == f"{name}-g1" and status["startTime"] <= status["completionTime"]
    (fp16,) = status["variants"]
    assert fp16["ok"] is True and fp16["uri"] == f"{out_uri}fp16.tflite"
    published = node_gcs.read(fp16["uri"])
    assert published is not None and len(published) == fp16["sizeBytes"] > 0
    assert fp16["compressionRatio"] > 0 and fp16["p50Ms"] > 0 and fp16["maxAbsError"] < 0.01
    assert status["selected"]["name"] == "fp16" and status["selected"]["sizeBytes"] > 0
    assert node_gcs.read(status["reportUri"]) is not None
    c = conditions({"status": status})
    assert c["Reconciling"]["status"] == "False" and c["Stalled"]["status"] == "False"
    assert c["TargetMet"]["status"] == "True"

    table = kube_cluster.kubectl("get", "-n", ns, "tflc", name).stdout.splitlines()
    assert re.split(r"\s{2,}", table[0].strip()) == [
        "NAME", "PHASE", "SELECTED", "SIZE", "P50-MS", "AGE",
    ]  # fmt: skip
    row = re.split(r"\s{2,}", table[1].strip())
    assert row[:4] == [name, "Succeeded", "fp16", status["selected"]["size"]]
    assert float(row[4]) == pytest.approx(status["selected"]["p50Ms"], rel=0.01)

    events = kube_cluster.kubectl(
        "get", "events", "-n", ns, f"--field-selector=involvedObject.name={name}",
        "-o", "jsonpath={.items[*].reason}",
    ).stdout.split()  # fmt: skip
    assert "Succeeded" in events and len(events) >= 2, events

    metrics = op.metrics()
    assert 'tflite_operator_conversions_total{reason="Succeeded",result="succeeded"} 1.0' in metrics
    assert "tflite_operator_conversion_duration_seconds_count" in metrics
    assert "tflite_operator_queue_depth 0.0" in metrics


def test_spec_change_replaces_the_job_and_deletion_collects_it(
    kube_cluster,
    crd,
    restricted_namespace,
    start_operator,
    product_images,
    node_model_uris,
    node_gcs,
):
    ns = restricted_namespace
    op = start_operator([ns])
    out_uri = f"gs://{node_gcs.create_bucket().name}/m/"
    spec = {
        "source": {"uri": node_model_uris["dense"]},
        "output": {"uri": out_uri, "overwrite": True},
        "variants": [{"name": "fp32"}],
        **FAST,
    }
    kube_cluster.apply(conversion("evolving", spec), ns)
    (first,) = wait_for(lambda: jobs(kube_cluster, ns, "evolving"), 30, "Job g1", diag=op.tail)

    spec = copy.deepcopy(spec)
    spec["variants"].append({"name": "fp16", "quantization": "float16"})
    kube_cluster.apply(conversion("evolving", spec), ns)

    def replaced():
        names = [j["metadata"]["name"] for j in jobs(kube_cluster, ns, "evolving")]
        return names == ["evolving-g2"]

    wait_for(replaced, 60, "Job g2 to replace g1", diag=lambda: describe(kube_cluster, ns, op))
    obj = wait_for(
        lambda: ready(kube_cluster, ns, "evolving", generation=2),
        READY_TIMEOUT,
        "Ready for generation 2",
        diag=lambda: describe(kube_cluster, ns, op),
    )
    assert [v["name"] for v in obj["status"]["variants"]] == ["fp32", "fp16"]
    assert obj["status"]["jobName"] == "evolving-g2"
    assert first["metadata"]["name"] == "evolving-g1"
    # Outputs are kept on deletion, so nothing holds the deletion up.
    assert not obj["metadata"].get("finalizers")

    kube_cluster.kubectl("delete", "-n", ns, "tflc", "evolving", "--wait=true")
    wait_for(
        lambda: not jobs(kube_cluster, ns, "evolving"), 60, "the garbage collector to take the Job"
    )
    # The outputs stay: spec.output.deleteOnResourceDeletion is false.
    assert node_gcs.read(f"{out_uri}fp16.tflite") is not None


def _cli_removes_outputs() -> bool:
    proc = subprocess.run(
        ["tflite-operator", "job", "--help"], capture_output=True, text=True, check=False
    )
    return "--delete-outputs" in proc.stdout


def test_outputs_removed_with_the_resource_when_asked(
    kube_cluster,
    crd,
    restricted_namespace,
    start_operator,
    product_images,
    node_model_uris,
    node_gcs,
):
    if not _cli_removes_outputs():
        pytest.skip("the converter CLI has no `tflite-operator job --delete-outputs` yet")
    ns = restricted_namespace
    op = start_operator([ns])
    out_uri = f"gs://{node_gcs.create_bucket().name}/gone/"
    spec = {
        "source": {"uri": node_model_uris["dense"]},
        "output": {"uri": out_uri, "deleteOnResourceDeletion": True},
        "variants": [{"name": "fp32"}],
        **FAST,
    }
    kube_cluster.apply(conversion("ephemeral", spec), ns)
    obj = wait_for(
        lambda: ready(kube_cluster, ns, "ephemeral"),
        READY_TIMEOUT,
        "Ready",
        diag=lambda: describe(kube_cluster, ns, op),
    )
    assert obj["metadata"]["finalizers"]  # Kopf's: the outputs go before the resource does
    assert node_gcs.names(out_uri)
    # Something else removed the outputs first: the deletion must not hang on that.
    node_gcs.client().bucket(out_uri[5:].split("/")[0]).blob("gone/report.json").delete()
    kube_cluster.kubectl("delete", "-n", ns, "tflc", "ephemeral", "--wait=false")
    wait_for(
        lambda: get(kube_cluster, ns, "ephemeral") is None,
        120,
        "the resource to be gone",
        diag=lambda: describe(kube_cluster, ns, op),
    )
    assert node_gcs.names(out_uri) == []
    wait_for(lambda: not jobs(kube_cluster, ns, "ephemeral"), 60, "its Job to be collected")


def test_converter_failures_end_stalled_with_the_cause(
    kube_cluster,
    crd,
    restricted_namespace,
    start_operator,
    product_images,
    node_model_uris,
    node_gcs,
):
    ns = restricted_namespace
    op = start_operator([ns])
    out = f"gs://{node_gcs.create_bucket().name}"
    retrying_job = {"backoffLimit": 3}  # would retry, but these exit codes are permanent
    kube_cluster.apply(
        [
            conversion(
                "no-model",
                {
                    "source": {"uri": node_model_uris["missing"]},
                    "output": {"uri": f"{out}/a/"},
                    "variants": [{"name": "fp32"}],
                    "job": retrying_job,
                    **FAST,
                },
            ),
            conversion(
                "needs-flex",
                {
                    "source": {"uri": node_model_uris["flex"]},
                    "output": {"uri": f"{out}/b/"},
                    "variants": [{"name": "fp32", "ops": "builtins"}],
                    "job": retrying_job,
                    **FAST,
                },
            ),
        ],
        ns,
    )

    def stalled(name: str):
        obj = get(kube_cluster, ns, name)
        return obj if conditions(obj).get("Stalled", {}).get("status") == "True" else None

    diag = lambda: describe(kube_cluster, ns, op)  # noqa: E731
    missing = wait_for(lambda: stalled("no-model"), READY_TIMEOUT, "no-model Stalled", diag=diag)
    flex = wait_for(lambda: stalled("needs-flex"), READY_TIMEOUT, "needs-flex Stalled", diag=diag)

    c = conditions(missing)
    assert c["Stalled"]["reason"] == "SourceNotFound", c["Stalled"]
    assert "nothing-here" in c["Stalled"]["message"]
    assert c["Ready"]["status"] == "False" and missing["status"]["phase"] == "Failed"

    c = conditions(flex)
    assert c["Stalled"]["reason"] == "ConversionFailed", c["Stalled"]
    assert (
        "select-tf-ops" in c["Stalled"]["message"].lower() or "Cumprod" in c["Stalled"]["message"]
    ), c["Stalled"]["message"]
    assert flex["status"]["variants"][0]["ok"] is False

    # Not retried: one pod each, the Job failed by the pod failure policy.
    for name in ("no-model", "needs-flex"):
        (job,) = jobs(kube_cluster, ns, name)
        failed = {c["type"]: c for c in job["status"]["conditions"]}["Failed"]
        assert failed["reason"] == "PodFailurePolicy"
        assert len(pods_of(kube_cluster, ns, job)) == 1
    metrics = op.metrics()
    assert 'result="failed"} 1.0' in metrics and 'reason="SourceNotFound"' in metrics


def test_operator_killed_mid_job_adopts_it_after_restart(
    kube_cluster,
    crd,
    restricted_namespace,
    start_operator,
    product_images,
    node_model_uris,
    node_gcs,
):
    ns = restricted_namespace
    op = start_operator([ns])
    spec = {
        "source": {"uri": node_model_uris["dense"]},
        "output": {"uri": f"gs://{node_gcs.create_bucket().name}/r/"},
        "variants": [{"name": "fp32"}, {"name": "dyn", "quantization": "dynamic-range"}],
        "benchmark": {"runs": 200},
    }
    kube_cluster.apply(conversion("survivor", spec), ns)

    def running_pod():
        for job in jobs(kube_cluster, ns, "survivor"):
            for pod in pods_of(kube_cluster, ns, job):
                if pod["status"].get("phase") == "Running":
                    return job
        return None

    job = wait_for(running_pod, 60, "the converter pod to run", diag=op.tail)
    op.kill()
    # The converter runs on without the operator: the kubelet still reports its container so.
    (pod,) = pods_of(kube_cluster, ns, job)
    assert "running" in pod["status"]["containerStatuses"][0]["state"], pod["status"]
    op2 = start_operator([ns])
    obj = wait_for(
        lambda: ready(kube_cluster, ns, "survivor"),
        READY_TIMEOUT,
        "Ready after the restart",
        diag=lambda: describe(kube_cluster, ns, op2),
    )
    (only,) = jobs(kube_cluster, ns, "survivor")
    assert only["metadata"]["uid"] == job["metadata"]["uid"]  # adopted, never recreated
    assert len(pods_of(kube_cluster, ns, only)) == 1
    assert obj["status"]["phase"] == "Succeeded" and len(obj["status"]["variants"]) == 2
    assert "created Job" not in Path(op2.log_path).read_text()


def test_a_job_deleted_by_hand_ends_the_conversion_stalled(
    kube_cluster,
    crd,
    restricted_namespace,
    start_operator,
    product_images,
    node_model_uris,
    node_gcs,
):
    ns = restricted_namespace
    op = start_operator([ns], extra=["--resync-seconds", "2"])
    spec = {
        "source": {"uri": node_model_uris["dense"]},
        "output": {"uri": f"gs://{node_gcs.create_bucket().name}/x/"},
        "variants": [{"name": "fp32"}],
        "benchmark": {"runs": 500},
    }
    kube_cluster.apply(conversion("orphaned", spec), ns)
    wait_for(
        lambda: (
            (get(kube_cluster, ns, "orphaned") or {}).get("status", {}).get("phase")
            in ("Pending", "Running")
        ),
        60,
        "the conversion to start",
        diag=op.tail,
    )
    kube_cluster.kubectl("delete", "-n", ns, "job", "orphaned-g1", "--wait=false")
    obj = wait_for(
        lambda: (
            (o := get(kube_cluster, ns, "orphaned"))
            and conditions(o).get("Stalled", {}).get("status") == "True"
            and o
        ),
        60,
        "Stalled after the Job's deletion",
        diag=lambda: describe(kube_cluster, ns, op),
    )
    assert conditions(obj)["Stalled"]["reason"] == "JobDeleted"
    assert obj["status"]["phase"] == "Failed"
    time.sleep(3)  # a resync later, still no new Job: only a spec change reruns
    assert not jobs(kube_cluster, ns, "orphaned")


def test_twenty_conversions_never_exceed_three_jobs(
    kube_cluster,
    crd,
    restricted_namespace,
    start_operator,
    product_images,
    node_model_uris,
    node_gcs,
):
    ns = restricted_namespace
    op = start_operator([ns], max_jobs=3)
    bucket = node_gcs.create_bucket().name
    docs = [
        conversion(
            f"batch-{i:02d}",
            {
                "source": {"uri": node_model_uris["dense"]},
                "output": {"uri": f"gs://{bucket}/{i:02d}/"},
                "variants": [{"name": "fp32"}],
                **FAST,
            },
        )
        for i in range(20)
    ]

    peak = {"jobs": 0, "pods": 0}
    phases_seen: set[str] = set()
    stop = threading.Event()
    errors: list[str] = []

    def watch() -> None:
        while not stop.is_set():
            try:
                active = [j for j in jobs(kube_cluster, ns) if st.is_active(j)]
                pods = kube_cluster.rest.get(f"/api/v1/namespaces/{ns}/pods")["items"]
                live = [p for p in pods if p["status"].get("phase") in ("Pending", "Running")]
                peak["jobs"] = max(peak["jobs"], len(active))
                peak["pods"] = max(peak["pods"], len(live))
                items = kube_cluster.rest.get(f"{API}/namespaces/{ns}/tfliteconversions")["items"]
                phases_seen.update((i.get("status") or {}).get("phase", "") for i in items)
            except Exception as err:
                errors.append(repr(err))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    kube_cluster.apply(docs, ns)
    try:

        def all_ready() -> bool:
            items = kube_cluster.rest.get(f"{API}/namespaces/{ns}/tfliteconversions")["items"]
            return len(items) == 20 and all(
                conditions(i).get("Ready", {}).get("status") == "True" for i in items
            )

        wait_for(all_ready, 600, "all twenty Ready", interval=1,
                 diag=lambda: describe(kube_cluster, ns, op))  # fmt: skip
    finally:
        stop.set()
        watcher.join(timeout=5)
    elapsed = time.monotonic() - t0
    assert not errors[:1], errors[:3]
    assert peak["jobs"] <= 3 and peak["pods"] <= 3, peak
    assert peak["jobs"] == 3, f"the limit was never reached: {peak}"
    assert "Queued" in phases_seen
    assert len({j["metadata"]["name"] for j in jobs(kube_cluster, ns)}) == 20
    # An Event per transition, not per queue retry; and waiting is not an error.
    events = kube_cluster.rest.get(f"/api/v1/namespaces/{ns}/events")["items"]
    mine = [e for e in events if e["involvedObject"].get("kind") == "TFLiteConversion"]
    per_object: dict[str, int] = {}
    for e in mine:
        per_object[e["involvedObject"]["name"]] = per_object.get(e["involvedObject"]["name"], 0) + 1
    assert max(per_object.values()) <= 6, per_object
    assert {e["type"] for e in mine} == {"Normal"}, {(e["type"], e["message"]) for e in mine}
    assert sum(e["reason"] == "Queued" for e in mine) >= 17 - 3
    print(f"20 conversions, 3 at a time: {elapsed:.0f}s")
