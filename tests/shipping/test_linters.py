"""hadolint over the Dockerfile, checkov over the Dockerfile and the rendered chart.

No failed check; a check may only be skipped where the skip is written (a `checkov:skip`
comment in the Dockerfile, a `checkov.io/skipN` annotation in a template) with a reason.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from shipping_helpers import CI_VALUES, DOCKERFILE, RELEASE_NS, REPO, Helm

# Skips that name a check but give no reason read as a blanket silence.
MIN_REASON = 20


def _run(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def test_hadolint_is_clean(linters: Path):
    proc = _run([str(linters / "hadolint"), "--no-color", str(DOCKERFILE)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _checkov(linters: Path, *args: str) -> list[dict[str, Any]]:
    # --skip-download: no call to Prisma Cloud for guidelines or policies (and no network).
    proc = _run([str(linters / "checkov"), "--skip-download", "--output", "json", *args])
    if proc.returncode not in (0, 1):
        pytest.fail(f"checkov exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    report = json.loads(proc.stdout)
    return report if isinstance(report, list) else [report]


def _assert_clean(reports: list[dict[str, Any]], expect_checks: int) -> None:
    passed = 0
    for report in reports:
        results = report.get("results", {})
        failed = [
            (c["check_id"], c["check_name"], c.get("resource"), c.get("file_path"))
            for c in results.get("failed_checks", [])
        ]
        assert not failed, "checkov failed checks:\n" + "\n".join(map(str, failed))
        for c in results.get("skipped_checks", []):
            reason = (c.get("check_result") or {}).get("suppress_comment") or ""
            assert len(reason.strip()) >= MIN_REASON, f"{c['check_id']} skipped without reason"
        passed += len(results.get("passed_checks", []))
        assert not report.get("summary", {}).get("parsing_errors"), report["summary"]
    # A scan that found nothing to check would pass vacuously.
    assert passed >= expect_checks, f"only {passed} checks ran"


def test_checkov_dockerfile(linters: Path):
    _assert_clean(_checkov(linters, "--framework", "dockerfile", "--file", str(DOCKERFILE)), 30)


def test_checkov_rendered_chart(linters: Path, helm: Helm, tmp_path: Path):
    """Default values and every ci/*-values.yaml, rendered as an install would be."""
    for values in [None, *CI_VALUES]:
        name = values.stem if values else "default"
        text = helm.template_text(values_files=[values] if values else [], namespace=RELEASE_NS)
        (tmp_path / f"{name}.yaml").write_text(text)
    _assert_clean(_checkov(linters, "--framework", "kubernetes", "--directory", str(tmp_path)), 200)


SCRIPTS = [
    REPO / "hack" / "e2e-kind.sh",
    REPO / "hack" / "kind-base.sh",
    REPO / "hack" / "kind-node-image.sh",
    REPO / "hack" / "kind-docker.sh",
    REPO / "hack" / "docker-engine.sh",
    REPO / "hack" / "debian-base.sh",
    REPO / "hack" / "images.sh",
    REPO / "hack" / "image-tar.sh",
    REPO / "tools" / "helm" / "build.sh",
    REPO / "tests" / "shipping" / "linters" / "install.sh",
]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_pass_shellcheck(linters: Path, script: Path):
    """Each parses and shellcheck finds nothing in it (hack/e2e-kind.sh and the kind-*.sh it
    runs are opt-in, `make e2e-kind`, not part of `make test`: this is the check they get)."""
    proc = _run(["bash", "-n", str(script)])
    assert proc.returncode == 0, proc.stderr
    proc = _run([str(linters / "shellcheck"), str(script)])
    assert proc.returncode == 0, proc.stdout
