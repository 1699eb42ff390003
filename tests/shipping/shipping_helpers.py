"""Helpers for the shipping tests: the chart rendered by a real helm, the linters' venv.

A module of its own (not conftest.py) so that test modules can import it by name.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controlplane.fixtures import unavailable

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tflite-operator"
CHART_CRDS = CHART / "crds"
TOP_CRDS = REPO / "crds"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
HELM_BUILD = REPO / "tools" / "helm" / "build.sh"
LINTERS_INSTALL = Path(__file__).with_name("linters") / "install.sh"
DOCKERFILE = REPO / "Dockerfile"
RELEASE_NS = "tflite-operator-system"


def locate(script: Path, flag: str, what: str, how: str) -> Path:
    """Runs an installer in locate-only mode; skips (fails under CI=true) when nothing is there.

    The installers are the one place that knows versions and cache layout; the tests never
    build, so a cold build shows up as a Makefile step, not as a mysteriously slow test.
    """
    proc = subprocess.run(
        ["bash", str(script), flag], capture_output=True, text=True, timeout=60, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        reason = proc.stderr.strip() or f"{script} {flag} failed"
        unavailable(f"no {what}: {reason}\nTo get it: {how}")
    return Path(lines[-1])


@dataclass(frozen=True)
class Helm:
    binary: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # A private HELM_* home: a developer's repositories and plugins must not change results.
        home = Path(tempfile.gettempdir()) / "tflite-operator-helm-home"
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        proc = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def template_text(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        values_files: Sequence[Path] = (),
        release: str = "tflite",
        namespace: str = RELEASE_NS,
        include_crds: bool = False,
    ) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            args = ["template", release, str(CHART), "--namespace", namespace]
            for f in values_files:
                args += ["--values", str(f)]
            if values:
                extra = Path(tmp) / "values.yaml"
                extra.write_text(yaml.safe_dump(dict(values)))
                args += ["--values", str(extra)]
            if include_crds:
                args.append("--include-crds")
            return self.run(*args).stdout

    def template(self, values: Mapping[str, Any] | None = None, **kwargs: Any) -> list[dict]:
        return [d for d in yaml.safe_load_all(self.template_text(values, **kwargs)) if d]


def by_kind(docs: Iterable[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: Iterable[dict], kind: str) -> dict:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def container_env(deployment: dict) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def normalized_rules(rules: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    """RBAC rules as (apiGroup, resource, verb) triples: equal permissions compare equal
    however the rules are grouped or ordered. A rule limited to named objects gives
    "resource:name" resources, so that it never reads as access to all of them."""
    out: set[tuple[str, str, str]] = set()
    for rule in rules:
        assert not rule.get("nonResourceURLs"), rule
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                named = [f"{resource}:{n}" for n in rule.get("resourceNames") or []]
                for verb in rule.get("verbs", []):
                    out.update((group, r, verb) for r in named or [resource])
    return out
