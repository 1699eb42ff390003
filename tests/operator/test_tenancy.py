"""The operator's side of the tenant policy (controller/tenancy.py): pure, no server.

The cases (tests/tenancy_cases.py) also run through the chart's ValidatingAdmissionPolicy on a
real apiserver (tests/shipping/test_tenancy_controlplane.py): both sides must say the same.
"""

from __future__ import annotations

from typing import Any

import pytest

from tenancy_cases import BASE, CASES, POLICY_A, Case, spec_with
from tflite_operator.api.manifest import parse_spec
from tflite_operator.controller import tenancy


def configmap(namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": tenancy.POLICY_CONFIGMAP, "namespace": namespace},
        "data": data,
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_violations_name_the_value_and_what_is_allowed(case: Case):
    policy = tenancy.policy_from_configmap(configmap("team-a", POLICY_A))
    found = tenancy.violations(parse_spec(case.spec), policy, "team-a")
    if not case.refused:
        assert found == []
        return
    assert len(found) == 1, found
    for text in case.refused:
        assert text in found[0]
    assert "ConfigMap team-a/tflite-tenant-policy" in found[0]


def test_the_operator_names_the_field_of_each_uri():
    spec = parse_spec(
        spec_with(
            source={"uri": "gs://team-b-models/m"},
            validation={"datasetUri": "gs://team-b-models/v.npz"},
        )
    )
    policy = tenancy.policy_from_configmap(configmap("team-a", POLICY_A))
    found = tenancy.violations(spec, policy, "team-a")
    assert [f.split(":")[0] for f in found] == ["spec.source.uri", "spec.validation.datasetUri"]


def test_a_missing_key_leaves_that_dimension_open_and_an_empty_one_allows_nothing():
    spec = parse_spec(spec_with(job={"serviceAccountName": "anyone"}))
    open_sa = tenancy.policy_from_configmap(
        configmap("t", {"bucketPrefixes": "gs://team-a-models"})
    )
    assert tenancy.violations(spec, open_sa, "t") == []
    closed = tenancy.policy_from_configmap(
        configmap("t", {"bucketPrefixes": "", "serviceAccounts": ","})
    )
    found = tenancy.violations(spec, closed, "t")
    assert len(found) == 3  # source, output and the ServiceAccount
    assert all("(none)" in f for f in found)


def test_without_a_policy_the_namespace_is_open_unless_the_operator_requires_one():
    spec = parse_spec(BASE)
    assert tenancy.violations(spec, None, "t") == []
    (msg,) = tenancy.violations(spec, None, "t", when_missing="Deny")
    assert "namespace t has no tenant policy (ConfigMap tflite-tenant-policy)" in msg


@pytest.mark.parametrize(
    ("uri", "prefix", "inside"),
    [
        ("gs://a/m", "gs://a", True),
        ("gs://a", "gs://a", True),
        ("gs://a/x/", "gs://a/x/", True),
        ("gs://a/x", "gs://a/x/", True),
        ("gs://a/x/y", "gs://a/x", True),
        ("gs://ab/m", "gs://a", False),
        ("gs://a/xy", "gs://a/x", False),
        ("gs://a/xy", "gs://a/x/", False),
    ],
)
def test_a_prefix_ends_at_a_slash(uri: str, prefix: str, inside: bool):
    assert tenancy.under(uri, prefix) is inside
