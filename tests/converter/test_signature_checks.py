"""Every selected signature is validated and benchmarked; a variant this runtime cannot run is
`unverified`, never `meets`. Whole pipeline runs on small real models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tflite_operator.api.manifest import parse_spec
from tflite_operator.api.report import Summary, summarize
from tflite_operator.api.status import Phase
from tflite_operator.console import results_table
from tflite_operator.controller import render
from tflite_operator.controller.status import Outcome as JobOutcome
from tflite_operator.converter import pipeline

QUICK = {"benchmark": {"runs": 2, "warmupRuns": 0, "threads": 1}, "validation": {"samples": 4}}


def run(tmp_path: Path, name: str, spec: dict):
    parsed = parse_spec({"output": {"uri": str(tmp_path / "out")}, **QUICK, **spec})
    return pipeline.run(name, parsed, tmp_path / "work")


def test_every_selected_signature_is_validated_benchmarked_and_judged(
    loud_embedding_model, tmp_path
):
    outcome = run(
        tmp_path,
        "two-heads",
        {
            "source": {
                "uri": str(loud_embedding_model),
                "signatureKeys": ["serving_default", "embed"],
            },
            "variants": [{"name": "fp16", "quantization": "float16"}],
            "target": {"maxOutputError": 0.05},
        },
    )
    assert outcome.error is None
    fp16 = outcome.report.variants[0]
    # Judged on the worst signature: the primary alone would meet the budget.
    assert not fp16.target.meets
    assert [c.key for c in fp16.signature_checks] == ["serving_default", "embed"]
    primary, embed = fp16.signature_checks
    # The primary signature's figures stay where they were.
    assert fp16.accuracy == primary.accuracy and fp16.benchmark == primary.benchmark
    assert primary.accuracy.outputs[0].name == "probs"
    assert embed.accuracy.outputs[0].name == "features"
    for check in (primary, embed):
        assert check.accuracy.samples == 4
        assert check.benchmark.runnable and check.benchmark.latency_ms.runs == 2
        assert check.benchmark.speedup_vs_source > 0
    assert primary.accuracy.max_abs_error < 0.05 < embed.accuracy.max_abs_error
    assert fp16.target.verdict == "misses"
    assert "(signature 'embed') exceeds maxOutputError 0.05" in fp16.target.failed[0]
    assert outcome.report.selected.name is None
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [c["key"] for c in written["variants"][0]["signatureChecks"]] == [
        "serving_default",
        "embed",
    ]


def flex_only(flex_saved_model, **target) -> dict:
    return {
        "source": {"uri": str(flex_saved_model)},
        "variants": [{"name": "flex", "ops": "select-tf-ops"}],
        "target": target,
    }


def status_of(summary: Summary) -> dict:
    outcome = JobOutcome(phase=Phase.SUCCEEDED, reason="Succeeded", message="", summary=summary)
    return render.render({}, 1, outcome, "2026-01-01T00:00:00Z")


def test_a_variant_this_runtime_cannot_run_is_unverified_and_not_selected(
    flex_saved_model, tmp_path
):
    # The bug: with no budget, the Select TF variant nobody could run was "meets (selected)".
    outcome = run(tmp_path, "flex", flex_only(flex_saved_model))
    row = next(line for line in results_table(outcome.report).splitlines() if "flex" in line)
    assert "meets" not in row and "selected" not in row and "unverified" in row
    flex = outcome.report.variants[0]
    assert not flex.benchmark.runnable
    assert not flex.target.meets and outcome.report.selected.name is None
    assert flex.target.verdict == "unverified"
    assert "Select TF ops (Cumprod)" in flex.target.unverified_reason
    assert "set target.allowUnverified" in outcome.report.selected.reason
    assert (
        "unverified: this runtime cannot run it" in (tmp_path / "out" / "report.html").read_text()
    )

    summary = summarize(outcome.report)
    assert summary.variants[0].verdict == "unverified"
    assert summary.variants[0].note.startswith("unverified: this runtime cannot run it")
    status = status_of(summary)
    target_met = next(c for c in status["conditions"] if c["type"] == "TargetMet")
    assert target_met["status"] == "False" and target_met["reason"] == "NoVariantMeetsTarget"
    assert status["variants"][0]["verdict"] == "unverified"


def test_allow_unverified_selects_it_and_still_says_unverified(flex_saved_model, tmp_path):
    outcome = run(tmp_path, "flex", flex_only(flex_saved_model, allowUnverified=True))
    flex = outcome.report.variants[0]
    assert flex.target.verdict == "unverified" and flex.target.meets
    assert outcome.report.selected.name == "flex"
    assert "unverified, allowed by target.allowUnverified" in outcome.report.selected.reason
    row = next(line for line in results_table(outcome.report).splitlines() if "flex" in line)
    assert "unverified (selected)" in row and "meets" not in row

    status = status_of(summarize(outcome.report))
    target_met = next(c for c in status["conditions"] if c["type"] == "TargetMet")
    assert target_met["reason"] == "OnlyUnverifiedVariants"
    assert "meet the target" not in target_met["message"]
    assert status["variants"][0]["meetsTarget"] is True
    assert status["variants"][0]["verdict"] == "unverified"


def test_labels_score_the_first_signature_only(loud_embedding_model, tmp_path):
    """The embed signature has no classifier output; labels in the shared file do not break it."""
    x = np.random.default_rng(3).random((6, 16), dtype=np.float32)
    dataset = tmp_path / "labelled.npz"
    np.savez(dataset, x=x, labels=np.array([0, 1, 2, 3, 0, 1]))
    outcome = run(
        tmp_path,
        "two-heads-labelled",
        {
            "source": {
                "uri": str(loud_embedding_model),
                "signatureKeys": ["serving_default", "embed"],
            },
            "variants": [{"name": "fp32"}],
            "target": {"maxAccuracyDrop": 0.0},
            "benchmark": {"enabled": False},
            "validation": {"datasetUri": str(dataset), "samples": 6},
        },
    )
    report = outcome.report
    assert report.source.task_accuracy is not None
    [fp32] = report.variants
    primary, embed = fp32.signature_checks
    assert primary.accuracy.task_accuracy == report.source.task_accuracy
    assert primary.accuracy.accuracy_drop_points == 0.0
    assert embed.accuracy is not None and embed.accuracy.task_accuracy is None
    assert fp32.target.verdict == "meets"
