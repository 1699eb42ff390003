"""Whether each variant fits the device, and which one to ship. Pure functions on report data."""

from __future__ import annotations

from collections.abc import Sequence

from tflite_operator.api.report import (
    AccuracyReport,
    Selection,
    TargetVerdict,
    VariantReport,
    VariantStatus,
)
from tflite_operator.api.spec import Target


def evaluate_target(
    variant: VariantReport, target: Target, tolerance: float | None
) -> TargetVerdict:
    """Every unmet constraint of `target`, in words a user can act on.

    A constraint that could not be measured (no benchmark, no validation) counts as unmet:
    shipping a model whose latency is unknown against a latency budget would be a guess.
    """
    if variant.status != VariantStatus.CONVERTED:
        return TargetVerdict(meets=False, failed=[f"conversion failed: {variant.error}"])
    failed: list[str] = []
    max_size = target.max_model_size_bytes
    if max_size is not None and variant.size_bytes is not None and variant.size_bytes > max_size:
        failed.append(f"size {variant.size_bytes} B exceeds maxModelSizeBytes {max_size} B")
    if target.max_latency_ms is not None:
        bench = variant.benchmark
        if bench is None or bench.latency_ms is None:
            why = bench.reason if bench and bench.reason else "benchmark disabled"
            failed.append(f"latency unknown ({why}); maxLatencyMs {target.max_latency_ms} ms")
        elif bench.latency_ms.p50 > target.max_latency_ms:
            failed.append(
                f"p50 latency {bench.latency_ms.p50:.2f} ms exceeds maxLatencyMs "
                f"{target.max_latency_ms} ms"
            )
    accuracy = variant.accuracy
    if tolerance is not None:
        if accuracy is None:
            failed.append(f"output error unknown (validation not run); budget {tolerance}")
        elif accuracy.max_abs_error > tolerance:
            failed.append(
                f"max abs error {accuracy.max_abs_error:.4g} exceeds maxOutputError {tolerance}"
            )
    if target.min_top1_agreement is not None:
        agreement = accuracy.top1_agreement if accuracy else None
        if agreement is None:
            failed.append("top-1 agreement unknown (no classifier output validated)")
        elif agreement < target.min_top1_agreement:
            failed.append(
                f"top-1 agreement {agreement:.3f} below minTop1Agreement "
                f"{target.min_top1_agreement}"
            )
    failed += _metric_budgets(accuracy, target)
    if target.allowed_ops is not None and variant.ops is not None:
        allowed = set(target.allowed_ops)
        used = [*variant.ops.builtin, *variant.ops.select_tf, *variant.ops.custom]
        unsupported = sorted({op for op in used if op not in allowed})
        if unsupported:
            failed.append(f"uses ops outside allowedOps: {', '.join(unsupported)}")
    return TargetVerdict(meets=not failed, failed=failed)


def _metric_budgets(accuracy: AccuracyReport | None, target: Target) -> list[str]:
    """The SNR, KL, top-5 and task-accuracy budgets; an unmeasured one is unmet.

    Comparisons are written so that NaN (an output with NaN or inf) fails them.
    """
    failed: list[str] = []
    if target.min_snr_db is not None:
        snr = accuracy.min_snr_db if accuracy else None
        if snr is None:
            failed.append(f"SNR unknown (validation not run); minSnrDb {target.min_snr_db} dB")
        elif not snr >= target.min_snr_db:
            failed.append(f"SNR {snr:.1f} dB below minSnrDb {target.min_snr_db} dB")
    if target.max_kl_divergence is not None:
        kl = accuracy.max_kl_divergence if accuracy else None
        if kl is None:
            failed.append(
                "KL divergence unknown (no probability output validated: rows of a classifier "
                f"output that are non-negative and sum to 1); maxKlDivergence "
                f"{target.max_kl_divergence}"
            )
        elif not kl <= target.max_kl_divergence:
            failed.append(
                f"KL divergence {kl:.4g} exceeds maxKlDivergence {target.max_kl_divergence}"
            )
    if target.min_top5_agreement is not None:
        top5 = accuracy.top5_agreement if accuracy else None
        if top5 is None:
            failed.append(
                "top-5 agreement unknown (no classifier output with more than 5 classes "
                f"validated); minTop5Agreement {target.min_top5_agreement}"
            )
        elif not top5 >= target.min_top5_agreement:
            failed.append(
                f"top-5 agreement {top5:.3f} below minTop5Agreement {target.min_top5_agreement}"
            )
    if target.max_accuracy_drop is not None:
        drop = accuracy.accuracy_drop_points if accuracy else None
        if drop is None:
            failed.append(
                "task accuracy unknown (validation not run, or no labels in "
                f"validation.datasetUri); maxAccuracyDrop {target.max_accuracy_drop} points"
            )
        elif not drop <= target.max_accuracy_drop:
            failed.append(
                f"task accuracy {drop:.2f} points below the source's, more than "
                f"maxAccuracyDrop {target.max_accuracy_drop}"
            )
    return failed


def select_variant(variants: Sequence[VariantReport]) -> Selection:
    """The smallest variant that meets every constraint; ties go to the lower p50 latency."""
    meeting = [v for v in variants if v.target and v.target.meets and v.size_bytes is not None]
    if not meeting:
        converted = [v for v in variants if v.status == VariantStatus.CONVERTED]
        if not converted:
            return Selection(name=None, reason="no variant converted")
        reasons = "; ".join(
            f"{v.name}: {', '.join(v.target.failed) if v.target else 'not evaluated'}"
            for v in converted
        )
        return Selection(name=None, reason=f"no variant meets the target ({reasons})")

    def key(v: VariantReport) -> tuple[int, float]:
        lat = v.benchmark.latency_ms if v.benchmark and v.benchmark.latency_ms else None
        return (v.size_bytes or 0, lat.p50 if lat else float("inf"))

    best = min(meeting, key=key)
    return Selection(
        name=best.name,
        reason=f"smallest of {len(meeting)} variant(s) meeting the target ({best.size_bytes} B)",
    )
