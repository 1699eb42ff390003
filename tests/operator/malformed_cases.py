"""Malformed TFLiteConversion specs: each must be refused by the spec model and by the apiserver.

`k8s` is the field path the apiserver names in its error, `pydantic` what the spec model's
message says; both come from the same rule, once in Python and once in the CRD's schema or CEL.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

BASE: dict[str, Any] = {
    "source": {"uri": "gs://models/m/saved_model"},
    "output": {"uri": "gs://models-out/m/"},
    "variants": [{"name": "fp32"}],
}


@dataclass(frozen=True)
class Case:
    id: str
    spec: dict[str, Any]
    k8s: str | tuple[str, ...]  # in the apiserver's message
    pydantic: str  # in SpecError's message


def with_(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec.update(changes)
    return spec


def without(key: str) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    del spec[key]
    return spec


CASES = [
    Case(
        "variant-name-pattern",
        with_(variants=[{"name": "Bad_Name"}]),
        "spec.variants[0].name",
        "spec.variants.0.name",
    ),
    Case(
        "duplicate-variant-names",
        with_(variants=[{"name": "a"}, {"name": "a", "quantization": "float16"}]),
        ("spec.variants", "variant names must be unique"),
        "variant names must be unique",
    ),
    Case(
        "int8-io-without-int8-quantization",
        with_(variants=[{"name": "x", "quantization": "float16", "ioType": "int8"}]),
        "spec.variants[0].ioType",
        "ioType int8 needs quantization int8",
    ),
    Case(
        "int16-io-with-int8-quantization",
        with_(variants=[{"name": "x", "quantization": "int8", "ioType": "int16"}]),
        "spec.variants[0].ioType",
        "ioType int16 needs quantization int16x8",
    ),
    Case(
        "representative-data-without-integer-quantization",
        with_(variants=[{"name": "x", "representativeDataset": {"samples": 5}}]),
        "spec.variants[0].representativeDataset",
        "representativeDataset is only used by int8 and int16x8",
    ),
    Case("no-variants", with_(variants=[]), "spec.variants", "spec.variants"),
    Case(
        "too-many-variants",
        with_(variants=[{"name": f"v{i}"} for i in range(17)]),
        "spec.variants",
        "spec.variants",
    ),
    Case(
        "unknown-quantization",
        with_(variants=[{"name": "x", "quantization": "int4"}]),
        "spec.variants[0].quantization",
        "spec.variants.0.quantization",
    ),
    Case(
        "bucket-name-too-short",
        with_(source={"uri": "gs://x/m"}),
        "spec.source.uri",
        "spec.source.uri",
    ),
    Case("missing-output", without("output"), "spec.output", "spec.output"),
    Case(
        "benchmark-runs-zero",
        with_(benchmark={"runs": 0}),
        "spec.benchmark.runs",
        "spec.benchmark.runs",
    ),
    Case(
        "latency-budget-zero",
        with_(target={"maxLatencyMs": 0}),
        "spec.target.maxLatencyMs",
        "spec.target.maxLatencyMs",
    ),
    Case(
        "top1-agreement-above-one",
        with_(target={"minTop1Agreement": 1.5}),
        "spec.target.minTop1Agreement",
        "spec.target.minTop1Agreement",
    ),
    Case(
        "backoff-limit-too-high",
        with_(job={"backoffLimit": 11}),
        "spec.job.backoffLimit",
        "spec.job.backoffLimit",
    ),
    Case(
        "service-account-name-pattern",
        with_(job={"serviceAccountName": "Not_A_Name"}),
        "spec.job.serviceAccountName",
        "spec.job.serviceAccountName",
    ),
    Case(
        "toleration-operator",
        with_(job={"tolerations": [{"key": "gpu", "operator": "Maybe"}]}),
        "spec.job.tolerations[0].operator",
        "spec.job.tolerations.0.operator",
    ),
    Case(
        "unknown-source-format",
        with_(source={"uri": "gs://models/m/saved_model", "format": "onnx"}),
        "spec.source.format",
        "spec.source.format",
    ),
    Case(
        "unknown-field",
        with_(outputs={"uri": "gs://models-out/m/"}),
        'unknown field "spec.outputs"',
        "spec.outputs",
    ),
]
