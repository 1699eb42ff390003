"""Target verdicts and variant selection: pure functions on report data."""

from tflite_operator.api.report import (
    AccuracyReport,
    BenchmarkReport,
    LatencyStats,
    OpsReport,
    VariantReport,
    VariantStatus,
)
from tflite_operator.api.spec import Target
from tflite_operator.converter.target import evaluate_target, select_variant


def variant(name, size, p50=None, err=None, top1=None, ops=("CONV_2D",), runnable=True):
    bench = None
    if p50 is not None:
        bench = BenchmarkReport(
            runnable=True,
            latency_ms=LatencyStats(mean=p50, std=0, p50=p50, p90=p50, p99=p50, runs=10),
        )
    elif not runnable:
        bench = BenchmarkReport(runnable=False, reason="uses Select TF ops")
    acc = None
    if err is not None:
        acc = AccuracyReport(
            samples=4,
            outputs=[],
            max_abs_error=err,
            top1_agreement=top1,
            within_tolerance=True,
            verdict="",
        )
    return VariantReport(
        name=name,
        quantization="none",
        status=VariantStatus.CONVERTED,
        size_bytes=size,
        benchmark=bench,
        accuracy=acc,
        ops=OpsReport(builtin=list(ops)),
    )


def test_every_unmet_constraint_is_named():
    target = Target(
        max_model_size_bytes=1000,
        max_latency_ms=5,
        min_top1_agreement=0.99,
        allowed_ops=["CONV_2D"],
    )
    v = variant("fp32", 4000, p50=9.0, err=0.2, top1=0.9, ops=("CONV_2D", "MEAN"))
    verdict = evaluate_target(v, target, tolerance=0.05)
    assert not verdict.meets
    text = " | ".join(verdict.failed)
    assert "size 4000 B exceeds maxModelSizeBytes 1000 B" in text
    assert "p50 latency 9.00 ms exceeds maxLatencyMs 5" in text
    assert "max abs error 0.2 exceeds maxOutputError 0.05" in text
    assert "top-1 agreement 0.900 below minTop1Agreement 0.99" in text
    assert "uses ops outside allowedOps: MEAN" in text


def test_unmeasured_latency_does_not_meet_a_latency_budget():
    v = variant("flex", 100, runnable=False)
    verdict = evaluate_target(v, Target(max_latency_ms=5), tolerance=None)
    assert not verdict.meets
    assert "latency unknown (uses Select TF ops)" in verdict.failed[0]


def test_no_target_means_every_converted_variant_meets_it():
    assert evaluate_target(variant("a", 10), Target(), tolerance=None).meets


def test_selection_is_the_smallest_meeting_variant_ties_by_latency():
    variants = [
        variant("fp32", 4000, p50=2),
        variant("int8", 1000, p50=3),
        variant("dyn", 1000, p50=1),
    ]
    for v in variants:
        v.target = evaluate_target(v, Target(max_latency_ms=2.5), tolerance=None)
    sel = select_variant(variants)
    assert sel.name == "dyn"
    assert "smallest of 2 variant(s)" in sel.reason


def test_no_selection_says_why_per_variant():
    variants = [variant("fp32", 4000, p50=9)]
    for v in variants:
        v.target = evaluate_target(v, Target(max_latency_ms=5), tolerance=None)
    sel = select_variant(variants)
    assert sel.name is None
    assert "no variant meets the target (fp32: p50 latency 9.00 ms exceeds" in sel.reason


def test_a_failed_variant_never_meets_the_target():
    v = VariantReport(name="x", quantization="int8", status=VariantStatus.FAILED, error="boom")
    verdict = evaluate_target(v, Target(), tolerance=None)
    assert not verdict.meets and "conversion failed: boom" in verdict.failed[0]
    assert select_variant([v]).reason == "no variant converted"


def _measured(**figures) -> VariantReport:
    v = variant("int8", 100)
    v.accuracy = AccuracyReport(
        samples=4, outputs=[], max_abs_error=0.01, within_tolerance=True, verdict="", **figures
    )
    return v


def test_snr_kl_top5_and_accuracy_drop_budgets():
    target = Target(
        min_snr_db=30, max_kl_divergence=0.01, min_top5_agreement=0.99, max_accuracy_drop=1.0
    )
    good = _measured(
        min_snr_db=35.0, max_kl_divergence=0.001, top5_agreement=1.0, accuracy_drop_points=1.0
    )
    assert evaluate_target(good, target, tolerance=None).meets  # a drop of exactly 1.0 is within
    bad = _measured(
        min_snr_db=12.5, max_kl_divergence=0.2, top5_agreement=0.9, accuracy_drop_points=2.5
    )
    failed = " | ".join(evaluate_target(bad, target, tolerance=None).failed)
    assert "SNR 12.5 dB below minSnrDb 30.0 dB" in failed
    assert "KL divergence 0.2 exceeds maxKlDivergence 0.01" in failed
    assert "top-5 agreement 0.900 below minTop5Agreement 0.99" in failed
    assert "task accuracy 2.50 points below the source's, more than maxAccuracyDrop 1.0" in failed
    # A variant more accurate than the source has a negative drop: within any budget.
    assert evaluate_target(
        _measured(accuracy_drop_points=-2.0), Target(max_accuracy_drop=0), tolerance=None
    ).meets


def test_unmeasured_metric_budgets_are_unmet_with_the_reason():
    target = Target(
        min_snr_db=30, max_kl_divergence=0.01, min_top5_agreement=0.9, max_accuracy_drop=1.0
    )
    # Validated, but no probability output, no classifier with > 5 classes, no labels.
    failed = " | ".join(evaluate_target(_measured(), target, tolerance=None).failed)
    assert "SNR unknown (validation not run); minSnrDb 30.0 dB" in failed
    assert "KL divergence unknown (no probability output validated" in failed
    assert "top-5 agreement unknown (no classifier output with more than 5 classes" in failed
    assert "task accuracy unknown (validation not run, or no labels in validation.datasetUri)" in (
        failed
    )
    assert len(evaluate_target(variant("x", 10), target, tolerance=None).failed) == 4


def test_a_nan_metric_never_meets_its_budget():
    nan = float("nan")
    v = _measured(min_snr_db=nan, max_kl_divergence=nan)
    verdict = evaluate_target(v, Target(min_snr_db=0, max_kl_divergence=10), tolerance=None)
    assert len(verdict.failed) == 2
