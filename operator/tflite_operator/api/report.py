"""The conversion report (report.json) and its compact summary (the pod's termination message).

The report is versioned: readers check `schemaVersion`. The summary is what the operator
turns into status, so it stays under the kubelet's 4096-byte termination-message limit.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from tflite_operator.api.report_metrics import (
    AccuracyControlReport,
    AccuracyReport,
    BenchmarkReport,
    ConversionFingerprint,
    DataReport,
    LayerError,
    OpsReport,
    ReportModel,
    SignatureCheck,
    SourceReport,
    TargetVerdict,
    Verdict,
)

REPORT_SCHEMA_VERSION = "tflite-operator.report/v1"
SUMMARY_SCHEMA_VERSION = 1
TERMINATION_MESSAGE_LIMIT = 4096
# The reports' names in spec.output.uri, beside <variant>.tflite.
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


class VariantStatus(StrEnum):
    CONVERTED = "Converted"
    FAILED = "Failed"


class VariantReport(ReportModel):
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


class Selection(ReportModel):
    name: str | None
    reason: str


class Report(ReportModel):
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


class VariantSummary(ReportModel):
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


class Summary(ReportModel):
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


def _compact(model: ReportModel) -> str:
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
