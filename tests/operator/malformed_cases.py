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
        ("spec.variants[0].name", "must be lowercase letters, digits and '-'"),
        "spec.variants.0.name: must be lowercase letters, digits and '-'",
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
    Case(
        "accuracy-control-without-integer-quantization",
        with_(variants=[{"name": "x", "quantization": "float16", "accuracyControl": {}}]),
        (
            "spec.variants[0].accuracyControl",
            "with quantization float16 there is nothing to keep in float: remove "
            "accuracyControl or set quantization: int8",
        ),
        "accuracyControl keeps layers of an int8 or int16x8 model in float",
    ),
    Case(
        "accuracy-control-too-many-float-layers",
        with_(
            variants=[
                {"name": "x", "quantization": "int8", "accuracyControl": {"maxFloatLayers": 65}}
            ]
        ),
        "spec.variants[0].accuracyControl.maxFloatLayers",
        "maxFloatLayers",
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
        ("spec.source.uri", "bucket name 'x' is not a valid Cloud Storage bucket name"),
        "invalid bucket name 'x'",
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
        ("spec.job.serviceAccountName", "(a Kubernetes object name"),
        "spec.job.serviceAccountName: must be at most 253 characters",
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
    # --- URIs: Cloud Storage's naming rules (storage/uris.py), said in words ---------------
    Case(
        "bucket-name-uppercase",
        with_(output={"uri": "gs://Models-Out/m/"}),
        ("spec.output.uri", "bucket name 'Models-Out' is not a valid Cloud Storage bucket name"),
        "invalid bucket name 'Models-Out'",
    ),
    Case(
        "bucket-name-google",
        with_(output={"uri": "gs://my-google-models/m/"}),
        ("spec.output.uri", "not starting with 'goog' or containing 'google'"),
        "must not start with 'goog' or contain 'google'",
    ),
    Case(
        "bucket-name-ip-address",
        with_(source={"uri": "gs://10.1.2.3/m"}),
        ("spec.source.uri", "not an IP address"),
        "must not look like an IP address",
    ),
    Case(
        "object-path-dot-dot",
        with_(output={"uri": "gs://models-out/team/../other/"}),
        ("spec.output.uri", "must not contain '.' or '..' segments"),
        "contains a '.' or '..' segment",
    ),
    Case(
        "dataset-bucket-name",
        with_(validation={"datasetUri": "gs://ab/x.npz"}),
        ("spec.validation.datasetUri", "bucket name 'ab' is not a valid"),
        "invalid bucket name 'ab'",
    ),
    # --- values the converter Job carries: the apiserver's rules for Jobs ----------------
    Case(
        "resources-bad-quantity",
        with_(job={"resources": {"requests": {"memory": "2 GB"}}}),
        ("spec.job.resources.requests", "memory: the value is not a non-negative quantity"),
        "memory: '2 GB' is not a non-negative quantity such as 500m",
    ),
    Case(
        "resources-negative-quantity",
        with_(job={"resources": {"limits": {"cpu": "-1"}}}),
        ("spec.job.resources.limits", "cpu: the value is not a non-negative quantity"),
        "cpu: '-1' is not a non-negative quantity",
    ),
    Case(
        "resources-unknown-name",
        with_(job={"resources": {"requests": {"gpu": "1"}}}),
        ("spec.job.resources.requests", "gpu is not a container resource; use cpu, memory"),
        "'gpu' is not a container resource; use cpu, memory",
    ),
    Case(
        "resources-request-above-limit",
        with_(job={"resources": {"requests": {"memory": "4Gi"}, "limits": {"memory": "2Gi"}}}),
        ("spec.job.resources", "a request is more than its limit"),
        "requests[memory] (4Gi) is more than limits[memory] (2Gi)",
    ),
    Case(
        "resources-extended-fraction",
        with_(job={"resources": {"limits": {"nvidia.com/gpu": "0.5"}}}),
        ("spec.job.resources.limits", "nvidia.com/gpu: must be a whole number"),
        "nvidia.com/gpu: '0.5' must be a whole number",
    ),
    Case(
        "resources-extended-without-limit",
        with_(job={"resources": {"requests": {"nvidia.com/gpu": "1"}}}),
        ("spec.job.resources", "cannot be overcommitted"),
        "cannot be overcommitted",
    ),
    Case(
        "toleration-without-key-not-exists",
        with_(job={"tolerations": [{"operator": "Equal", "value": "x"}]}),
        ("spec.job.tolerations[0].operator", "a toleration without key must have operator"),
        "a toleration without key must have operator: Exists",
    ),
    Case(
        "toleration-seconds-without-no-execute",
        with_(job={"tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 30}]}),
        ("spec.job.tolerations[0].effect", "tolerationSeconds only applies to effect"),
        "tolerationSeconds only applies to effect: NoExecute",
    ),
    Case(
        "toleration-exists-with-value",
        with_(job={"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}),
        ("spec.job.tolerations[0].value", "with operator: Exists matches any value"),
        "with operator: Exists matches any value",
    ),
    Case(
        "toleration-key-format",
        with_(job={"tolerations": [{"key": "bad key!", "operator": "Exists"}]}),
        ("spec.job.tolerations[0].key", "must be a label key"),
        "toleration key 'bad key!' must be a label key",
    ),
    Case(
        "toleration-value-format",
        with_(job={"tolerations": [{"key": "k", "value": "has space"}]}),
        ("spec.job.tolerations[0].value", "must be a label value"),
        "toleration value 'has space' must be a label value",
    ),
    Case(
        "node-selector-key-format",
        with_(job={"nodeSelector": {"-pool": "a"}}),
        ("spec.job.nodeSelector", "key -pool must be a label key"),
        "key '-pool' must be a label key",
    ),
    Case(
        "node-selector-value-format",
        with_(job={"nodeSelector": {"pool": "a b"}}),
        ("spec.job.nodeSelector", "the value of pool must be a label value"),
        "value 'a b' of 'pool' must be a label value",
    ),
    # --- size bounds: the spec always fits the Job's environment and Kopf's annotations ----
    Case(
        "node-selector-too-many-entries",
        with_(job={"nodeSelector": {f"k{i}": "v" for i in range(33)}}),
        ("spec.job.nodeSelector", "must have at most 32 items"),
        "spec.job.nodeSelector: Dictionary should have at most 32 items",
    ),
    Case(
        "allowed-op-name-too-long",
        with_(target={"allowedOps": ["X" * 65]}),
        ("spec.target.allowedOps[0]", "may not be more than 64 bytes"),
        "spec.target.allowedOps.0: String should have at most 64 characters",
    ),
    Case(
        "input-shape-zero-dim",
        with_(source={"uri": "gs://models/m/saved_model", "inputShapes": {"image": [1, 0, 8, 3]}}),
        ("spec.source.inputShapes.image[1]", "greater than or equal to 1"),
        "spec.source.inputShapes.image.1: Input should be greater than or equal to 1",
    ),
    Case(
        "input-shape-name-too-long",
        with_(source={"uri": "gs://models/m/saved_model", "inputShapes": {"x" * 129: [1, 8]}}),
        ("spec.source.inputShapes", "must be 1 to 128 characters"),
        "String should have at most 128 characters",
    ),
]

# Refused by the apiserver only: local paths are for `tflite-operator convert` on a
# workstation, which the spec model (shared with the CLI) allows.
CLUSTER_ONLY_CASES = [
    Case(
        f"local-{field}",
        spec,
        (where, "must be a gs://BUCKET/PATH URI: in a cluster"),
        "",
    )
    for field, spec, where in (
        ("source", with_(source={"uri": "./model"}), "spec.source.uri"),
        ("output", with_(output={"uri": "file:///tmp/out"}), "spec.output.uri"),
        (
            "dataset",
            with_(
                variants=[
                    {
                        "name": "q",
                        "quantization": "int8",
                        "representativeDataset": {"uri": "/data/calib.npz"},
                    }
                ]
            ),
            "spec.variants[0].representativeDataset.uri",
        ),
    )
]
