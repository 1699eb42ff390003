"""The cluster side of operator_scale.py: the test suite's control plane, CRD, RBAC and
operator process (imported from tests/, not copied), the manifests, and a Job made Complete.

No kubelet stand-in is attached (`KubeCluster.start(with_kubelet=False)`): there is no Node
and no scheduler, so the Job controller's pods stay Pending and unbound, every Job stays
active, and the queue behind the concurrency limit never drains by itself.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # controlplane, cluster_helpers, fixtures

import shared_fixtures  # noqa: E402
from cluster_helpers import OperatorProcess  # noqa: E402
from controlplane.cluster import KubeCluster  # noqa: E402
from controlplane.rest import Rest  # noqa: E402

__all__ = ["KubeCluster", "OperatorProcess", "complete_job", "install_operator", "manifests"]

GROUP_VERSION = "tflite.dev/v1alpha1"
PLURAL = "tfliteconversions"


class _TmpPathFactory:
    """The one method of pytest's tmp_path_factory that the fixtures call."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent

    def mktemp(self, basename: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{basename}-", dir=self.parent))


def _fixture_body(module_file: Path, name: str) -> Any:
    """The plain function behind a pytest fixture, so that the benchmark sets the cluster up
    exactly as the operator's tests do. `__wrapped__` is what functools.update_wrapper sets
    (pytest's FixtureFunctionDefinition uses it); tests/operator/conftest.py is loaded by
    path because `conftest` names another module on sys.path."""
    spec = importlib.util.spec_from_file_location(f"_bench_{module_file.stem}", module_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name).__wrapped__


def install_operator(cluster: KubeCluster) -> Path:
    """CRD, then the operator's ServiceAccount and ClusterRole (tests/operator/rbac.yaml);
    returns the ServiceAccount's kubeconfig."""
    crd = shared_fixtures.crd.__wrapped__(cluster)
    kubeconfig = _fixture_body(REPO / "tests" / "operator" / "conftest.py", "operator_kubeconfig")
    return Path(kubeconfig(cluster, crd, _TmpPathFactory(cluster.workdir)))


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
