"""The helm chart, rendered by the pinned helm: lint, the objects it makes with default and
non-default values, its CRDs against the generated ones, and its RBAC against what the
operator's own control-plane tests run with. No cluster here (see test_chart_controlplane.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from shipping_helpers import (
    CHART,
    CHART_CRDS,
    CI_VALUES,
    RELEASE_NS,
    TOP_CRDS,
    Helm,
    by_kind,
    container_env,
    normalized_rules,
    one,
)

from tflite_operator.controller.settings import ENV_VARS, from_env

OPERATOR_RBAC = CHART.parents[1] / "tests" / "operator" / "rbac.yaml"
NAMESPACED = {"watchNamespaces": ["team-a", "team-b"]}


@pytest.fixture(scope="module")
def default_docs(helm: Helm) -> list[dict]:
    return helm.template()


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "default")
def test_lint_is_clean(helm: Helm, values: Path | None):
    args = ["lint", "--strict", str(CHART), "--namespace", RELEASE_NS]
    if values:
        args += ["--values", str(values)]
    out = helm.run(*args).stdout
    assert "0 chart(s) failed" in out
    # [INFO] lines are advice; anything stronger is a finding.
    assert not re.search(r"^\[(WARNING|ERROR)\]", out, re.M), out


def test_default_install(default_docs: list[dict]):
    kinds = sorted(d["kind"] for d in default_docs)
    assert kinds == sorted(
        ["ClusterRole"] * 3
        + ["ClusterRoleBinding", "Deployment", "NetworkPolicy", "ServiceAccount"]
        + ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] * 2
    ), kinds
    cluster_scoped = (
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    )
    for doc in default_docs:
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"]["namespace"] == RELEASE_NS, doc["metadata"]


def test_deployment_shape(default_docs: list[dict]):
    dep = one(default_docs, "Deployment")
    spec = dep["spec"]
    # Two standalone Kopf operators would both handle every resource.
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"] == ["tflite-operator", "operator"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"healthz": 8080, "metrics": 9090}
    assert c["resources"]["requests"] and c["resources"]["limits"]
    # The restricted Pod Security Standard, field by field.
    psc, csc = pod["securityContext"], c["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert csc["allowPrivilegeEscalation"] is False and csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert pod["serviceAccountName"] == one(default_docs, "ServiceAccount")["metadata"]["name"]
    # The selector must never match converter pods (they carry managed-by=tflite-operator).
    assert spec["selector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"


def test_default_env_is_what_the_operator_reads(default_docs: list[dict]):
    env = container_env(one(default_docs, "Deployment"))
    settings = from_env(env)
    assert settings.clusterwide
    assert settings.converter_image == "ghcr.io/tflite-operator/tflite-converter:0.1.0"
    assert settings.default_resources["limits"] == {"memory": "4Gi"}
    assert settings.metrics_port == 9090 and settings.job_ttl_seconds == 86400
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    # Converter defaults stay the operator's own unless a value is set.
    assert settings.converter_service_account is None and settings.gcs_key_secret is None
    assert not settings.converter_node_selector and not settings.converter_tolerations


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda v: v.name)
def test_every_env_var_is_an_operator_setting(helm: Helm, values: Path):
    env = container_env(one(helm.template(values_files=[values]), "Deployment"))
    extra = {"HTTPS_PROXY"}  # operator.extraEnv in ci/full-values.yaml: the user's own
    unknown = set(env) - set(ENV_VARS.values()) - extra
    assert not unknown, f"the chart sets variables the operator does not read: {unknown}"
    from_env({k: v for k, v in env.items() if k not in extra})


def test_non_default_values_reach_the_operator(helm: Helm):
    docs = helm.template(values_files=[CHART / "ci" / "full-values.yaml"])
    env = container_env(one(docs, "Deployment"))
    settings = from_env({k: v for k, v in env.items() if k in set(ENV_VARS.values())})
    assert settings.namespaces == ("ml-team-a", "ml-team-b")
    assert settings.converter_image == "registry.example.com/ml/tflite-converter:0.1.0-gpu"
    assert settings.image_pull_policy == "Always"
    assert settings.job_ttl_seconds is None and settings.max_concurrent_jobs == 2
    assert settings.converter_extra_env == {"TF_CPP_MIN_LOG_LEVEL": "2"}
    assert settings.converter_node_selector == {"cloud.google.com/gke-nodepool": "converters"}
    assert [t["key"] for t in settings.converter_tolerations] == ["dedicated"]
    assert settings.converter_service_account == "tflite-tflite-operator-converter"
    dep = one(docs, "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "registry.example.com/ml/tflite-operator@sha256:" + "0" * 64

    docs = helm.template(values_files=[CHART / "ci" / "gcs-key-values.yaml"])
    settings = from_env(container_env(one(docs, "Deployment")))
    assert (settings.gcs_key_secret, settings.gcs_key_secret_key) == ("gcs-key", "key.json")
    assert settings.metrics_port == 0 and settings.clusterwide


def test_watch_namespaces_give_roles_and_nothing_cluster_wide(helm: Helm):
    docs = helm.template({"operator": NAMESPACED, "rbac": {"aggregateToDefaultRoles": False}})
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    roles = by_kind(docs, "Role")
    bindings = by_kind(docs, "RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    sa = one(docs, "ServiceAccount")["metadata"]
    for b in bindings:
        assert b["roleRef"]["kind"] == "Role"
        assert b["subjects"] == [
            {"kind": "ServiceAccount", "name": sa["name"], "namespace": RELEASE_NS}
        ]
    env = container_env(one(docs, "Deployment"))
    assert env["WATCH_NAMESPACES"] == "team-a,team-b"


def _operator_rules(docs: list[dict]) -> list[dict]:
    roles = [
        d
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
        and not d["metadata"]["name"].endswith(("-edit", "-view"))
    ]
    assert roles
    rules = [r["rules"] for r in roles]
    assert all(r == rules[0] for r in rules), "every namespace's Role must be the same"
    return rules[0]


@pytest.mark.parametrize("values", [{}, {"operator": NAMESPACED}], ids=["cluster", "namespaces"])
def test_rbac_has_no_wildcards_and_no_write_beyond_need(helm: Helm, values: dict[str, Any]):
    docs = helm.template(values)
    for doc in by_kind(docs, "Role") + by_kind(docs, "ClusterRole"):
        for rule in doc["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], (doc["metadata"]["name"], rule)
    triples = normalized_rules(_operator_rules(docs))
    # The operator never touches Secrets, never creates or deletes TFLiteConversions (users
    # do), never edits pods (the Job controller does), and never escalates.
    forbidden_resources = {"secrets", "configmaps", "roles", "rolebindings", "clusterroles"}
    assert not {t for t in triples if t[1] in forbidden_resources}
    assert {t[2] for t in triples if t[1] == "tfliteconversions"} == {
        "get",
        "list",
        "watch",
        "patch",
    }
    # Only what the code calls: Kube.pods_of_job lists; Kopf posts Events with create, and the
    # operator lists a Job's FailedCreate events; status is patched, never read through the
    # subresource.
    assert {t[2] for t in triples if t[1] == "pods"} == {"list"}
    assert {t[2] for t in triples if t[1] == "events"} == {"create", "list"}
    assert {t[2] for t in triples if t[1] == "tfliteconversions/status"} == {"patch"}
    assert not {t for t in triples if t[0] == "events.k8s.io"}
    # blockOwnerDeletion on the Job's ownerReference, under OwnerReferencesPermissionEnforcement
    # (tests/operator/test_owner_references_rbac.py shows the Job refused without it).
    assert ("tflite.dev", "tfliteconversions/finalizers", "update") in triples
    # The tenant policy ConfigMap (controller/tenancy.py), by name, read only.
    assert {t for t in triples if t[1].startswith("configmaps")} == {
        ("", "configmaps:tflite-tenant-policy", "get")
    }
    # Cluster-scoped reads only for a cluster-wide operator: Kopf's CRD scanning.
    cluster_scoped = {t for t in triples if t[1] in ("customresourcedefinitions", "namespaces")}
    if values:
        assert not cluster_scoped
    else:
        assert cluster_scoped == {
            ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")
        }
    assert not {t for t in triples if t[2] in ("escalate", "bind", "impersonate")}
    assert {t for t in triples if t[2] == "update"} == {
        ("tflite.dev", "tfliteconversions/finalizers", "update")
    }


def test_operator_tests_run_with_the_charts_rules(helm: Helm):
    """tests/operator/rbac.yaml is what the operator's control-plane tests bind the operator
    to (in namespaced mode); the chart's Role must grant exactly that, so the chart is the
    one source of truth and that file a copy checked here."""
    copy = yaml.safe_load(OPERATOR_RBAC.read_text())
    chart = _operator_rules(helm.template({"operator": NAMESPACED}))
    assert normalized_rules(copy["rules"]) == normalized_rules(chart)


def test_crds_match_the_generated_ones():
    """The chart ships crds/ verbatim: helm installs them before the templates, and never
    upgrades them (README: how to upgrade)."""
    top = sorted(p.name for p in TOP_CRDS.glob("*.yaml"))
    chart = sorted(p.name for p in CHART_CRDS.glob("*.yaml"))
    assert chart == top, "charts/tflite-operator/crds/ must hold the same files as crds/"
    for name in top:
        assert (CHART_CRDS / name).read_text() == (TOP_CRDS / name).read_text(), (
            f"charts/tflite-operator/crds/{name} drifted from crds/{name}: "
            f"cp crds/{name} charts/tflite-operator/crds/"
        )


def test_converter_service_accounts_and_network_policies_per_namespace(helm: Helm):
    docs = helm.template(values_files=[CHART / "ci" / "full-values.yaml"])
    sas = [
        d for d in by_kind(docs, "ServiceAccount") if d["metadata"]["name"].endswith("-converter")
    ]
    assert sorted(s["metadata"]["namespace"] for s in sas) == ["ml-team-a", "ml-team-b"]
    for sa in sas:
        assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == (
            "tflite-converter@my-project.iam.gserviceaccount.com"
        )
        assert sa["automountServiceAccountToken"] is False
    policies = [
        d for d in by_kind(docs, "NetworkPolicy") if d["metadata"]["name"].endswith("-converter")
    ]
    assert sorted(p["metadata"]["namespace"] for p in policies) == ["ml-team-a", "ml-team-b"]
    spec = policies[0]["spec"]
    # The labels the operator's Job builder puts on converter pods.
    assert spec["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/managed-by": "tflite-operator",
        "app.kubernetes.io/name": "tflite-converter",
    }
    assert spec["ingress"] == [] and spec["policyTypes"] == ["Ingress", "Egress"]
    ports = [{(p["port"], p["protocol"]) for p in rule["ports"]} for rule in spec["egress"]]
    assert ports[:2] == [{(53, "UDP"), (53, "TCP")}, {(443, "TCP")}]
    # Nothing but DNS, HTTPS and the GKE metadata server (Workload Identity) goes out.
    assert set().union(*ports) <= {
        (53, "UDP"),
        (53, "TCP"),
        (443, "TCP"),
        (80, "TCP"),
        (988, "TCP"),
    }


def test_job_builder_labels_match_the_network_policy():
    from tflite_operator.controller.job_builder import labels

    pod_labels = labels("x", 1)
    selector = {
        "app.kubernetes.io/managed-by": "tflite-operator",
        "app.kubernetes.io/name": "tflite-converter",
    }
    assert selector.items() <= pod_labels.items()


def test_metrics_service_and_service_monitor(helm: Helm):
    docs = helm.template(values_files=[CHART / "ci" / "full-values.yaml"])
    svc = one(docs, "Service")
    dep = one(docs, "Deployment")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
    mon = one(docs, "ServiceMonitor")
    assert mon["apiVersion"] == "monitoring.coreos.com/v1"
    assert mon["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert mon["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_service_monitor_without_service_is_refused(helm: Helm):
    proc = helm.run(
        "template", "t", str(CHART), "--set", "metrics.serviceMonitor.enabled=true", check=False
    )
    assert proc.returncode != 0 and "metrics.service.enabled" in proc.stderr


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("operator.maxConcurentJobs=3", "additional properties 'maxConcurentJobs'"),
        ("converter.image.pullPolicy=Sometimes", "pullPolicy"),
        ("operator.watchNamespaces[0]=Not_A_Namespace", "watchNamespaces"),
        ("converter.serviceAccount.gcpServiceAccount=someone@gmail.com", "gcpServiceAccount"),
    ],
)
def test_schema_refuses_bad_values(helm: Helm, flag: str, message: str):
    proc = helm.run("template", "t", str(CHART), "--set", flag, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def _key_paths(values: dict[str, Any], prefix: str = "") -> dict[str, bool]:
    """Every key path in values.yaml -> whether it is a leaf."""
    paths: dict[str, bool] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        nested = isinstance(value, dict) and bool(value)
        paths[path] = not nested
        if nested:
            paths |= _key_paths(value, f"{path}.")
    return paths


def test_readme_documents_every_value():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    table = readme.split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([^`]+)` \|", table, re.M))
    paths = _key_paths(values)

    def covered(path: str) -> bool:
        # A row for a whole map (say `operator.resources`) covers its keys.
        parts = path.split(".")
        return any(".".join(parts[:i]) in documented for i in range(1, len(parts) + 1))

    missing = [k for k, leaf in paths.items() if leaf and not covered(k)]
    assert not missing, f"charts/tflite-operator/README.md has no row for {missing}"
    stale = documented - set(paths)
    assert not stale, f"the README documents values that do not exist: {stale}"


def test_notes_print_the_workload_identity_bindings(helm: Helm):
    proc = helm.run(
        "install", "tflite-operator", str(CHART), "--namespace", RELEASE_NS, "--dry-run=client",
        "--values", str(CHART / "ci" / "full-values.yaml"),
    )  # fmt: skip
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "It watches TFLiteConversions in: ml-team-a, ml-team-b." in notes
    for ns in ("ml-team-a", "ml-team-b"):
        assert f"PROJECT_ID.svc.id.goog[{ns}/tflite-operator-converter]" in notes
    assert "rollout status deployment/tflite-operator" in notes
