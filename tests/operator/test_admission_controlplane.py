"""Admission rules that only the cluster has: the CRD refuses local paths (the converter pod
cannot see the user's disk), which the spec model allows for `tflite-operator convert`.

The malformed manifests both sides refuse run in test_operator_controlplane.py.
"""

from __future__ import annotations

import pytest
import yaml
from malformed_cases import CLUSTER_ONLY_CASES, Case

from tflite_operator.api.manifest import parse_spec

pytestmark = pytest.mark.controlplane


@pytest.mark.parametrize("case", CLUSTER_ONLY_CASES, ids=lambda c: c.id)
def test_a_local_path_is_refused_in_a_cluster(kube_cluster, crd, namespace, case: Case):
    parse_spec(case.spec)  # the CLI takes it
    doc = {
        "apiVersion": "tflite.dev/v1alpha1",
        "kind": "TFLiteConversion",
        "metadata": {"name": case.id},
        "spec": case.spec,
    }
    proc = kube_cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(doc), check=False
    )
    assert proc.returncode != 0, f"accepted: {case.id}\n{proc.stdout}"
    for text in case.k8s:
        assert text in proc.stderr, proc.stderr
