"""The conversion report (report.json) and its compact summary (the pod's termination message).

The report is versioned: readers check `schemaVersion`. The summary is what the operator
turns into status, so it stays under the kubelet's 4096-byte termination-message limit.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

REPORT_SCHEMA_VERSION = "tflite-operator.report/v1"
SUMMARY_SCHEMA_VERSION = 1
TERMINATION_MESSAGE_LIMIT = 4096
# The reports' names in spec.output.uri, beside <variant>.tflite.
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class TensorInfo(_Model):
    name: str
    dtype: str
    shape: list[int | None]


class SignatureInfo(_Model):
    key: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]


class LatencyStats(_Model):
    """Milliseconds."""

    mean: float
    std: float
    p50: float
    p90: float
    p99: float
    runs: int


class SourceReport(_Model):
    uri: str
    format: str
    size_bytes: int
    signatures: list[SignatureInfo]
    latency_ms: LatencyStats | None = None
    latency_note: str | None = None
    # Top-1 accuracy (0..1) on the labelled validation dataset, when it has `labels`.
    task_accuracy: float | None = None


class DataReport(_Model):
    """Where calibration or validation inputs came from."""

    kind: str  # "file" or "synthetic"
    uri: str | None = None
    samples: int
    seed: int | None = None
    labelled: bool = False  # the file has a `labels` array: task accuracy is measured


class OutputError(_Model):
    name: str
    max_abs_error: float
    mean_abs_error: float
    cosine_similarity: float
    top1_agreement: float | None = None  # only for classifier-like outputs
    snr_db: float | None = None  # capped at +-200 dB (identical outputs: 200)
    kl_divergence: float | None = None  # nats; only for probability outputs (softmax rows)
    top5_agreement: float | None = None  # classifier-like outputs with more than 5 classes


class AccuracyReport(_Model):
    samples: int
    outputs: list[OutputError]
    max_abs_error: float
    top1_agreement: float | None = None
    min_snr_db: float | None = None  # the worst output's
    max_kl_divergence: float | None = None  # the worst probability output's
    top5_agreement: float | None = None  # the worst classifier output's (C > 5)
    task_accuracy: float | None = None  # top-1 accuracy (0..1) against the dataset's labels
    accuracy_drop_points: float | None = None  # (source - variant) task accuracy, in points
    tolerance: float | None = None
    within_tolerance: bool
    verdict: str


class BenchmarkReport(_Model):
    runnable: bool
    reason: str | None = None  # why it was not runnable here
    threads: int | None = None
    init_ms: float | None = None
    first_run_ms: float | None = None
    latency_ms: LatencyStats | None = None
    peak_memory_bytes: int | None = None
    speedup_vs_source: float | None = None
    # The timed runs stopped at spec.benchmark.maxSeconds before spec.benchmark.runs
    # (latency_ms.runs says how many were made).
    time_bounded: bool = False


class OpsReport(_Model):
    builtin: list[str] = []
    select_tf: list[str] = []  # Flex ops
    custom: list[str] = []


# "unverified": this runtime could not validate or run the variant (Select TF ops on the pip
# LiteRT runtime, a kernel crash), so the target could not be checked; never called "meets".
Verdict = Literal["meets", "misses", "unverified"]


class TargetVerdict(_Model):
    # True when the variant may be selected: it meets every constraint, or it is unverified
    # and spec.target.allowUnverified accepts that (verdict stays "unverified").
    meets: bool
    verdict: Verdict
    failed: list[str] = []  # one human-readable reason per unmet constraint
    # Why this runtime could not check it, and what went unchecked; set with "misses" too
    # when a constraint that could be checked already fails.
    unverified_reason: str | None = None

    def describe(self) -> str:
        """The verdict word and its why, as the terminal table and the HTML report show it."""
        if self.verdict == "misses":
            also = f"; {self.unverified_reason}" if self.unverified_reason else ""
            return "misses: " + "; ".join(self.failed) + also
        if self.verdict == "unverified":
            allowed = " (allowed by target.allowUnverified)" if self.meets else ""
            return f"unverified{allowed}: {self.unverified_reason}"
        return "meets"

    @model_validator(mode="before")
    @classmethod
    def _verdict_of_older_reports(cls, data: Any) -> Any:
        # Reports written before `verdict` existed knew only meets / misses.
        if isinstance(data, dict) and "verdict" not in data and "meets" in data:
            return {**data, "verdict": "meets" if data["meets"] else "misses"}
        return data


class SignatureCheck(_Model):
    """Validation and benchmark of one selected signature (source.signatureKeys) of a variant."""

    key: str
    accuracy: AccuracyReport | None = None
    benchmark: BenchmarkReport | None = None


class LayerError(_Model):
    """One quantized tensor's error, measured layer by layer (each op fed the same quantized
    input in float and in int8): RMSE of the difference over the tensor's quantization step.
    About 0.29 (1/sqrt(12)) is plain rounding; much more means the layer quantizes badly."""

    tensor: str
    op: str | None = None
    rmse_over_scale: float


class AccuracyControlReport(_Model):
    """What accuracy control (spec variants[].accuracyControl) kept in float, and what it cost.

    error_before/error_after: max abs output error of the plain and of the shipped model.
    Costs are the shipped model's minus the plain quantized one's.
    """

    float_layers: list[str]
    budget: str
    error_before: float
    error_after: float
    size_cost_bytes: int
    latency_cost_ms: float | None = None
    met: bool
    steps: int
    note: str | None = None  # why nothing was tried, or what limited the search


class ConversionFingerprint(_Model):
    """What a variant's .tflite depends on, one short hash per part (converter: plain text).

    Equal fingerprints mean converting again would make the same model, so a later
    generation copies the .tflite from the previous outputs (spec.output.reuse) instead.
    """

    source: str  # spec.source (maxBytes aside) and the version of every source object/file
    variant: str  # the variant's spec
    data: str  # calibration data (spec and object version); "none" when not quantized
    converter: str  # "tflite-operator <version>, tensorflow <version>"

    def changed_since(self, earlier: ConversionFingerprint) -> list[str]:
        """The parts that differ, in field order (why a variant is converted again)."""
        return [k for k in type(self).model_fields if getattr(self, k) != getattr(earlier, k)]


class VariantStatus(StrEnum):
    CONVERTED = "Converted"
    FAILED = "Failed"


class VariantReport(_Model):
    name: str
    quantization: str
    status: VariantStatus
    error: str | None = None
    uri: str | None = None
    size_bytes: int | None = None
    compression_ratio: float | None = None  # source size / variant size
    input_types: list[str] = []
    output_types: list[str] = []
    requested_io_type: str | None = None
    calibration: DataReport | None = None
    ops: OpsReport | None = None
    # The primary (first) signature's; signature_checks has every selected signature's.
    accuracy: AccuracyReport | None = None
    benchmark: BenchmarkReport | None = None
    signature_checks: list[SignatureCheck] = []
    target: TargetVerdict | None = None
    # Quantized variants: worst layers first (capped), and what accuracy control did.
    layer_errors: list[LayerError] = []
    accuracy_control: AccuracyControlReport | None = None
    # The TFLiteConverter settings applied, as "attribute": "value" (see converter/convert.py).
    converter_settings: dict[str, str] = {}
    convert_seconds: float | None = None  # absent when reused: nothing was converted
    fingerprint: ConversionFingerprint | None = None
    sha256: str | None = None  # of the .tflite bytes, checked before a later run reuses them
    # "<previous report.json URI>#<its GCS generation>" (local: the path) when the .tflite was
    # copied from there instead of converted; validation and benchmark still ran on it.
    reused_from: str | None = None


class Selection(_Model):
    name: str | None
    reason: str


class Report(_Model):
    schema_version: str = REPORT_SCHEMA_VERSION
    name: str
    created_at: str
    spec: dict[str, Any]
    source: SourceReport
    validation_data: DataReport | None = None
    variants: list[VariantReport]
    selected: Selection
    timings_seconds: dict[str, float]
    versions: dict[str, str]
    output_uri: str
    report_uri: str | None = None


# --- Summary: what a converter pod tells the operator -------------------------------------


class VariantSummary(_Model):
    name: str
    ok: bool
    uri: str | None = None
    size_bytes: int | None = None
    compression_ratio: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    speedup: float | None = None
    max_abs_error: float | None = None
    top1_agreement: float | None = None
    task_accuracy: float | None = None
    meets_target: bool | None = None
    verdict: Verdict | None = None
    note: Annotated[str | None, Field(max_length=300)] = None


class Summary(_Model):
    v: int = SUMMARY_SCHEMA_VERSION
    ok: bool
    exit_code: int = 0
    error: Annotated[str | None, Field(max_length=1500)] = None
    source_size_bytes: int | None = None
    source_p50_ms: float | None = None
    source_task_accuracy: float | None = None
    selected: str | None = None
    selection_reason: str | None = None
    report_uri: str | None = None
    # How many variants the run had: `variants` may list fewer to fit the 4096 bytes.
    variants_total: int | None = None
    variants: list[VariantSummary] = []

    def to_termination_message(self) -> str:
        """Compact JSON under the 4096-byte limit, shortening notes first, then variants."""
        summary = self.model_copy(deep=True)
        text = _compact(summary)
        while len(text.encode()) > TERMINATION_MESSAGE_LIMIT:
            if any(v.note for v in summary.variants):
                for v in summary.variants:
                    v.note = None
            elif summary.selection_reason and len(summary.selection_reason) > 80:
                summary.selection_reason = summary.selection_reason[:77] + "..."
            elif summary.variants:
                summary.variants = summary.variants[:-1]
            elif summary.error and len(summary.error) > 200:
                summary.error = summary.error[:197] + "..."
            else:
                break
            text = _compact(summary)
        return text

    @classmethod
    def from_termination_message(cls, text: str) -> Summary:
        return cls.model_validate(json.loads(text))


def _compact(model: _Model) -> str:
    return json.dumps(model.to_wire(), separators=(",", ":"), sort_keys=True)


def summarize(report: Report) -> Summary:
    by_name = {v.name: v for v in report.variants}
    variants = []
    for v in report.variants:
        lat = v.benchmark.latency_ms if v.benchmark else None
        note = v.error
        if v.target and v.target.verdict == "unverified":
            note = f"unverified: {v.target.unverified_reason}"
        elif v.benchmark and not v.benchmark.runnable:
            note = v.benchmark.reason
        elif v.target and not v.target.meets:
            note = "; ".join(v.target.failed)
        variants.append(
            VariantSummary(
                name=v.name,
                ok=v.status == VariantStatus.CONVERTED,
                uri=v.uri,
                size_bytes=v.size_bytes,
                compression_ratio=v.compression_ratio,
                p50_ms=lat.p50 if lat else None,
                p90_ms=lat.p90 if lat else None,
                p99_ms=lat.p99 if lat else None,
                speedup=v.benchmark.speedup_vs_source if v.benchmark else None,
                max_abs_error=v.accuracy.max_abs_error if v.accuracy else None,
                top1_agreement=v.accuracy.top1_agreement if v.accuracy else None,
                task_accuracy=v.accuracy.task_accuracy if v.accuracy else None,
                meets_target=v.target.meets if v.target else None,
                verdict=v.target.verdict if v.target else None,
                note=note[:300] if note else None,
            )
        )
    failed = [v.name for v in report.variants if v.status == VariantStatus.FAILED]
    src_lat = report.source.latency_ms
    return Summary(
        ok=not failed,
        error=(
            f"variants failed: {', '.join(failed)}: {by_name[failed[0]].error}" if failed else None
        ),
        source_size_bytes=report.source.size_bytes,
        source_p50_ms=src_lat.p50 if src_lat else None,
        source_task_accuracy=report.source.task_accuracy,
        selected=report.selected.name,
        selection_reason=report.selected.reason,
        report_uri=report.report_uri,
        variants_total=len(variants),
        variants=variants,
    )
