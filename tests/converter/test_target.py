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
