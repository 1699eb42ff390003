"""The cluster side of operator_scale.py: the test suite's control plane, CRD, RBAC and
operator process (imported from tests/, not copied), the manifests, and a Job made Complete.

No node is attached (`KubeCluster.start()` without `real_node`): there is no Node
and no scheduler, so the Job controller's pods stay Pending and unbound, every Job stays
active, and the queue behind the concurrency limit never drains by itself.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # controlplane, cluster_helpers, fixtures

from cluster_helpers import OperatorProcess, install_crd, operator_kubeconfig  # noqa: E402
from controlplane.cluster import KubeCluster  # noqa: E402
from controlplane.rest import Rest  # noqa: E402

__all__ = ["KubeCluster", "OperatorProcess", "complete_job", "install_operator", "manifests"]

GROUP_VERSION = "tflite.dev/v1alpha1"
PLURAL = "tfliteconversions"


def install_operator(cluster: KubeCluster) -> Path:
    """CRD, then the operator's ServiceAccount and ClusterRole (tests/operator/rbac.yaml),
    as the operator's tests set them up; returns the ServiceAccount's kubeconfig."""
    install_crd(cluster)
    return operator_kubeconfig(cluster, Path(tempfile.mkdtemp(dir=cluster.workdir)))


def manifests(n: int) -> str:
    """N conversions in one file, like config/samples but small; nothing at the gs:// URIs
    needs to exist because no converter pod ever runs."""
    docs = [
        {
            "apiVersion": GROUP_VERSION,
            "kind": "TFLiteConversion",
            "metadata": {"name": f"scale-{i:05d}"},
            "spec": {
                "source": {"uri": f"gs://bench-models/m{i:05d}/saved_model"},
                "output": {"uri": f"gs://bench-tflite/m{i:05d}/"},
                "variants": [{"name": "fp32"}, {"name": "fp16", "quantization": "float16"}],
            },
        }
        for i in range(n)
    ]
    return yaml.safe_dump_all(docs)


def complete_job(rest: Rest, namespace: str, name: str) -> None:
    """Makes an active Job finish as the Job controller would record a success.

    Written through the status subresource with what the apiserver's Job status validation
    requires of a finished Job since 1.31 (SuccessCriteriaMet before Complete, startTime,
    completionTime, no active or terminating pods). The Job's Pending pod never ran, so the
    operator finds no termination message: Ready then comes from its "summary could not be
    read" path, which costs the same API calls as a real success.
    """
    path = f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"
    job = rest.get(path)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = job.get("status") or {}

    def cond(ctype: str, reason: str) -> dict[str, str]:
        return {
            "type": ctype,
            "status": "True",
            "reason": reason,
            "message": "marked complete by benchmarks/operator_scale.py",
            "lastProbeTime": now,
            "lastTransitionTime": now,
        }

    patch = {
        "metadata": {"resourceVersion": job["metadata"]["resourceVersion"]},
        "status": {
            "conditions": [
                *(status.get("conditions") or []),
                cond("SuccessCriteriaMet", "CompletionsReached"),
                cond("Complete", "CompletionsReached"),
            ],
            "startTime": status.get("startTime") or now,
            "completionTime": now,
            "active": 0,
            "ready": 0,
            "terminating": 0,
            "succeeded": 1,
        },
    }
    rest.merge_patch(f"{path}/status", patch)
