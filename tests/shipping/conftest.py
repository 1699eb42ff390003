"""Fixtures for the shipping tests: helm, the linters, and the operator tests' fixtures that
the chart's control-plane test reuses (small models in fake-gcs-server)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from shipping_helpers import HELM_BUILD, LINTERS_INSTALL, Helm, locate

# The operator tests' helpers (cluster_helpers, their conftest's fixtures) are reused, not
# copied; their folder is not a package, so it goes on sys.path like pytest would put it.
OPERATOR_TESTS = Path(__file__).resolve().parents[1] / "operator"
if str(OPERATOR_TESTS) not in sys.path:
    sys.path.insert(0, str(OPERATOR_TESTS))


def _operator_fixtures():
    """tests/operator/conftest.py under another module name: a second `conftest` module in
    sys.modules would shadow the first. Its fixtures are re-exported below by name."""
    name = "tflite_operator_tests_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, OPERATOR_TESTS / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


model_uris = _operator_fixtures().model_uris


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
