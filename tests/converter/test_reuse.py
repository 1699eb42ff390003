"""Reuse across generations: a new run copies the variants whose inputs did not change.

Real conversions of the digits CNN, on local paths (CLI runs) and on fake-gcs-server (runs
with an owner, as a converter Job has). That a variant was not converted shows in its report
(no convertSeconds, reusedFrom set) and in the progress lines the pipeline emits.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gcs_server import FakeGCS
from tflite_operator.api.manifest import parse_spec
from tflite_operator.api.report import Report, VariantReport
from tflite_operator.cli import main
from tflite_operator.console import results_table
from tflite_operator.converter import pipeline
from tflite_operator.converter.progress import Progress
from tflite_operator.storage.ownership import Owner

A = Owner(uid="0b7c0c9e-aaaa-4f00-8000-00000000000a", generation=1)
B = Owner(uid="0b7c0c9e-bbbb-4f00-8000-00000000000b", generation=1)


class Recorder(Progress):
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.warnings: list[str] = []

    def step(self, stage: str, detail: str = "") -> None:
        self.steps.append(f"{stage}: {detail}")

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def reused(self) -> list[str]:
        return sorted(s.split(": ")[1] for s in self.steps if " reused " in s)


def spec(source: str, output: str, calibration: str, variants: list[dict], **output_opts) -> dict:
    return {
        "source": {"uri": source},
        "output": {"uri": output, **output_opts},
        "variants": variants,
        "benchmark": {"enabled": False},
        "validation": {"samples": 8},
    }


def gen1_variants(calibration: str) -> list[dict]:
    return [
        {"name": "fp32"},
        {
            "name": "int8",
            "quantization": "int8",
            "representativeDataset": {"uri": calibration, "samples": 32},
        },
    ]


def gen2_variants(calibration: str) -> list[dict]:
    """fp32 unchanged, int8 changed (fewer calibration samples), fp16 added."""
    return [
        {"name": "fp32"},
        {
            "name": "int8",
            "quantization": "int8",
            "representativeDataset": {"uri": calibration, "samples": 16},
        },
        {"name": "fp16", "quantization": "float16"},
    ]


def run(
    manifest: dict, workdir: Path, owner: Owner | None = None
) -> tuple[dict[str, VariantReport], Recorder]:
    progress = Recorder()
    outcome = pipeline.run("digits", parse_spec(manifest), workdir, progress, owner)
    assert outcome.error is None
    return {v.name: v for v in outcome.report.variants}, progress


def assert_converted(rep: VariantReport) -> None:
    assert rep.reused_from is None and rep.convert_seconds is not None
    assert rep.fingerprint is not None and rep.sha256 is not None


# --- local paths: CLI runs, no owner ------------------------------------------------------


@pytest.fixture
def source_copy(cnn_saved_model, tmp_path) -> Path:
    """A copy of the CNN this test may touch (the session's model stays as it is)."""
    return Path(shutil.copytree(cnn_saved_model, tmp_path / "model"))


def test_local_new_generation_copies_the_unchanged_variant_and_converts_the_rest(
    source_copy, calibration_npz, tmp_path
):
    out, cal = tmp_path / "out", str(calibration_npz)
    first, _ = run(spec(str(source_copy), str(out), cal, gen1_variants(cal)), tmp_path / "w1")
    fp32_bytes = (out / "fp32.tflite").read_bytes()
    for rep in first.values():
        assert_converted(rep)

    manifest = spec(str(source_copy), str(out), cal, gen2_variants(cal), overwrite=True)
    second, progress = run(manifest, tmp_path / "w2")

    fp32 = second["fp32"]
    assert fp32.reused_from == str(out / "report.json")
    assert fp32.convert_seconds is None
    assert progress.reused() == ["fp32"]
    assert (out / "fp32.tflite").read_bytes() == fp32_bytes
    assert fp32.sha256 == first["fp32"].sha256 and fp32.fingerprint == first["fp32"].fingerprint
    # Only conversion is skipped: the copied model is validated like the others.
    assert fp32.accuracy is not None and fp32.target is not None and fp32.uri is not None
    assert_converted(second["int8"])
    # Fewer calibration samples: the variant spec and the data it is calibrated on.
    changed = second["int8"].fingerprint.changed_since(first["int8"].fingerprint)
    assert changed == ["variant", "data"]
    assert_converted(second["fp16"])
    on_disk = Report.model_validate_json((out / "report.json").read_text())
    assert on_disk.variants[0].reused_from == fp32.reused_from
    assert f"reused, not converted: fp32 (from {out / 'report.json'})" in results_table(on_disk)
    assert "not converted: reused from" in (out / "report.html").read_text()

    # Nothing changed: every variant is copied, none converted.
    third, progress = run(manifest, tmp_path / "w3")
    assert progress.reused() == ["fp16", "fp32", "int8"]
    assert all(v.convert_seconds is None for v in third.values())

    # The source rewritten (same bytes, new mtime): every variant converts again.
    pb = source_copy / "saved_model.pb"
    st = pb.stat()
    os.utime(pb, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    fourth, progress = run(manifest, tmp_path / "w4")
    assert progress.reused() == []
    for name, rep in fourth.items():
        assert_converted(rep)
        assert rep.fingerprint.changed_since(third[name].fingerprint) == ["source"]


def test_local_tampered_previous_tflite_is_converted_again(source_copy, calibration_npz, tmp_path):
    out, cal = tmp_path / "out", str(calibration_npz)
    manifest = spec(str(source_copy), str(out), cal, gen1_variants(cal), overwrite=True)
    run(manifest, tmp_path / "w1")
    with (out / "fp32.tflite").open("ab") as f:
        f.write(b"\0")

    second, progress = run(manifest, tmp_path / "w2")
    assert progress.reused() == ["int8"]
    assert_converted(second["fp32"])
    (warning,) = progress.warnings
    assert "fp32: not reused" in warning and "the previous report says" in warning


def test_reuse_false_converts_every_variant(source_copy, calibration_npz, tmp_path):
    out, cal = tmp_path / "out", str(calibration_npz)
    manifest = spec(str(source_copy), str(out), cal, [{"name": "fp32"}], overwrite=True)
    run(manifest, tmp_path / "w1")
    manifest["output"]["reuse"] = False
    second, progress = run(manifest, tmp_path / "w2")
    assert progress.reused() == []
    # Fingerprinted all the same, so a later run with reuse on can copy it.
    assert_converted(second["fp32"])


def test_cli_says_reused_and_no_reuse_converts(cnn_saved_model, tmp_path, capsys):
    out = tmp_path / "o"
    args = ["convert", "--source", str(cnn_saved_model), "--output", str(out), "--overwrite"]
    args += ["--variant", "fp32", "--no-benchmark", "--no-validation", "--log-format", "plain"]
    assert main(args) == 0
    assert "fp32: reused" not in capsys.readouterr().err
    assert main(args) == 0
    captured = capsys.readouterr()
    assert f"from {out / 'report.json'}" in captured.err and "fp32: reused" in captured.err
    assert "reused, not converted: fp32" in captured.out
    assert main([*args, "--no-reuse"]) == 0
    assert "fp32: reused" not in capsys.readouterr().err


# --- gs:// on fake-gcs-server: converter Jobs with an owner --------------------------------


@pytest.mark.gcs
def test_gcs_reuse_follows_owner_and_source_generation(
    fake_gcs: FakeGCS, cnn_saved_model, calibration_npz, tmp_path
):
    bucket = fake_gcs.create_bucket().name
    src, out = f"gs://{bucket}/models/digits", f"gs://{bucket}/tflite/digits"
    cal = f"gs://{bucket}/calib/digits.npz"
    fake_gcs.upload_dir(cnn_saved_model, src)
    fake_gcs.upload_bytes(cal, Path(calibration_npz).read_bytes())
    gcs = fake_gcs.client().bucket(bucket)

    run(spec(src, out, cal, gen1_variants(cal)), tmp_path / "w1", A)
    fp32_bytes = fake_gcs.read(f"{out}/fp32.tflite")
    report_generation = gcs.get_blob("tflite/digits/report.json").generation

    manifest = spec(src, out, cal, gen2_variants(cal), overwrite=True)
    a2 = Owner(A.uid, 2)
    second, progress = run(manifest, tmp_path / "w2", a2)
    assert progress.reused() == ["fp32"]
    assert second["fp32"].reused_from == f"{out}/report.json#{report_generation}"
    assert second["fp32"].convert_seconds is None
    assert fake_gcs.read(f"{out}/fp32.tflite") == fp32_bytes
    # Republished as this generation's own object (cleanup and retries go by these tags).
    assert gcs.get_blob("tflite/digits/fp32.tflite").metadata["tflite-operator-generation"] == "2"
    assert_converted(second["int8"])
    assert_converted(second["fp16"])

    # A new generation of one source object (same bytes): every variant converts again.
    gcs.blob("models/digits/saved_model.pb").upload_from_filename(
        str(cnn_saved_model / "saved_model.pb")
    )
    third, progress = run(manifest, tmp_path / "w3", Owner(A.uid, 3))
    assert progress.reused() == [] and progress.warnings == []
    for name, rep in third.items():
        assert_converted(rep)
        assert rep.fingerprint.changed_since(second[name].fingerprint) == ["source"]

    # Another resource publishing there never takes A's outputs as its own; nor does a CLI run.
    for owner in (B, None):
        other, progress = run(manifest, tmp_path / f"w-{owner}", owner)
        assert progress.reused() == []
        assert all(v.convert_seconds is not None for v in other.values())
        (warning,) = progress.warnings
        assert "not reusing variants from" in warning and "written by the resource" in warning
