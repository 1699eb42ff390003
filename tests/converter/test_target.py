"""Target verdicts and variant selection: pure functions on report data."""

from tflite_operator.api.report import VariantReport, VariantStatus
from tflite_operator.api.report_metrics import (
    AccuracyReport,
    BenchmarkReport,
    LatencyStats,
    OpsReport,
    SignatureCheck,
)
from tflite_operator.api.spec_checks import Target
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


def test_latency_not_measured_by_choice_misses_a_latency_budget():
    v = variant("fp32", 100)  # runnable, but the benchmark was disabled
    verdict = evaluate_target(v, Target(max_latency_ms=5), tolerance=None)
    assert not verdict.meets and verdict.verdict == "misses"
    assert "latency unknown (benchmark disabled)" in verdict.failed[0]


def test_a_variant_this_runtime_cannot_run_is_unverified_not_meets():
    v = variant("flex", 100, runnable=False)
    verdict = evaluate_target(v, Target(max_latency_ms=5), tolerance=0.1)
    assert verdict.verdict == "unverified" and not verdict.meets
    assert verdict.failed == []
    assert verdict.unverified_reason == (
        "this runtime cannot run it: uses Select TF ops; not checked: maxLatencyMs, maxOutputError"
    )
    # Even with no budget at all: nothing about its outputs was checked.
    assert evaluate_target(v, Target(), tolerance=None).verdict == "unverified"


def test_flex_ops_alone_make_it_unverified_when_nothing_ran():
    v = variant("flex", 100, ops=("ADD",))
    v.ops = OpsReport(builtin=["ADD"], select_tf=["Cumprod"])
    verdict = evaluate_target(v, Target(), tolerance=None)
    assert verdict.verdict == "unverified"
    assert "Select TF ops (Cumprod)" in verdict.unverified_reason


def test_a_checked_constraint_that_fails_makes_an_unrunnable_variant_miss():
    v = variant("flex", 5000, runnable=False)
    verdict = evaluate_target(v, Target(max_model_size_bytes=1000), tolerance=None)
    assert verdict.verdict == "misses" and not verdict.meets
    assert "exceeds maxModelSizeBytes" in verdict.failed[0]
    assert "uses Select TF ops" in verdict.describe()


def test_unverified_is_selected_only_when_the_target_allows_it():
    variants = [variant("fp32", 4000, p50=2), variant("flex", 1000, runnable=False)]
    for allow, expected in ((False, "fp32"), (True, "flex")):
        target = Target(allow_unverified=allow)
        for v in variants:
            v.target = evaluate_target(v, target, tolerance=None)
        assert variants[1].target.verdict == "unverified"
        assert variants[1].target.meets is allow
        sel = select_variant(variants)
        assert sel.name == expected
    assert "unverified, allowed by target.allowUnverified" in sel.reason
    assert (
        variants[1]
        .target.describe()
        .startswith("unverified (allowed by target.allowUnverified): this runtime cannot run it")
    )


def test_an_unverified_variant_alone_is_not_selected_and_the_reason_names_the_field():
    v = variant("flex", 1000, runnable=False)
    v.target = evaluate_target(v, Target(), tolerance=None)
    sel = select_variant([v])
    assert sel.name is None
    assert "flex: unverified (this runtime cannot run it: uses Select TF ops)" in sel.reason
    assert "set target.allowUnverified to accept it" in sel.reason


def checks(*per_signature):
    """SignatureChecks from (key, p50, max error, top-1) tuples."""
    result = []
    for key, p50, err, top1 in per_signature:
        v = variant(key, 1, p50=p50, err=err, top1=top1)
        result.append(SignatureCheck(key=key, accuracy=v.accuracy, benchmark=v.benchmark))
    return result


def test_the_worst_signature_decides_every_budget():
    v = variant("fp16", 100, p50=1.0, err=0.001, top1=1.0)
    v.signature_checks = checks(("serving_default", 1.0, 0.001, 1.0), ("embed", 7.0, 0.3, None))
    target = Target(max_latency_ms=5, min_top1_agreement=0.9)
    verdict = evaluate_target(v, target, tolerance=0.05)
    assert verdict.verdict == "misses"
    text = " | ".join(verdict.failed)
    assert "p50 latency 7.00 ms (signature 'embed') exceeds maxLatencyMs 5" in text
    assert "max abs error 0.3 (signature 'embed') exceeds maxOutputError 0.05" in text
    # top-1 agreement applies where there is a classifier output: serving_default meets it.
    assert "top-1" not in text
    v.signature_checks = checks(("serving_default", 1.0, 0.001, 1.0), ("embed", 2.0, 0.01, None))
    assert evaluate_target(v, target, tolerance=0.05).verdict == "meets"


def test_a_signature_that_could_not_run_makes_the_variant_unverified():
    v = variant("fp32", 100, p50=1.0, err=0.0)
    v.signature_checks = checks(("serving_default", 1.0, 0.0, None))
    v.signature_checks.append(
        SignatureCheck(key="embed", benchmark=BenchmarkReport(runnable=False, reason="crashed"))
    )
    verdict = evaluate_target(v, Target(max_latency_ms=5), tolerance=0.1)
    assert verdict.verdict == "unverified"
    assert verdict.unverified_reason.startswith("this runtime cannot run it: crashed (signature")


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
    assert "SNR 12.5 dB below minSnrDb 30.0" in failed
    assert "KL divergence 0.2 exceeds maxKlDivergence 0.01" in failed
    assert "top-5 agreement 0.900 below minTop5Agreement 0.99" in failed
    assert "task accuracy drop 2.50 points exceeds maxAccuracyDrop 1.0" in failed
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
    assert "SNR unknown (no output compared); minSnrDb 30.0" in failed
    assert "KL divergence unknown (no probability output validated" in failed
    assert "top-5 agreement unknown (no classifier output with more than 5 classes" in failed
    assert "task accuracy drop unknown (no labels in validation.datasetUri)" in failed
    not_validated = evaluate_target(variant("x", 10), target, tolerance=None).failed
    assert len(not_validated) == 4
    assert all("unknown (validation not run)" in f for f in not_validated)


def test_a_nan_metric_never_meets_its_budget():
    nan = float("nan")
    v = _measured(min_snr_db=nan, max_kl_divergence=nan)
    verdict = evaluate_target(v, Target(min_snr_db=0, max_kl_divergence=10), tolerance=None)
    assert len(verdict.failed) == 2


def test_metric_budgets_take_the_worst_signature_and_task_accuracy_the_first():
    v = _measured()
    primary = v.accuracy.model_copy(
        update={"min_snr_db": 40.0, "top5_agreement": 1.0, "accuracy_drop_points": 0.5}
    )
    # A second signature without a classifier output: no top-5, no labels, a worse SNR.
    other = v.accuracy.model_copy(update={"min_snr_db": 18.0})
    v.signature_checks = [
        SignatureCheck(key="serving_default", accuracy=primary),
        SignatureCheck(key="embed", accuracy=other),
    ]
    target = Target(min_snr_db=20, min_top5_agreement=0.99, max_accuracy_drop=1.0)
    verdict = evaluate_target(v, target, tolerance=None)
    assert verdict.failed == ["SNR 18.0 dB (signature 'embed') below minSnrDb 20.0"]
