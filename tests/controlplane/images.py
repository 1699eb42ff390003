"""Tiny `FROM scratch` images for the real node, made without Docker or a registry.

Each image is one static C program (images/*.c, `gcc -static`) in one layer,
written as a docker-archive tarball (manifest.json, a config, a layer tar) that
`ctr images import` reads. The pause image is the pod sandbox; the probe image
is what the node tests run. Nothing is pulled: there is no registry here, and a
static binary needs no base.

    python -m controlplane.images [CACHE_DIR]   build (or reuse); prints the tar paths
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

SOURCES = Path(__file__).resolve().parent / "images"
# Fully qualified so that containerd does not prefix docker.io/library/, and not
# `latest`, whose default pull policy (Always) would send the kubelet to a registry.
PAUSE_IMAGE = "tflite-operator.test/pause:v1"
PROBE_IMAGE = "tflite-operator.test/probe:v1"
_PROGRAMS = {PAUSE_IMAGE: "pause", PROBE_IMAGE: "probe"}
# A fixed mtime makes the layer, hence the image digest, depend on the bytes only.
_EPOCH = 0


class ImageBuildUnavailable(RuntimeError):
    """No C compiler with a static libc: the caller decides whether that skips or fails."""


def default_cache_dir() -> Path:
    root = os.environ.get("TFLITE_OPERATOR_CACHE") or str(Path.home() / ".cache/tflite-operator")
    return Path(root) / "node-images"


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes | None, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = _EPOCH
    info.mode = mode
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def docker_archive(binary: bytes, program: str, repo_tag: str) -> bytes:
    """A docker-archive (`docker save` format) holding one image: /<program> as entrypoint.

    Pure: the same binary gives the same bytes, hence the same image ID.
    """
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.USTAR_FORMAT) as layer:
        # Mount points runc would otherwise have to create in a read-only root.
        for d in ("dev", "proc", "sys", "etc", "tmp"):
            _tar_member(layer, d + "/", None, 0o755)
        _tar_member(layer, program, binary, 0o755)
    layer_bytes = layer_buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": [f"/{program}"], "Env": ["PATH=/"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": f"tflite-operator tests: static {program}"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [repo_tag], "Layers": [layer_name]}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _tar_member(tar, config_name, config_bytes, 0o644)
        _tar_member(tar, layer_name.split("/")[0] + "/", None, 0o755)
        _tar_member(tar, layer_name, layer_bytes, 0o644)
        _tar_member(tar, "manifest.json", json.dumps(manifest).encode(), 0o644)
    return out.getvalue()


def build(cache_dir: Path | None = None) -> dict[str, Path]:
    """Compiles and packs each image unless its tarball for these sources exists.

    Returns {image reference: tarball path}. About 0.3 s per image when cold.
    """
    cache_dir = cache_dir or default_cache_dir()
    cc = shutil.which(os.environ.get("CC", "gcc"))
    result: dict[str, Path] = {}
    for ref, program in _PROGRAMS.items():
        source = SOURCES / f"{program}.c"
        key = hashlib.sha256(source.read_bytes() + ref.encode()).hexdigest()[:16]
        tar_path = cache_dir / f"{program}-{key}.tar"
        if not tar_path.exists():
            if cc is None:
                raise ImageBuildUnavailable(
                    "no C compiler to build the node's images: install gcc and libc6-dev "
                    "(`bash tests/controlplane/node-deps.sh` does, as root)"
                )
            cache_dir.mkdir(parents=True, exist_ok=True)
            binary_path = cache_dir / f"{program}-{key}.bin"
            proc = subprocess.run(
                [cc, "-static", "-O2", "-s", "-o", str(binary_path), str(source)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise ImageBuildUnavailable(
                    f"`{cc} -static` failed for {source.name} (a static libc is needed: "
                    f"install libc6-dev):\n{proc.stderr.strip()}"
                )
            tmp = tar_path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(docker_archive(binary_path.read_bytes(), program, ref))
            tmp.replace(tar_path)  # atomic: a concurrent build sees all or nothing
            binary_path.unlink()
        result[ref] = tar_path
    return result


if __name__ == "__main__":
    for ref, path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else None).items():
        print(f"{ref} {path}")
