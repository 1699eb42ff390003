"""The images' install steps, without a Docker engine.

tests/images builds and runs the real images where a Docker engine is (`make images`); this
check needs none, so it runs everywhere: it reads the Dockerfile and, for each final target, runs
the `RUN` steps of the build stage its /opt/venv comes from, as written, in a clean virtualenv
on a copy of the files the Dockerfile COPYs; then starts the target's ENTRYPOINT + CMD with
--help. Only the paths change ($VENV, $SRC and the pip cache mount); a Dockerfile edit that
breaks an install breaks this test.

The converter target pulls TensorFlow (~600 MB; pip's cache makes warm runs a matter of
unpacking). TFLITE_SKIP_CONVERTER_INSTALL=1 skips it locally; under CI=true it always runs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from shipping_helpers import DOCKERFILE, REPO

from controlplane.fixtures import _in_ci

CONTAINER_VENV = "/opt/venv"


@dataclass
class Stage:
    name: str
    base: str
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    runs: list[str] = field(default_factory=list)
    copies: list[tuple[str, list[str], str]] = field(default_factory=list)  # (--from, srcs, dest)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped, as
    Docker reads them (comment lines inside a continued instruction are removed too)."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        current = ""
    return out


def _expand(value: str, env: dict[str, str]) -> str:
    """$VAR and ${VAR} in an ENV value, from the variables set before it."""
    return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env.get(m[1] or m[2], ""), value)


def global_args(text: str) -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults: what FROM lines may use."""
    out: dict[str, str] = {}
    for keyword, args in instructions(text):
        if keyword == "FROM":
            break
        if keyword == "ARG":
            key, _, value = args.partition("=")
            out[key] = value
    return out


def parse(text: str) -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    defaults = global_args(text)
    for keyword, args in instructions(text):
        if keyword == "ARG" and stage is None:
            continue  # a global ARG (global_args)
        if keyword == "FROM":
            words = args.split()
            base = _expand(words[0], defaults)
            name = words[-1] if len(words) == 3 else base
            stage = Stage(name=name, base=base)
            if base in stages:  # inherits ENV and WORKDIR from an earlier stage
                parent = stages[base]
                stage.env, stage.workdir = dict(parent.env), parent.workdir
            stages[name] = stage
            continue
        assert stage is not None, f"{keyword} before FROM"
        if keyword == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                stage.env[key] = _expand(value, stage.env)
        elif keyword == "WORKDIR":
            stage.workdir = args
        elif keyword == "RUN":
            # BuildKit flags (--mount=type=cache ...) come first; the rest is the shell command.
            words = args.split(" ")
            while words and words[0].startswith("--"):
                words.pop(0)
            stage.runs.append(" ".join(words))
        elif keyword == "COPY":
            words = shlex.split(args)
            source = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), "")
            paths = [w for w in words if not w.startswith("--")]
            stage.copies.append((source, paths[:-1], paths[-1]))
        elif keyword in ("ENTRYPOINT", "CMD"):
            setattr(stage, keyword.lower(), json.loads(args))
    return stages


def chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and its ancestors within this Dockerfile, oldest first."""
    out = []
    while name in stages:
        out.insert(0, stages[name])
        name = stages[name].base
    return out


STAGES = parse(DOCKERFILE.read_text())


def venv_source(target: str) -> str:
    """The build stage whose /opt/venv the final target copies."""
    (source,) = [s for s, _, dest in STAGES[target].copies if s and dest == CONTAINER_VENV]
    return source


def test_dockerfile_shape():
    for target in ("operator", "converter"):
        final = chain(STAGES, target)
        # Non-root by number, no HEALTHCHECK (Kubernetes probes), no compilers in the stages
        # the image is made of (build tools would live only in build-* stages, and none are
        # installed there either: wheels only).
        text = DOCKERFILE.read_text()
        assert not any(k == "HEALTHCHECK" for k, _ in instructions(text))
        assert "USER 65532:65532" in text
        for stage in final:
            for run in stage.runs:
                assert not re.search(r"apt-get|apk |gcc|g\+\+|build-essential", run), run
        assert STAGES[target].entrypoint == ["tflite-operator"]
        for run in STAGES[venv_source(target)].runs:
            assert "--only-binary=:all:" in run, "wheels only: nothing compiled in the build"
    assert STAGES["operator"].cmd == ["operator"] and STAGES["converter"].cmd == ["job"]
    # The default target (the last stage) is the small one.
    assert list(STAGES)[-1] == "operator"


def test_dockerfile_base_is_pinned_and_overridable():
    """Users get the pinned base; `make images` swaps it through the BASE build argument
    where no registry is reachable (hack/images.sh reads the default from this line)."""
    text = DOCKERFILE.read_text()
    assert re.fullmatch(
        r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", global_args(text)["BASE"]
    )
    assert STAGES["python-base"].base == global_args(text)["BASE"]
    assert next(a for k, a in instructions(text) if k == "FROM") == "${BASE} AS python-base"
    # A `# syntax=` directive makes BuildKit pull its frontend from a registry.
    assert not re.match(r"#\s*syntax\s*=", text), "no `# syntax=` line (see the Dockerfile)"


def _install(target: str, tmp: Path) -> Path:
    """Runs the build stage's RUN lines on the host; returns the venv."""
    build = chain(STAGES, venv_source(target))
    src, venv = tmp / "src", tmp / "venv"
    src.mkdir()
    workdir = build[-1].workdir
    # The build context as the Dockerfile copies it (local sources only, not --from), with
    # COPY's rules: a directory's contents go into the destination, files go inside it.
    for stage in build:
        for source, sources, dest in stage.copies:
            if source:
                continue
            into = src / os.path.relpath(os.path.normpath(os.path.join(workdir, dest)), workdir)
            for p in sources:
                origin = REPO / p
                if origin.is_dir():
                    shutil.copytree(
                        origin,
                        into,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    )
                else:
                    into.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, into / origin.name)
    paths = {CONTAINER_VENV: str(venv), workdir: str(src)}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PIP_NO_CACHE_DIR")
    }
    for key, value in build[-1].env.items():
        env[key] = paths.get(value, value)
    # The interpreter the Dockerfile names (`python3`) is this one's, outside any venv.
    base_bin = Path(sys.base_prefix) / "bin"
    env["PATH"] = f"{base_bin}{os.pathsep}{env.get('PATH', '')}"
    for command in build[-1].runs:
        # Docker runs RUN with /bin/sh -c: the same shell here.
        proc = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=src,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        assert proc.returncode == 0, (
            f"RUN {command}\nexited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return venv


def _start(target: str, venv: Path, tmp: Path) -> str:
    """ENTRYPOINT + CMD + --help, from the venv alone (not this checkout's sources)."""
    argv = [*STAGES[target].entrypoint, *STAGES[target].cmd, "--help"]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin"
    proc = subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\n{proc.stderr[-4000:]}"
    return proc.stdout


def _has(venv: Path, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], check=False).returncode == 0


def _size_mb(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) // 2**20


def test_operator_image_installs_and_starts(tmp_path: Path):
    venv = _install("operator", tmp_path)
    out = _start("operator", venv, tmp_path)
    assert "--converter-image" in out and "--namespace" in out
    # The point of the slim target: the operator never imports TensorFlow.
    assert _has(venv, "kopf") and _has(venv, "tflite_operator")
    assert not _has(venv, "tensorflow"), "tensorflow is in the operator image"
    assert not _has(venv, "ai_edge_litert")
    print(f"operator venv: {_size_mb(venv)} MB")


def test_converter_image_installs_and_starts(tmp_path: Path):
    if os.environ.get("TFLITE_SKIP_CONVERTER_INSTALL") == "1" and not _in_ci():
        pytest.skip("TFLITE_SKIP_CONVERTER_INSTALL=1 (CI=true runs it always)")
    venv = _install("converter", tmp_path)
    out = _start("converter", venv, tmp_path)
    assert "usage" in out.lower()
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import tensorflow as tf, ai_edge_litert, google.cloud.storage; print(tf.__version__)",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().startswith("2.21"), proc.stdout
    # report.html's template is package data: the image must carry it, not only the .py files.
    template = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from tflite_operator.converter.report_html import TEMPLATE, _environment; "
            "_environment().get_template(TEMPLATE)",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert template.returncode == 0, template.stderr[-3000:]
    print(f"converter venv: {_size_mb(venv)} MB")
