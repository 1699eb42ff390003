"""Tenant-policy cases, shared by the operator's side (tests/operator/test_tenancy.py, pure)
and the admission side (tests/shipping/test_tenancy_controlplane.py, the chart's
ValidatingAdmissionPolicy on a real apiserver): both must refuse the same specs, saying the same.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

BASE: dict[str, Any] = {
    "source": {"uri": "gs://team-a-models/m/saved_model"},
    "output": {"uri": "gs://team-a-models/out/m/"},
    "variants": [{"name": "fp32"}],
}
POLICY_A = {
    "bucketPrefixes": "gs://team-a-models/\n gs://shared-models/public",
    "serviceAccounts": "converter-a",
}

# How both the VAP and the operator start naming a URI outside namespace team-a's buckets.
OURS = "may only use buckets under (gs://team-a-models/, gs://shared-models/public), not "


def spec_with(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec.update(changes)
    return spec


@dataclass(frozen=True)
class Case:
    id: str
    spec: dict[str, Any]
    refused: tuple[str, ...]  # in the VAP's message and in violations(); empty: allowed


CASES = [
    Case("own-buckets", BASE, ()),
    Case("shared-prefix", spec_with(source={"uri": "gs://shared-models/public/m"}), ()),
    Case("own-service-account", spec_with(job={"serviceAccountName": "converter-a"}), ()),
    Case(
        "other-tenants-source",
        spec_with(source={"uri": "gs://team-b-models/m/saved_model"}),
        (OURS + "gs://team-b-models/m/saved_model",),
    ),
    Case(
        "bucket-that-only-starts-like-ours",
        spec_with(output={"uri": "gs://team-a-models-evil/out/"}),
        (OURS + "gs://team-a-models-evil/out/",),
    ),
    Case(
        "sibling-of-a-shared-prefix",
        spec_with(source={"uri": "gs://shared-models/private/m"}),
        (OURS + "gs://shared-models/private/m",),
    ),
    Case(
        # gs://shared-models/public is in the policy without a trailing '/': a prefix still
        # ends at a '/' boundary, not in the middle of a name.
        "folder-that-only-starts-like-a-prefix",
        spec_with(source={"uri": "gs://shared-models/publicity/m"}),
        (OURS + "gs://shared-models/publicity/m",),
    ),
    Case(
        "other-tenants-dataset",
        spec_with(
            variants=[
                {
                    "name": "q",
                    "quantization": "int8",
                    "representativeDataset": {"uri": "gs://team-b-models/calib.npz"},
                }
            ]
        ),
        (OURS + "gs://team-b-models/calib.npz",),
    ),
    Case(
        "other-tenants-validation-data",
        spec_with(validation={"datasetUri": "gs://team-b-models/val.npz"}),
        (OURS + "gs://team-b-models/val.npz",),
    ),
    Case(
        "other-tenants-service-account",
        spec_with(job={"serviceAccountName": "converter-b"}),
        (
            "spec.job.serviceAccountName: namespace",
            "may only run converters as (converter-a), not converter-b",
        ),
    ),
]
