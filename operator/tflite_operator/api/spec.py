"""The spec of a TFLiteConversion resource: one model for the CRD, the operator and the converter.

Field names are camelCase on the wire (Kubernetes style) and snake_case in Python.
The CRD's openAPIV3Schema is generated from these models (see controller/crd.py), so a field
added here reaches the apiserver's validation too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from tflite_operator.api import kube_rules as kr
from tflite_operator.api.spec_checks import Benchmark, Target, Validation
from tflite_operator.api.spec_fields import MAX_INPUT_NAME, MAX_INPUTS, InputDims, Uri, WireModel
from tflite_operator.api.spec_variant import Variant


class SourceFormat(StrEnum):
    AUTO = "auto"
    SAVED_MODEL = "saved_model"
    KERAS = "keras"


class Source(WireModel):
    uri: Annotated[
        Uri,
        Field(description="SavedModel directory or .keras file: gs://bucket/path or a local path."),
    ]
    format: Annotated[
        SourceFormat,
        Field(description="auto picks keras for a .keras file, saved_model otherwise."),
    ] = SourceFormat.AUTO
    signature_keys: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=128)]],
        Field(
            min_length=1,
            max_length=16,
            description="SavedModel signatures to convert (ignored for .keras files).",
        ),
    ] = ["serving_default"]
    max_bytes: Annotated[
        int,
        Field(ge=1, description="Refuse to download a source larger than this (bytes)."),
    ] = 4 * 1024**3
    input_shapes: Annotated[
        dict[
            Annotated[str, Field(min_length=1, max_length=MAX_INPUT_NAME)],
            InputDims,
        ]
        | None,
        Field(
            max_length=MAX_INPUTS,
            description="Input name -> dims, batch included (e.g. image: [1, 224, 224, 3]): "
            "fixes the input's unknown dims for conversion, calibration, validation and "
            "benchmark. Needed when an input has an unknown dim other than the batch.",
        ),
    ] = None


class Output(WireModel):
    uri: Annotated[
        Uri, Field(description="Folder for <variant>.tflite, report.json and report.html.")
    ]
    overwrite: Annotated[
        bool, Field(description="Replace outputs that already exist at the URI.")
    ] = False
    delete_on_resource_deletion: Annotated[
        bool,
        Field(description="Remove the outputs when the TFLiteConversion resource is deleted."),
    ] = False
    reuse: Annotated[
        bool,
        Field(
            description="Copy a variant's .tflite from the previous outputs at this URI "
            "instead of converting again when its source objects, variant spec, calibration "
            "data and converter version are unchanged (validated and benchmarked anyway; "
            "the report's reusedFrom says so). Only outputs of this same resource (or, "
            "outside a cluster, of an earlier CLI run) are reused.",
        ),
    ] = True


class Toleration(WireModel):
    """A pod toleration, checked by the rules the apiserver applies to the Job's pod."""

    key: Annotated[str | None, Field(max_length=kr.MAX_QUALIFIED_NAME)] = None
    operator: Literal["Exists", "Equal"] | None = None
    value: Annotated[str | None, Field(max_length=kr.MAX_LABEL_VALUE)] = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None

    @model_validator(mode="after")
    def _as_the_apiserver_checks(self) -> Self:
        problem = kr.toleration_problem(
            self.key, self.operator, self.value, self.effect, self.toleration_seconds
        )
        if problem:
            raise ValueError(problem)
        return self


class Resources(WireModel):
    requests: kr.ResourceList | None = None
    limits: kr.ResourceList | None = None

    @model_validator(mode="after")
    def _as_the_apiserver_checks(self) -> Self:
        if problems := kr.resources_problems(self.requests or {}, self.limits or {}):
            raise ValueError("; ".join(problems))
        return self


class JobOptions(WireModel):
    """How the operator runs the converter Job; ignored by `tflite-operator convert`."""

    service_account_name: Annotated[
        kr.ObjectName | None,
        Field(
            description="ServiceAccount of the converter pod, for GCS access through Workload "
            "Identity (no API token is mounted)."
        ),
    ] = None
    resources: Resources | None = None
    active_deadline_seconds: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 3600
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 1
    node_selector: kr.NodeSelector | None = None
    tolerations: Annotated[list[Toleration] | None, Field(max_length=32)] = None


class ConversionSpec(WireModel):
    """`spec` of a TFLiteConversion."""

    source: Source
    output: Output
    variants: Annotated[list[Variant], Field(min_length=1, max_length=16)]
    target: Target = Target()
    benchmark: Benchmark = Benchmark()
    validation: Validation = Validation()
    job: JobOptions = JobOptions()

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _accuracy_drop_has_labels(self) -> Self:
        if self.target.max_accuracy_drop is None:
            return self
        if not self.validation.enabled or self.validation.dataset_uri is None:
            raise ValueError(
                "target.maxAccuracyDrop compares task accuracy on labelled samples: set "
                "validation.datasetUri to an .npz file with the inputs and a labels array "
                "(and keep validation.enabled true), or remove target.maxAccuracyDrop"
            )
        return self

    def tolerance_for(self, variant: Variant) -> float | None:
        if variant.max_output_error is not None:
            return variant.max_output_error
        return self.target.max_output_error
