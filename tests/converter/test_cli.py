"""The command line: help, exit codes, messages, and the in-pod `job` contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gcs_server import FakeGCS
from tflite_operator.api.job_contract import (
    GENERATION_ENV,
    NAME_ENV,
    SPEC_ENV,
    TERMINATION_LOG_ENV,
    UID_ENV,
)
from tflite_operator.api.report import Summary
from tflite_operator.cli import main
from tflite_operator.storage import storage_for
from tflite_operator.storage.ownership import Owner


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tflite_operator", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_help_lists_commands_and_exit_codes():
    result = run_cli("--help")
    assert result.returncode == 0
    for word in ("convert", "job", "inspect", "operator", "demo", "exit codes:", "7  outputs"):
        assert word in result.stdout


def test_convert_help_documents_every_option():
    result = run_cli("convert", "--help")
    assert result.returncode == 0
    for option in (
        "--manifest",
        "--source",
        "--output",
        "--variant",
        "--input-shape",
        "--all-variants",
        "--overwrite",
        "--runs",
        "--threads",
        "--no-benchmark",
        "--max-latency-ms",
        "--log-format",
        "example manifest",
    ):
        assert option in result.stdout


def test_bad_manifest_exits_2_naming_the_field(tmp_path, capsys):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        textwrap.dedent(
            """\
            apiVersion: tflite.dev/v1alpha1
            kind: TFLiteConversion
            metadata: {name: bad}
            spec:
              source: {uri: gs://models/m}
              output: {uri: gs://models/out}
              variants: [{name: q, quantization: float16, ioType: int8}]
            """
        )
    )
    assert main(["convert", "-f", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "error (InvalidSpec): spec.variants.0: variant 'q': ioType int8 needs" in err


def test_missing_flags_say_what_to_pass(capsys):
    assert main(["convert", "--source", "./m"]) == 2
    err = capsys.readouterr().err
    assert "missing --output (or spec.output.uri), --variant/--all-variants" in err


def test_unknown_variant_preset_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "--variant", "tiny"])
    assert exit_info.value.code == 2
    assert "is not a preset (fp32, fp16, dynamic, int8, int16x8)" in capsys.readouterr().err


def test_missing_source_exits_3(tmp_path, capsys):
    code = main(
        [
            "convert",
            "--source",
            str(tmp_path / "nope"),
            "--output",
            str(tmp_path / "o"),
            "--variant",
            "fp32",
            "--log-format",
            "plain",
        ]
    )
    assert code == 3
    assert "error (SourceNotFound)" in capsys.readouterr().err


def test_convert_flags_then_refusal_to_overwrite(cnn_saved_model, tmp_path, capsys):
    args = [
        "convert",
        "--source",
        str(cnn_saved_model),
        "--output",
        str(tmp_path / "o"),
        "--variant",
        "fp32",
        "--variant",
        "small:dynamic-range",
        "--runs",
        "3",
        "--log-format",
        "json",
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "selected: small" in captured.out
    events = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    assert {e["stage"] for e in events if e["event"] == "done"} >= {"fetch", "convert", "publish"}
    assert main(args) == 7
    assert "error (OutputExists)" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_print_spec_shows_flags_laid_over_the_manifest(tmp_path, capsys):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "apiVersion: tflite.dev/v1alpha1\nkind: TFLiteConversion\nmetadata: {name: m}\n"
        "spec: {source: {uri: ./m}, output: {uri: ./o}, variants: [{name: fp32}]}\n"
    )
    assert (
        main(["convert", "-f", str(manifest), "--runs", "7", "--max-error", "0.5", "--print-spec"])
        == 0
    )
    spec = json.loads(capsys.readouterr().out)
    assert spec["benchmark"]["runs"] == 7
    assert spec["target"]["maxOutputError"] == 0.5
    assert spec["variants"] == [
        {"name": "fp32", "quantization": "none", "ioType": "float32", "ops": "builtins"}
    ]


def test_input_shape_flags_fill_source_input_shapes(tmp_path, capsys):
    args = ["convert", "--source", "./m", "--output", "./o", "--variant", "fp32"]
    shapes = ["--input-shape", "image=1,224,224,3", "--input-shape", "mask=1,224,224"]
    assert main([*args, *shapes, "--print-spec"]) == 0
    spec = json.loads(capsys.readouterr().out)
    assert spec["source"]["inputShapes"] == {"image": [1, 224, 224, 3], "mask": [1, 224, 224]}


def test_malformed_input_shape_flag_says_the_form(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "--source", "./m", "--output", "./o", "--input-shape", "image=1,x"])
    assert exit_info.value.code == 2
    assert "expected NAME=D0,D1,... with the batch first" in capsys.readouterr().err


def test_job_writes_the_summary_for_the_operator(cnn_saved_model, tmp_path):
    spec = {
        "source": {"uri": str(cnn_saved_model)},
        "output": {"uri": str(tmp_path / "out")},
        "variants": [{"name": "fp16", "quantization": "float16"}],
        "benchmark": {"runs": 3, "warmupRuns": 0},
        "validation": {"samples": 4},
    }
    log = tmp_path / "termination-log"
    result = run_cli(
        "job",
        env={
            "TFLITE_OPERATOR_SPEC": json.dumps(spec),
            "TFLITE_OPERATOR_NAME": "digits",
            "TFLITE_OPERATOR_TERMINATION_LOG": str(log),
            "TMPDIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = Summary.from_termination_message(log.read_text())
    assert summary.ok and summary.exit_code == 0
    assert summary.selected == "fp16"
    assert summary.variants[0].size_bytes == (tmp_path / "out" / "fp16.tflite").stat().st_size
    assert summary.variants[0].p50_ms > 0
    assert summary.report_uri == str(tmp_path / "out" / "report.json")
    # JSON log lines on stderr, for log collectors.
    assert any(
        json.loads(line).get("event") == "summary"
        for line in result.stderr.splitlines()
        if line.startswith("{")
    )


def test_job_failure_still_leaves_the_cause(tmp_path):
    log = tmp_path / "termination-log"
    spec = {
        "source": {"uri": str(tmp_path / "missing")},
        "output": {"uri": str(tmp_path / "o")},
        "variants": [{"name": "fp32"}],
    }
    result = run_cli(
        "job",
        env={"TFLITE_OPERATOR_SPEC": json.dumps(spec), "TFLITE_OPERATOR_TERMINATION_LOG": str(log)},
    )
    assert result.returncode == 3
    summary = Summary.from_termination_message(log.read_text())
    assert not summary.ok and summary.exit_code == 3
    assert summary.error.startswith("SourceNotFound: no file or directory at")


def test_job_with_a_bad_spec_exits_2(tmp_path):
    log = tmp_path / "termination-log"
    result = run_cli(
        "job",
        env={"TFLITE_OPERATOR_SPEC": '{"source": {}}', "TFLITE_OPERATOR_TERMINATION_LOG": str(log)},
    )
    assert result.returncode == 2
    assert "InvalidSpec: spec.source.uri: Field required" in log.read_text()


def test_job_delete_outputs_removes_only_the_specs_files_and_is_idempotent(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("fp32.tflite", "report.json", "report.html", "someone-elses.txt"):
        (out / name).write_text("x")
    spec = {
        "source": {"uri": "gs://models/m"},
        "output": {"uri": str(out)},
        "variants": [{"name": "fp32"}, {"name": "int8", "quantization": "int8"}],
    }
    env = {
        "TFLITE_OPERATOR_SPEC": json.dumps(spec),
        "TFLITE_OPERATOR_TERMINATION_LOG": str(tmp_path / "log"),
    }
    for _ in range(2):
        result = run_cli("job", "--delete-outputs", env=env)
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in out.iterdir()) == ["someone-elses.txt"]
    assert Summary.from_termination_message((tmp_path / "log").read_text()).ok


# -- output safety on gs:// (issue 8): the Job's retries and cleanups --------------------------

UID_A = "0d4c6a52-0000-4000-8000-00000000000a"
UID_B = "0d4c6a52-0000-4000-8000-00000000000b"


def job_env(spec: dict, log: Path, uid: str, generation: int = 1) -> dict[str, str]:
    """The environment the operator's job_builder gives a converter pod."""
    return {
        SPEC_ENV: json.dumps(spec),
        NAME_ENV: "dense",
        UID_ENV: uid,
        GENERATION_ENV: str(generation),
        TERMINATION_LOG_ENV: str(log),
        "TMPDIR": str(log.parent),
    }


def generations(fake_gcs: FakeGCS, uri: str) -> dict[str, int]:
    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    return {b.name: b.generation for b in fake_gcs.client().list_blobs(bucket, prefix=prefix)}


@pytest.mark.gcs
def test_job_retry_after_its_outputs_were_published_succeeds_with_their_figures(
    fake_gcs: FakeGCS, model_uris, tmp_path
):
    out = f"gs://{fake_gcs.create_bucket().name}/dense/"
    spec = {
        "source": {"uri": model_uris["dense"]},
        "output": {"uri": out},
        "variants": [{"name": "fp32"}, {"name": "fp16", "quantization": "float16"}],
        "benchmark": {"runs": 3, "warmupRuns": 0},
        "validation": {"samples": 4},
    }
    log = tmp_path / "termination-log"
    first = run_cli("job", env=job_env(spec, log, UID_A, generation=3))
    assert first.returncode == 0, first.stderr[-2000:]
    published = Summary.from_termination_message(log.read_text())
    written = generations(fake_gcs, out)
    assert len(written) == 4

    # The pod published, then died before exiting 0 (node drain): the Job starts it again, with
    # the same environment. It finds its own complete set: done, no second conversion.
    log.unlink()
    retry = run_cli("job", env=job_env(spec, log, UID_A, generation=3))
    assert retry.returncode == 0, retry.stderr[-2000:]
    assert Summary.from_termination_message(log.read_text()) == published
    assert published.variants[0].size_bytes > 0 and published.variants[0].p50_ms > 0
    assert generations(fake_gcs, out) == written  # nothing was written again
    assert "already holds this generation's outputs" in retry.stderr

    # Another resource pointed at the same URI is still refused, and nothing changes.
    other = run_cli("job", env=job_env(spec, log, UID_B, generation=3))
    assert other.returncode == 7
    assert Summary.from_termination_message(log.read_text()).error.startswith("OutputExists:")
    # So is the next generation of the same resource (its spec changed; no overwrite).
    edited = run_cli("job", env=job_env(spec, log, UID_A, generation=4))
    assert edited.returncode == 7
    assert generations(fake_gcs, out) == written


@pytest.mark.gcs
def test_job_delete_outputs_deletes_only_what_its_resource_wrote(fake_gcs: FakeGCS, tmp_path):
    out = f"gs://{fake_gcs.create_bucket().name}/shared"
    # Resource A converted to `out`; resource B points at the same URI (it failed with
    # OutputExists or is still queued) and is deleted with deleteOnResourceDeletion.
    storage_for(out).publish(
        out,
        {"fp32.tflite": b"A's model"},
        {"report.json": b"{}", "report.html": b"<p>A</p>"},
        overwrite=False,
        owner=Owner(uid=UID_A, generation=1),
    )
    fake_gcs.upload_bytes(f"{out}/notes.txt", b"not an output")
    spec = {
        "source": {"uri": "gs://models/m"},
        "output": {"uri": out, "deleteOnResourceDeletion": True},
        "variants": [{"name": "fp32"}],
    }
    log = tmp_path / "log"
    before = generations(fake_gcs, out)

    by_b = run_cli("job", "--delete-outputs", env=job_env(spec, log, UID_B))
    assert by_b.returncode == 0, by_b.stderr
    assert generations(fake_gcs, out) == before
    assert '"event": "kept"' in by_b.stderr

    for _ in range(2):  # A's own cleanup, twice: the second finds nothing left
        by_a = run_cli("job", "--delete-outputs", env=job_env(spec, log, UID_A))
        assert by_a.returncode == 0, by_a.stderr
        assert fake_gcs.names(out) == ["shared/notes.txt"]
    assert Summary.from_termination_message(log.read_text()).ok
