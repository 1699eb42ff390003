"""The measurements in a variant's report: source, data, accuracy, benchmark, ops and verdict.

report.py assembles these into the VariantReport, the Report and its Summary.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


class ReportModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class TensorInfo(ReportModel):
    name: str
    dtype: str
    shape: list[int | None]


class SignatureInfo(ReportModel):
    key: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]


class LatencyStats(ReportModel):
    """Milliseconds."""

    mean: float
    std: float
    p50: float
    p90: float
    p99: float
    runs: int


class SourceReport(ReportModel):
    uri: str
    format: str
    size_bytes: int
    signatures: list[SignatureInfo]
    latency_ms: LatencyStats | None = None
    latency_note: str | None = None
    # Top-1 accuracy (0..1) on the labelled validation dataset, when it has `labels`.
    task_accuracy: float | None = None


class DataReport(ReportModel):
    """Where calibration or validation inputs came from."""

    kind: str  # "file" or "synthetic"
    uri: str | None = None
    samples: int
    seed: int | None = None
    labelled: bool = False  # the file has a `labels` array: task accuracy is measured


class OutputError(ReportModel):
    name: str
    max_abs_error: float
    mean_abs_error: float
    cosine_similarity: float
    top1_agreement: float | None = None  # only for classifier-like outputs
    snr_db: float | None = None  # capped at +-200 dB (identical outputs: 200)
    kl_divergence: float | None = None  # nats; only for probability outputs (softmax rows)
    top5_agreement: float | None = None  # classifier-like outputs with more than 5 classes


class AccuracyReport(ReportModel):
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


class BenchmarkReport(ReportModel):
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


class OpsReport(ReportModel):
    builtin: list[str] = []
    select_tf: list[str] = []  # Flex ops
    custom: list[str] = []


# "unverified": this runtime could not validate or run the variant (Select TF ops on the pip
# LiteRT runtime, a kernel crash), so the target could not be checked; never called "meets".
Verdict = Literal["meets", "misses", "unverified"]


class TargetVerdict(ReportModel):
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


class SignatureCheck(ReportModel):
    """Validation and benchmark of one selected signature (source.signatureKeys) of a variant."""

    key: str
    accuracy: AccuracyReport | None = None
    benchmark: BenchmarkReport | None = None


class LayerError(ReportModel):
    """One quantized tensor's error, measured layer by layer (each op fed the same quantized
    input in float and in int8): RMSE of the difference over the tensor's quantization step.
    About 0.29 (1/sqrt(12)) is plain rounding; much more means the layer quantizes badly."""

    tensor: str
    op: str | None = None
    rmse_over_scale: float


class AccuracyControlReport(ReportModel):
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


class ConversionFingerprint(ReportModel):
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
