"""Tenant boundaries at admission: the chart's ValidatingAdmissionPolicy on a real apiserver.

The policy and binding applied here are what `helm template` renders from the chart, so the
test proves the shipped objects. Two tenants each get a policy ConfigMap; one tenant's manifest
naming the other's bucket or ServiceAccount is refused at `kubectl apply` with a message that
names the value and what is allowed, the same the operator's own check (controller/tenancy.py)
gives; relaxing the policy lets the same manifest in. Admission only: nothing is converted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from shipping_helpers import Helm, by_kind

from cluster_helpers import wait_for
from tenancy_cases import BASE, CASES, POLICY_A, Case, spec_with
from tflite_operator.api.manifest import parse_spec
from tflite_operator.controller import tenancy

pytestmark = pytest.mark.controlplane

RELEASE = "tenancy-e2e"


def conversion(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "tflite.dev/v1alpha1",
        "kind": "TFLiteConversion",
        "metadata": {"name": name},
        "spec": spec,
    }


def _policy_objects(helm: Helm, values: dict[str, Any] | None = None) -> list[dict]:
    docs = helm.template(values or {}, release=RELEASE)
    objs = by_kind(docs, "ValidatingAdmissionPolicy") + by_kind(
        docs, "ValidatingAdmissionPolicyBinding"
    )
    # The policy on TFLiteConversions, and the guard of the policy ConfigMaps; a binding each.
    assert len(objs) == 4, [d["kind"] for d in docs]
    return objs


@pytest.fixture(scope="module")
def tenants(kube_cluster, crd, helm: Helm) -> Iterator[dict[str, str]]:
    """Namespaces team-a and team-b (generated names) with their policies, and a namespace
    without one; the chart's policy and binding applied to the cluster."""
    names = {key: kube_cluster.create_namespace(prefix=f"{key}-") for key in ("a", "b", "nopolicy")}
    policy_b = {"bucketPrefixes": "gs://team-b-models/", "serviceAccounts": "converter-b"}
    for key, data in (("a", POLICY_A), ("b", policy_b)):
        kube_cluster.apply(_configmap(names[key], data))
    objs = _policy_objects(helm)
    kube_cluster.apply(objs)
    try:
        yield names
    finally:
        for obj in objs:
            kube_cluster.kubectl(
                "delete", obj["kind"], obj["metadata"]["name"], "--wait=false", check=False
            )
        for ns in names.values():
            kube_cluster.delete_namespace(ns)


def _configmap(namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": tenancy.POLICY_CONFIGMAP, "namespace": namespace},
        "data": data,
    }


def _apply(kube_cluster, namespace: str, name: str, spec: dict[str, Any]):
    doc = yaml.safe_dump(conversion(name, spec))
    return kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=doc, check=False)


def _refused_once_enforced(kube_cluster, namespace: str, name: str, spec: dict[str, Any]):
    """A new or changed policy takes a moment to reach the apiserver's admission: poll."""

    def attempt():
        proc = kube_cluster.kubectl(
            "apply", "--dry-run=server", "-n", namespace, "-f", "-",
            input=yaml.safe_dump(conversion(name, spec)), check=False,
        )  # fmt: skip
        return proc if proc.returncode != 0 else None

    return wait_for(attempt, 30, f"the tenancy policy to refuse {name} in {namespace}")


def _accepted_once_enforced(kube_cluster, namespace: str, name: str, spec: dict[str, Any]):
    def attempt():
        proc = _apply(kube_cluster, namespace, name, spec)
        return proc if proc.returncode == 0 else None

    return wait_for(attempt, 30, f"{name} to be admitted in {namespace}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_shipped_policy_agrees_with_the_operators_check(kube_cluster, tenants, case: Case):
    ns = tenants["a"]
    # Wait until the policy is live (a known refusal), so an accepted case proves something.
    _refused_once_enforced(kube_cluster, ns, "probe", spec_with(source={"uri": "gs://zz-x/m"}))
    proc = _apply(kube_cluster, ns, case.id, case.spec)
    policy = tenancy.policy_from_configmap(_configmap(ns, POLICY_A))
    by_operator = tenancy.violations(parse_spec(case.spec), policy, ns)
    if not case.refused:
        assert proc.returncode == 0, proc.stderr
        assert by_operator == []
        return
    assert proc.returncode != 0, f"admitted: {case.id}\n{proc.stdout}"
    assert "ValidatingAdmissionPolicy" in proc.stderr and "denied request" in proc.stderr
    for text in case.refused:
        assert text in proc.stderr, proc.stderr
        assert text in by_operator[0]
    assert f"ConfigMap {ns}/tflite-tenant-policy" in proc.stderr


def test_another_tenants_bucket_and_service_account_are_refused_until_the_policy_allows_them(
    kube_cluster, tenants
):
    ns_a = tenants["a"]
    theirs = spec_with(
        source={"uri": "gs://team-b-models/m/saved_model"},
        output={"uri": "gs://team-b-models/out/"},
        job={"serviceAccountName": "converter-b"},
    )
    refused = _refused_once_enforced(kube_cluster, ns_a, "borrowed", theirs)
    # The apiserver reports the first failing rule; each rule alone is refused too.
    assert "may only use buckets under (gs://team-a-models/" in refused.stderr
    assert "not gs://team-b-models/m/saved_model, gs://team-b-models/out/" in refused.stderr
    their_sa = spec_with(job={"serviceAccountName": "converter-b"})
    refused = _apply(kube_cluster, ns_a, "borrowed-sa", their_sa)
    assert "may only run converters as (converter-a), not converter-b" in refused.stderr
    # The other tenant may use them in its own namespace.
    assert _apply(kube_cluster, tenants["b"], "own", theirs).returncode == 0
    # A namespace without a policy: tenancy.whenNoPolicy's default, Allow.
    assert _apply(kube_cluster, tenants["nopolicy"], "free", theirs).returncode == 0

    relaxed = {
        "bucketPrefixes": POLICY_A["bucketPrefixes"] + ", gs://team-b-models",
        "serviceAccounts": "converter-a converter-b",
    }
    kube_cluster.apply(_configmap(ns_a, relaxed))
    _accepted_once_enforced(kube_cluster, ns_a, "borrowed", theirs)
    policy = tenancy.policy_from_configmap(_configmap(ns_a, relaxed))
    assert tenancy.violations(parse_spec(theirs), policy, ns_a) == []

    # The operator's own updates of an admitted resource are not refused once the policy is
    # tightened again: only a new spec is checked.
    kube_cluster.apply(_configmap(ns_a, POLICY_A))
    _refused_once_enforced(kube_cluster, ns_a, "borrowed-2", theirs)
    labelled = kube_cluster.kubectl(
        "label", "-n", ns_a, "tflc/borrowed", "touched=yes", check=False
    )
    assert labelled.returncode == 0, labelled.stderr


def test_when_no_policy_is_deny_a_namespace_without_one_is_refused(kube_cluster, tenants, helm):
    objs = _policy_objects(helm, {"tenancy": {"whenNoPolicy": "Deny"}})
    kube_cluster.apply(objs)
    try:
        refused = _refused_once_enforced(kube_cluster, tenants["nopolicy"], "free-2", BASE)
        # The apiserver's own words (a binding cannot word this): the install docs explain it.
        assert "no params found for policy binding with `Deny`" in refused.stderr, refused.stderr
        assert _apply(kube_cluster, tenants["a"], "still-fine", BASE).returncode == 0
    finally:
        kube_cluster.apply(_policy_objects(helm))


def test_a_tenant_cannot_rewrite_its_own_policy(kube_cluster, tenants, tmp_path):
    """The built-in `edit` role writes every ConfigMap of its namespace; the policy's is
    guarded, while the cluster admin (and the namespace controller) keep their way."""
    ns = tenants["a"]
    kube_cluster.kubectl(
        "create", "rolebinding", "alice-edit", "-n", ns, "--clusterrole=edit", "--user=alice"
    )
    as_alice = ("--as=alice", "-n", ns)
    mine = kube_cluster.kubectl(*as_alice, "create", "configmap", "mine", "--from-literal=a=b")
    assert mine.returncode == 0, mine.stderr  # she can write ConfigMaps at all

    def refused(*args: str, input: str | None = None) -> str:
        proc = kube_cluster.kubectl(*as_alice, *args, input=input, check=False)
        assert proc.returncode != 0, proc.stdout
        return proc.stderr

    # Wait for the guard to be live (a new label value each time: kubectl sends nothing for a
    # label that is already there), then try every way in.
    tries = iter(range(1000))
    wait_for(
        lambda: kube_cluster.kubectl(
            *as_alice, "label", "--overwrite", "configmap", tenancy.POLICY_CONFIGMAP,
            f"try={next(tries)}", check=False,
        ).returncode != 0,
        30,
        "the policy guard",
    )  # fmt: skip
    grabbed = {**POLICY_A, "bucketPrefixes": "gs://"}
    cm = yaml.safe_dump(_configmap(ns, grabbed))
    message = refused("apply", "-f", "-", "--dry-run=server", input=cm)
    assert "alice may not change ConfigMap" in message and "tenant policy" in message, message
    assert "tenantpolicies.tflite.dev" in message
    refused("delete", "configmap", tenancy.POLICY_CONFIGMAP)
    other = tenants["nopolicy"]
    kube_cluster.kubectl(
        "create", "rolebinding", "alice-edit", "-n", other, "--clusterrole=edit", "--user=alice"
    )
    proc = kube_cluster.kubectl(
        "--as=alice", "-n", other, "apply", "-f", "-", check=False,
        input=yaml.safe_dump(_configmap(other, grabbed)),
    )  # fmt: skip
    assert proc.returncode != 0, "a tenant wrote a policy for a namespace that had none"

    # The admin may, and a namespace holding a policy can still be deleted.
    kube_cluster.apply(_configmap(ns, POLICY_A))
    doomed = kube_cluster.create_namespace(prefix="doomed-")
    kube_cluster.apply(_configmap(doomed, POLICY_A))
    kube_cluster.delete_namespace(doomed, wait=True, timeout=60)
