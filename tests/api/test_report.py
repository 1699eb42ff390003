"""The summary a converter pod leaves for the operator."""

import json

from tflite_operator.api.report import TERMINATION_MESSAGE_LIMIT, Summary, VariantSummary


def test_summary_round_trips_through_the_termination_message():
    summary = Summary(
        ok=True,
        selected="int8",
        report_uri="gs://b/out/report.json",
        variants=[VariantSummary(name="int8", ok=True, size_bytes=1234, p50_ms=1.5)],
    )
    text = summary.to_termination_message()
    assert json.loads(text)["variants"][0]["sizeBytes"] == 1234
    assert Summary.from_termination_message(text) == summary


def test_a_large_summary_is_cut_below_the_kubelet_limit_keeping_the_verdict():
    variants = [
        VariantSummary(
            name=f"variant-{i:02d}",
            ok=True,
            uri=f"gs://some-long-bucket-name/some/deep/prefix/for/outputs/variant-{i:02d}.tflite",
            size_bytes=10_000_000 + i,
            compression_ratio=3.99,
            p50_ms=8.123,
            p90_ms=9.5,
            p99_ms=12.0,
            max_abs_error=0.0123,
            meets_target=False,
            note="p50 latency 8.12 ms exceeds maxLatencyMs 5 ms; " * 5,
        )
        for i in range(16)
    ]
    summary = Summary(ok=True, selected="variant-03", selection_reason="x" * 500, variants=variants)
    text = summary.to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = Summary.from_termination_message(text)
    assert parsed.ok and parsed.selected == "variant-03"
    assert parsed.variants and all(v.note is None for v in parsed.variants)
