"""The images as a converter Job and the operator's Deployment run them, with Docker alone.

What tests/shipping/test_install.py cannot show: the images `make images` built start, and
the converter converts under the pod's constraints (read-only root, uid/gid 65532, no
capabilities, no privilege escalation, the memory limit, scratch on an emptyDir), with its
flags derived from the Job the operator builds, not written out by hand.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from images.helpers import docker_run_argv, image_id, image_tar
from tflite_operator.api.job_contract import SCRATCH, SPEC_ENV, TERMINATION_LOG
from tflite_operator.api.manifest import parse_spec
from tflite_operator.api.report import Summary
from tflite_operator.controller.job_builder import build_job
from tflite_operator.controller.settings import Settings

pytestmark = pytest.mark.images

UID = 65532
BODY = {
    "apiVersion": "tflite.dev/v1alpha1",
    "kind": "TFLiteConversion",
    "metadata": {"name": "dense", "namespace": "ml", "uid": "uid-images-1", "generation": 1},
}


def _run(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def test_converter_image_runs_the_job_under_the_pods_constraints(
    docker: str, converter_image: str, tiny_saved_models: dict[str, Path], tmp_path: Path
):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the host side of a volume the pod's uid writes to
    log = tmp_path / "termination-log"
    log.touch()
    log.chmod(0o666)  # the kubelet's termination-message file, written by the container
    spec = parse_spec(
        {
            "source": {"uri": "/models/dense"},
            "output": {"uri": "/out/"},
            "variants": [{"name": "fp32"}, {"name": "dynamic", "quantization": "dynamic-range"}],
            "benchmark": {"runs": 3, "warmupRuns": 0},
            "validation": {"samples": 4},
            "job": {"resources": {"limits": {"memory": "2Gi"}}},
        }
    )
    job = build_job(BODY, spec, Settings(converter_image=converter_image))
    argv = docker_run_argv(
        docker,
        job,
        {TERMINATION_LOG: log, "/models/dense": tiny_saved_models["dense"], "/out": out},
        read_only={"/models/dense"},
    )
    # The translation carries the constraints this test is about (and the spec as data).
    for flag in ("--read-only", f"{UID}:{UID}", "ALL", "no-new-privileges", str(2 * 2**30)):
        assert flag in argv, (flag, argv)
    assert f"{SCRATCH}:rw,nosuid,nodev,mode=1777" in argv
    assert any(a.startswith(f"{SPEC_ENV}=") for a in argv)

    proc = _run(argv)
    assert proc.returncode == 0, f"{argv}\nexited {proc.returncode}\n{proc.stderr[-5000:]}"

    summary = Summary.from_termination_message(log.read_text())
    assert summary.ok and summary.exit_code == 0, summary
    assert [v.name for v in summary.variants] == ["fp32", "dynamic"]
    assert summary.report_uri and summary.report_uri.startswith("/out/")
    for name in ("fp32.tflite", "dynamic.tflite", "report.json", "report.html"):
        assert (out / name).stat().st_size > 0, name
        # Written by the pod's user, not root: --user took effect.
        assert (out / name).stat().st_uid == UID, name
    report = json.loads((out / "report.json").read_text())
    assert {v["name"] for v in report["variants"]} == {"fp32", "dynamic"}


def test_operator_image_starts_as_its_user_on_a_read_only_root(docker: str, operator_image: str):
    # No --user: the image's own USER must be the numeric uid runAsNonRoot can verify.
    inspect = _run([docker, "image", "inspect", "--format", "{{.Config.User}}", operator_image])
    assert inspect.stdout.strip() == f"{UID}:{UID}", inspect.stdout
    argv = [docker, "run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL"]
    argv += ["--security-opt", "no-new-privileges", operator_image]
    proc = _run([*argv, "operator", "--help"], timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "--converter-image" in proc.stdout and "--namespace" in proc.stdout
    # And it is the operator image: no TensorFlow in it.
    probe = "import importlib.util as u; print(u.find_spec('tensorflow') is None)"
    proc = _run([*argv[:-1], "--entrypoint", "python", operator_image, "-c", probe], timeout=120)
    assert proc.stdout.strip() == "True", proc.stdout + proc.stderr


def test_image_tar_is_saved_once_per_image_id(docker: str, operator_image: str, tmp_path: Path):
    """What a real node imports (`ctr images import`): saved once, then found by image ID."""
    first = image_tar(operator_image, tmp_path)
    assert image_id(docker, operator_image).removeprefix("sha256:")[:12] in first.name
    stamp = first.stat().st_mtime_ns
    assert image_tar(operator_image, tmp_path) == first
    assert first.stat().st_mtime_ns == stamp, "saved again although the image is unchanged"
    with tarfile.open(first) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == [operator_image]
