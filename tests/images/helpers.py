"""The images `make images` builds, and running a converter Job's pod with plain Docker.

For other tests too (a real node imports the images into its runtime):
    OPERATOR_IMAGE, CONVERTER_IMAGE   the tags (TFLITE_OPERATOR_IMAGE, TFLITE_CONVERTER_IMAGE)
    image_tar(image)                  a `docker save` tar of it, cached by image ID
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from tflite_operator.api.kube_rules import parse_quantity

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack"
# The Makefile exports these (make images / make test); the defaults are hack/images.sh's.
OPERATOR_IMAGE = os.environ.get("TFLITE_OPERATOR_IMAGE", "tflite-operator:ci")
CONVERTER_IMAGE = os.environ.get("TFLITE_CONVERTER_IMAGE", "tflite-converter:ci")


class ImagesUnavailable(RuntimeError):
    pass


def _script(name: str, *args: str, timeout: float = 60) -> str:
    """Runs a hack/ script; its last stdout line, or ImagesUnavailable with its reason."""
    proc = subprocess.run(
        ["bash", str(HACK / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ImagesUnavailable(proc.stderr.strip() or f"hack/{name} exited {proc.returncode}")
    return lines[-1]


def docker_client() -> str:
    """Debian's 20.10 client when an engine answers; never starts one (make images does)."""
    return _script("docker-engine.sh", "--print-client")


def image_id(docker: str, image: str) -> str:
    proc = subprocess.run(
        [docker, "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        raise ImagesUnavailable(f"no image {image}: build it with `make images`")
    return proc.stdout.strip()


def image_tar(image: str, directory: Path | None = None) -> Path:
    """The image saved as a tar (for `ctr images import`); a warm call costs one inspect."""
    args = [image] + ([str(directory)] if directory else [])
    return Path(_script("image-tar.sh", *args, timeout=900))


# --- a Job's pod as `docker run` flags --------------------------------------------------------

# The securityContext fields this translation understands; any other makes it fail, so that a
# constraint added to the Job is added here too instead of being silently left out.
_KNOWN_CONTAINER_SC = {
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "runAsNonRoot",
    "capabilities",
    "seccompProfile",
}
_KNOWN_POD_SC = {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"}


def docker_run_argv(
    docker: str,
    job: Mapping[str, Any],
    mounts: Mapping[str, Path],
    read_only: Collection[str] = (),
) -> list[str]:
    """`docker run` of the Job's one container with what the kubelet would apply to it.

    mounts: container path -> host path, for what a node would provide (the termination
    message file) or the test brings (models and outputs as local paths); read_only names
    the container paths mounted read-only. emptyDir volumes
    become a tmpfs, the pod's scratch space. No network: everything the run needs is mounted.
    """
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pod_sc, sc = pod.get("securityContext", {}), container.get("securityContext", {})
    unknown = (set(pod_sc) - _KNOWN_POD_SC) | (set(sc) - _KNOWN_CONTAINER_SC)
    assert not unknown, f"docker_run_argv does not translate securityContext {unknown} yet"
    # seccomp RuntimeDefault is Docker's default profile: nothing to add.
    for ctx in (pod_sc, sc):
        assert ctx.get("seccompProfile", {"type": "RuntimeDefault"}) == {"type": "RuntimeDefault"}

    argv = [docker, "run", "--rm", "--network", "none"]
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup", uid))
    if uid is not None:
        argv += ["--user", f"{uid}:{gid}"]
    if "fsGroup" in pod_sc:
        argv += ["--group-add", str(pod_sc["fsGroup"])]
    if sc.get("readOnlyRootFilesystem"):
        argv.append("--read-only")
    for cap in sc.get("capabilities", {}).get("drop", []):
        argv += ["--cap-drop", cap]
    if sc.get("allowPrivilegeEscalation") is False:
        argv += ["--security-opt", "no-new-privileges"]
    memory = container.get("resources", {}).get("limits", {}).get("memory")
    if memory:
        argv += ["--memory", str(int(parse_quantity(memory) or 0))]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        assert "emptyDir" in volume, f"docker_run_argv does not translate volume {volume} yet"
        argv += ["--tmpfs", f"{mount['mountPath']}:rw,nosuid,nodev,mode=1777"]
    for inside, outside in mounts.items():
        ro = ",readonly" if inside in read_only else ""
        argv += ["--mount", f"type=bind,source={outside},target={inside}{ro}"]
    for item in container.get("env", []):
        argv += ["--env", f"{item['name']}={item['value']}"]
    # The pod's command replaces the image's ENTRYPOINT, as in Kubernetes.
    command = [*container.get("command", []), *container.get("args", [])]
    if command:
        argv += ["--entrypoint", command[0]]
    return [*argv, container["image"], *command[1:]]
