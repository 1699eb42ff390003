"""Tenant boundaries: the buckets and ServiceAccounts a namespace's conversions may use.

A cluster admin writes the policy of a namespace as a ConfigMap in that namespace (named by the
chart's `tenancy.policyConfigMap`, POLICY_CONFIGMAP by default):

    data:
      bucketPrefixes: "gs://team-a-models/ gs://shared/public/"   # sources, outputs, datasets
      serviceAccounts: "converter-a"                                # spec.job.serviceAccountName

Entries are separated by spaces, commas or newlines. A key that is absent leaves that dimension
open; a key that is present but empty allows nothing. A prefix matches itself and what lies
below it at a '/' boundary: gs://team-a matches gs://team-a/m but not gs://team-a-evil/m. A
spec without serviceAccountName runs as the operator's default converter ServiceAccount, which
the admin chose when installing the chart, so the policy does not restrict it.

The chart's ValidatingAdmissionPolicy (templates/tenancy.yaml) enforces the same rules at
admission; `violations` repeats them before the operator creates a Job, for resources admitted
before the policy was written or tightened. The two must agree: tests/operator/test_tenancy*.py
run both on the same cases.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from tflite_operator.api.spec import ConversionSpec
from tflite_operator.controller.kube import Kube

POLICY_CONFIGMAP = "tflite-tenant-policy"
BUCKET_PREFIXES = "bucketPrefixes"
SERVICE_ACCOUNTS = "serviceAccounts"
WhenMissing = Literal["Allow", "Deny"]


@dataclass(frozen=True)
class TenantPolicy:
    where: str  # "ConfigMap <namespace>/<name>", for messages
    bucket_prefixes: tuple[str, ...] | None = None  # None: any bucket
    service_accounts: tuple[str, ...] | None = None  # None: any ServiceAccount


def _entries(text: str) -> tuple[str, ...]:
    return tuple(e for e in re.split(r"[\s,]+", text) if e)


def policy_from_configmap(cm: Mapping[str, Any]) -> TenantPolicy:
    meta = cm.get("metadata") or {}
    data = cm.get("data") or {}
    return TenantPolicy(
        where=f"ConfigMap {meta.get('namespace')}/{meta.get('name')}",
        bucket_prefixes=_entries(data[BUCKET_PREFIXES]) if BUCKET_PREFIXES in data else None,
        service_accounts=_entries(data[SERVICE_ACCOUNTS]) if SERVICE_ACCOUNTS in data else None,
    )


def under(uri: str, prefix: str) -> bool:
    """Whether uri is prefix or below it, at a '/' boundary (the VAP's CEL says the same)."""
    boundary = prefix if prefix.endswith("/") else prefix + "/"
    return uri == prefix or uri + "/" == prefix or uri.startswith(boundary)


def uris_of(spec: ConversionSpec) -> list[tuple[str, str]]:
    """(field, URI) of everything the converter reads or writes."""
    found = [("spec.source.uri", spec.source.uri), ("spec.output.uri", spec.output.uri)]
    if spec.validation.dataset_uri:
        found.append(("spec.validation.datasetUri", spec.validation.dataset_uri))
    for i, v in enumerate(spec.variants):
        if v.representative_dataset and v.representative_dataset.uri:
            found.append(
                (f"spec.variants[{i}].representativeDataset.uri", v.representative_dataset.uri)
            )
    return found


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else "none"


def violations(
    spec: ConversionSpec,
    policy: TenantPolicy | None,
    namespace: str,
    when_missing: WhenMissing = "Allow",
    policy_name: str = POLICY_CONFIGMAP,
) -> list[str]:
    """What in `spec` the namespace's policy forbids, one message per problem (empty: allowed)."""
    if policy is None:
        if when_missing == "Allow":
            return []
        return [
            f"namespace {namespace} has no tenant policy (ConfigMap {policy_name}) and "
            "this operator requires one: ask the cluster admin to create it"
        ]
    problems = []
    if policy.bucket_prefixes is not None:
        for field, uri in uris_of(spec):
            if not any(under(uri, p) for p in policy.bucket_prefixes):
                problems.append(
                    f"{field}: namespace {namespace} may only use buckets under "
                    f"({_listed(policy.bucket_prefixes)}), not {uri}: use a URI under one of "
                    f"them, or ask the cluster admin to extend {policy.where} "
                    f"(key {BUCKET_PREFIXES})"
                )
    sa = spec.job.service_account_name
    if sa and policy.service_accounts is not None and sa not in policy.service_accounts:
        problems.append(
            f"spec.job.serviceAccountName: namespace {namespace} may only run converters as "
            f"({_listed(policy.service_accounts)}), not {sa}: use one of them, or ask the "
            f"cluster admin to extend {policy.where} (key {SERVICE_ACCOUNTS})"
        )
    return problems


def load_policy(kube: Kube, namespace: str, name: str = POLICY_CONFIGMAP) -> TenantPolicy | None:
    """The namespace's policy, None when it has none (RBAC: get on that one ConfigMap)."""
    cm = kube.get(f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}")
    return policy_from_configmap(cm) if cm is not None else None
