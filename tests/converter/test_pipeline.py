"""The whole pipeline on small real models, with local paths and with gs:// on fake-gcs-server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gcs_server import FakeGCS
from tflite_operator.api.errors import (
    ConversionFailedError,
    OutputExistsError,
    SourceNotFoundError,
)
from tflite_operator.api.manifest import parse_spec
from tflite_operator.api.report import TERMINATION_MESSAGE_LIMIT, Report, summarize
from tflite_operator.converter import pipeline


def cnn_spec(source: str, output: str, calibration: str, **extra) -> dict:
    return {
        "source": {"uri": source},
        "output": {"uri": output},
        "variants": [
            {"name": "fp32"},
            {
                "name": "int8",
                "quantization": "int8",
                "ioType": "int8",
                "representativeDataset": {"uri": calibration, "samples": 32},
            },
        ],
        "target": {"maxModelSizeBytes": 100_000, "maxOutputError": 0.1},
        "benchmark": {"runs": 5, "warmupRuns": 1, "threads": 1},
        "validation": {"samples": 8},
        **extra,
    }


@pytest.fixture(scope="module")
def local_run(cnn_saved_model, calibration_npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "digits"
    spec = parse_spec(cnn_spec(str(cnn_saved_model), str(out), str(calibration_npz)))
    return out, spec, pipeline.run("digits", spec, tmp_path_factory.mktemp("work"))


def test_local_run_writes_every_variant_and_a_report_that_matches_them(local_run):
    out, _, outcome = local_run
    assert sorted(p.name for p in out.iterdir()) == [
        "fp32.tflite",
        "int8.tflite",
        "report.html",
        "report.json",
    ]
    report = Report.model_validate_json((out / "report.json").read_text())
    assert report.schema_version == "tflite-operator.report/v1"
    by_name = {v.name: v for v in report.variants}
    for name in ("fp32", "int8"):
        assert by_name[name].size_bytes == (out / f"{name}.tflite").stat().st_size
        assert by_name[name].uri == str(out / f"{name}.tflite")
    # The CNN has ~38k weights: fp32 is ~150 kB, int8 about a quarter of it.
    assert by_name["int8"].size_bytes < by_name["fp32"].size_bytes / 3
    assert by_name["int8"].input_types == ["int8"]
    assert by_name["int8"].calibration.kind == "file"
    assert by_name["fp32"].accuracy.max_abs_error < 1e-4
    assert by_name["int8"].benchmark.latency_ms.runs == 5
    assert by_name["int8"].benchmark.speedup_vs_source > 0
    assert report.source.latency_ms.p50 > 0
    assert set(report.timings_seconds) >= {"fetch", "inspect", "convert", "validate", "benchmark"}
    assert report.versions["tensorflow"].startswith("2.")
    assert outcome.error is None


def test_selection_follows_the_target(local_run):
    _, _, outcome = local_run
    report = outcome.report
    by_name = {v.name: v for v in report.variants}
    assert not by_name["fp32"].target.meets
    assert "exceeds maxModelSizeBytes 100000" in by_name["fp32"].target.failed[0]
    assert by_name["int8"].target.meets
    assert report.selected.name == "int8"


def test_report_html_is_self_contained_with_charts(local_run):
    out, _, _ = local_run
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 2  # size vs error, size vs latency (test_report_html: more)
    assert 'aria-label="Size vs error"' in html and 'aria-label="Size vs latency"' in html
    assert "<script" not in html and "http" not in html.replace(
        html[html.find("<code>") : html.find("</code>")], ""
    )


def test_summary_fits_the_termination_message(local_run):
    _, _, outcome = local_run
    text = summarize(outcome.report).to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    data = json.loads(text)
    assert data["selected"] == "int8"
    assert {v["name"] for v in data["variants"]} == {"fp32", "int8"}


def test_existing_outputs_are_refused_before_any_work_and_left_untouched(local_run, tmp_path):
    out, spec, _ = local_run
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(OutputExistsError) as err:
        pipeline.run("digits", spec, tmp_path)
    assert "fp32.tflite" in err.value.message
    assert "spec.output.overwrite" in err.value.message
    assert not (tmp_path / "source").exists()  # refused before fetching anything
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_missing_source_fails_without_writing_outputs(tmp_path):
    spec = parse_spec(
        {
            "source": {"uri": str(tmp_path / "nope")},
            "output": {"uri": str(tmp_path / "out")},
            "variants": [{"name": "fp32"}],
        }
    )
    with pytest.raises(
        SourceNotFoundError, match=r"no file or directory at .*nope; check spec\.source\.uri"
    ):
        pipeline.run("x", spec, tmp_path / "work")
    assert not (tmp_path / "out").exists()


def test_unsupported_op_is_a_failed_variant_with_the_fix_and_the_report_is_kept(
    flex_saved_model, tmp_path
):
    spec = parse_spec(
        {
            "source": {"uri": str(flex_saved_model)},
            "output": {"uri": str(tmp_path / "out")},
            "variants": [{"name": "fp32"}, {"name": "flex", "ops": "select-tf-ops"}],
            "benchmark": {"runs": 2, "warmupRuns": 0},
            "validation": {"samples": 2},
        }
    )
    outcome = pipeline.run("flex", spec, tmp_path / "work")
    assert isinstance(outcome.error, ConversionFailedError)
    assert "Cumprod" in outcome.error.message
    assert "spec.variants[0].ops: select-tf-ops" in outcome.error.message
    by_name = {v.name: v for v in outcome.report.variants}
    assert by_name["fp32"].status == "Failed"
    assert by_name["flex"].status == "Converted"
    assert by_name["flex"].ops.select_tf == ["Cumprod"]
    assert not by_name["flex"].benchmark.runnable
    assert "Select TF ops" in by_name["flex"].benchmark.reason
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "flex.tflite",
        "report.html",
        "report.json",
    ]


@pytest.mark.gcs
def test_gcs_source_and_output(fake_gcs: FakeGCS, cnn_saved_model, calibration_npz, tmp_path):
    bucket = fake_gcs.create_bucket().name
    fake_gcs.upload_dir(cnn_saved_model, f"gs://{bucket}/models/digits")
    fake_gcs.upload_bytes(f"gs://{bucket}/calib/digits.npz", Path(calibration_npz).read_bytes())
    spec = parse_spec(
        cnn_spec(
            f"gs://{bucket}/models/digits",
            f"gs://{bucket}/tflite/digits/",
            f"gs://{bucket}/calib/digits.npz",
            benchmark={"enabled": False},
        )
    )
    outcome = pipeline.run("digits", spec, tmp_path)
    names = fake_gcs.names(f"gs://{bucket}")
    for name in ("fp32.tflite", "int8.tflite", "report.json", "report.html"):
        assert f"tflite/digits/{name}" in names
    report = Report.model_validate_json(fake_gcs.read(f"gs://{bucket}/tflite/digits/report.json"))
    assert report.report_uri == f"gs://{bucket}/tflite/digits/report.json"
    assert {v.uri for v in report.variants} == {
        f"gs://{bucket}/tflite/digits/fp32.tflite",
        f"gs://{bucket}/tflite/digits/int8.tflite",
    }
    assert report.source.size_bytes == outcome.report.source.size_bytes > 0
    assert report.variants[1].calibration.uri == f"gs://{bucket}/calib/digits.npz"
