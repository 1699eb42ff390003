"""The spec of a TFLiteConversion resource: one model for the CRD, the operator and the converter.

Field names are camelCase on the wire (Kubernetes style) and snake_case in Python.
The CRD's openAPIV3Schema is generated from these models (see controller/crd.py), so a field
added here reaches the apiserver's validation too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from tflite_operator.api import kube_rules as kr
from tflite_operator.api.errors import SpecError
from tflite_operator.storage.uris import parse_uri

MAX_URI = 1024
# Input names are as long as signature keys may be; 16 inputs keep the largest spec within the
# Job's environment (tests/operator/test_crd.py).
MAX_INPUT_NAME = 128
MAX_INPUTS = 16
# TFLite stores dims as int32.
MAX_DIM = 2**31 - 1


def _uri(value: str) -> str:
    # The same parser the converter uses, so the CLI refuses what a run would. In a cluster
    # the CRD also demands gs:// (controller/crd.py): local paths only make sense here.
    try:
        parse_uri(value)
    except SpecError as err:
        raise ValueError(f"must be gs://BUCKET/PATH or a local path; {err.message}") from None
    return value


# One input's dims, batch included; TFLite tensors have at most a handful of axes.
InputDims = Annotated[
    list[Annotated[int, Field(ge=1, le=MAX_DIM)]], Field(min_length=1, max_length=8)
]

# gs://bucket/prefix, or a local path (absolute, relative or file://) for runs outside a cluster.
Uri = Annotated[str, Field(min_length=1, max_length=MAX_URI), AfterValidator(_uri)]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The camelCase dict, as it appears in a manifest (defaults left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class SourceFormat(StrEnum):
    AUTO = "auto"
    SAVED_MODEL = "saved_model"
    KERAS = "keras"


class Quantization(StrEnum):
    NONE = "none"
    FLOAT16 = "float16"
    DYNAMIC_RANGE = "dynamic-range"
    INT8 = "int8"
    INT16X8 = "int16x8"


class IOType(StrEnum):
    FLOAT32 = "float32"
    INT8 = "int8"
    UINT8 = "uint8"
    INT16 = "int16"


class OpsPolicy(StrEnum):
    BUILTINS = "builtins"
    SELECT_TF_OPS = "select-tf-ops"


# Which I/O types each quantization can honour; the converter silently ignores others.
ALLOWED_IO_TYPES: dict[str, tuple[str, ...]] = {
    Quantization.NONE: (IOType.FLOAT32,),
    Quantization.FLOAT16: (IOType.FLOAT32,),
    Quantization.DYNAMIC_RANGE: (IOType.FLOAT32,),
    Quantization.INT8: (IOType.FLOAT32, IOType.INT8, IOType.UINT8),
    Quantization.INT16X8: (IOType.FLOAT32, IOType.INT16),
}
NEEDS_REPRESENTATIVE_DATA = (Quantization.INT8, Quantization.INT16X8)
# Keeping layers in float only means something for integer quantization.
ACCURACY_CONTROL_QUANTIZATIONS = (Quantization.INT8, Quantization.INT16X8)


class Source(_Model):
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


class Output(_Model):
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


class RepresentativeDataset(_Model):
    uri: Annotated[
        Uri | None,
        Field(
            description=".npz or .npy file of input samples; omitted means synthetic, seeded data."
        ),
    ] = None
    samples: Annotated[int, Field(ge=1, le=10000, description="How many samples to use.")] = 100
    seed: Annotated[int, Field(ge=0, description="Seed for synthetic samples.")] = 0


class AccuracyControl(_Model):
    """Keep the layers that quantize worst in float until the accuracy budgets hold."""

    max_float_layers: Annotated[
        int,
        Field(
            ge=1,
            le=64,
            description="At most this many layers stay in float; each costs size and latency.",
        ),
    ] = 8


class Variant(_Model):
    name: Annotated[
        str,
        Field(min_length=1, max_length=40, description="File name stem of <name>.tflite."),
        kr.valid(kr.dns1123_label_problem),
    ]
    quantization: Quantization = Quantization.NONE
    io_type: Annotated[
        IOType,
        Field(
            description="Input/output tensor type: int8/uint8 need int8 quantization, "
            "int16 needs int16x8."
        ),
    ] = IOType.FLOAT32
    representative_dataset: Annotated[
        RepresentativeDataset | None,
        Field(description="Calibration data for int8 and int16x8."),
    ] = None
    ops: Annotated[
        OpsPolicy,
        Field(description="builtins only, or allow Select TF ops (Flex) for unsupported ops."),
    ] = OpsPolicy.BUILTINS
    max_output_error: Annotated[
        float | None,
        Field(ge=0, description="Overrides target.maxOutputError for this variant."),
    ] = None
    accuracy_control: Annotated[
        AccuracyControl | None,
        Field(
            description="int8/int16x8 only: when the variant misses its accuracy budgets, keep "
            "the layers with the largest quantization error in float until the budgets hold."
        ),
    ] = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        allowed = ALLOWED_IO_TYPES[self.quantization]
        if self.io_type not in allowed:
            raise ValueError(
                f"variant {self.name!r}: ioType {self.io_type} needs quantization "
                f"{'int8' if self.io_type in ('int8', 'uint8') else 'int16x8'}; "
                f"with quantization {self.quantization} use ioType {' or '.join(allowed)}"
            )
        if self.representative_dataset and self.quantization not in NEEDS_REPRESENTATIVE_DATA:
            raise ValueError(
                f"variant {self.name!r}: representativeDataset is only used by int8 and "
                f"int16x8 quantization; remove it or change quantization"
            )
        if self.accuracy_control and self.quantization not in ACCURACY_CONTROL_QUANTIZATIONS:
            raise ValueError(
                f"variant {self.name!r}: accuracyControl keeps layers of an int8 or int16x8 "
                f"model in float; with quantization {self.quantization} there is nothing to "
                f"keep in float: remove accuracyControl or set quantization: int8"
            )
        return self

    @property
    def calibration(self) -> RepresentativeDataset:
        return self.representative_dataset or RepresentativeDataset()


class Target(_Model):
    max_model_size_bytes: Annotated[int | None, Field(ge=1)] = None
    max_latency_ms: Annotated[float | None, Field(gt=0, description="p50 latency budget.")] = None
    max_output_error: Annotated[
        float | None, Field(ge=0, description="Budget for max absolute error vs the source.")
    ] = None
    min_top1_agreement: Annotated[
        float | None,
        Field(ge=0, le=1, description="For classifier outputs: share of equal argmax."),
    ] = None
    min_top5_agreement: Annotated[
        float | None,
        Field(
            ge=0,
            le=1,
            description="For classifier outputs with more than 5 classes: share of samples "
            "whose source top-1 class is among the variant's 5 highest scores.",
        ),
    ] = None
    min_snr_db: Annotated[
        float | None,
        Field(
            description="Budget for the worst output's signal-to-noise ratio vs the source, "
            "in dB (20 dB: error power 1% of the output's)."
        ),
    ] = None
    max_kl_divergence: Annotated[
        float | None,
        Field(
            ge=0,
            description="For probability outputs (softmax rows): budget for the mean "
            "KL divergence from the source's distribution, in nats.",
        ),
    ] = None
    max_accuracy_drop: Annotated[
        float | None,
        Field(
            ge=0,
            le=100,
            description="Budget for the drop in top-1 task accuracy vs the source, in "
            "percentage points (1.0: at most 1 point worse); needs a validation.datasetUri "
            "file with a labels array.",
        ),
    ] = None
    allowed_ops: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]] | None,
        Field(
            max_length=256,
            description="Ops the device supports (TFLite builtin names, e.g. CONV_2D); "
            "a variant using any other op does not meet the target.",
        ),
    ] = None
    allow_unverified: Annotated[
        bool,
        Field(
            description="Let a variant this runtime cannot validate or run (e.g. Select TF "
            "ops on the pip LiteRT runtime) meet the target and be selected, judged on what "
            "could be checked (size, ops); its verdict stays `unverified`.",
        ),
    ] = False


class Benchmark(_Model):
    enabled: bool = True
    runs: Annotated[int, Field(ge=1, le=10000)] = 50
    warmup_runs: Annotated[int, Field(ge=0, le=1000)] = 5
    threads: Annotated[int, Field(ge=1, le=64)] = 2
    max_seconds: Annotated[
        float,
        Field(
            gt=0,
            le=3600,
            description="Time bound of each variant's timed runs (and the source baseline's), "
            "like benchmark_model's max_secs: they stop at `runs` or after this many seconds, "
            "but never before 5 runs; warm-up runs always run. The report says when runs "
            "were cut (timeBounded) and how many were made.",
        ),
    ] = 10.0
    source_baseline: Annotated[
        bool, Field(description="Also time the source model in TensorFlow (speed-up ratio).")
    ] = True


class Validation(_Model):
    enabled: bool = True
    samples: Annotated[int, Field(ge=1, le=10000)] = 32
    dataset_uri: Annotated[
        Uri | None,
        Field(
            description=".npz/.npy inputs to compare on; omitted means the first variant's "
            "calibration data, else synthetic.",
        ),
    ] = None
    seed: Annotated[int, Field(ge=0)] = 1


class Toleration(_Model):
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


class Resources(_Model):
    requests: kr.ResourceList | None = None
    limits: kr.ResourceList | None = None

    @model_validator(mode="after")
    def _as_the_apiserver_checks(self) -> Self:
        if problems := kr.resources_problems(self.requests or {}, self.limits or {}):
            raise ValueError("; ".join(problems))
        return self


class JobOptions(_Model):
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


class ConversionSpec(_Model):
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
