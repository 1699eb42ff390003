"""Pytest fixtures for the real control plane; tests/conftest.py loads them as a plugin.

    kube_cluster        session: etcd + kube-apiserver + kube-controller-manager +
                        kube-scheduler + a real node (kubelet + containerd + CNI,
                        node.py), a KubeCluster; the pause and probe images are in
                        the node. One per session. On a machine that cannot run the
                        node (no root, no containerd: node.missing_pieces()) it has
                        no node, so API-only tests still run and Pods never do
    controller_manager  the same KubeCluster, but skips (fails under CI=true)
                        when there is no kube-controller-manager (envtest assets)
    real_node_cluster   the same KubeCluster, but skips (fails under CI=true) when
                        it has no node
    product_images      real_node_cluster with the images `make images` built
                        (tflite-operator:ci, tflite-converter:ci) imported into the
                        node; skips (fails under CI=true) without them
    namespace           a fresh namespace per test, deleted afterwards

The fixtures never build: `bash tests/controlplane/build.sh` (or the Makefile)
does, before pytest. Without binaries the tests skip with instructions, except
under CI=true, where a missing control plane fails the run instead of hiding
behind a skip.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from controlplane.cluster import ControlPlaneUnavailable, KubeCluster, locate_bin_dir
from controlplane.images import ImageBuildUnavailable, build
from controlplane.node import HOW_TO_INSTALL, missing_pieces


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(message: str) -> NoReturn:
    """Skip, or fail under CI=true: CI must never go green by skipping these tests."""
    if _in_ci():
        pytest.fail(f"CI=true and the control plane is unavailable: {message}", pytrace=False)
    pytest.skip(message)


def why_no_node(bin_dir: Path) -> str:
    """What keeps this machine from running the real node ("" when nothing does)."""
    if not (bin_dir / "kubelet").exists() or not (bin_dir / "kube-scheduler").exists():
        return (
            f"no kubelet or kube-scheduler in {bin_dir} (envtest ships neither): build them with "
            "`bash tests/controlplane/build.sh` and unset KUBEBUILDER_ASSETS, or set "
            "TEST_ASSET_KUBELET and TEST_ASSET_KUBE_SCHEDULER"
        )
    if missing := missing_pieces():
        return f"no real node possible, missing: {', '.join(missing)}; {HOW_TO_INSTALL}"
    try:
        build()
    except ImageBuildUnavailable as exc:
        return str(exc)
    return ""


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    try:
        bin_dir = locate_bin_dir()
    except ControlPlaneUnavailable as exc:
        unavailable(str(exc))
    cluster = KubeCluster.start(bin_dir, real_node=not why_no_node(bin_dir))
    try:
        if cluster.node is not None:
            for tar in build().values():
                cluster.node.import_image(tar)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def controller_manager(kube_cluster: KubeCluster) -> KubeCluster:
    if not kube_cluster.has_controller_manager:
        unavailable(
            f"no kube-controller-manager in {kube_cluster.bin_dir} (envtest ships none), so no "
            "Job controller or garbage collector: build it with `bash tests/controlplane/build.sh`"
            " and unset KUBEBUILDER_ASSETS, or set TEST_ASSET_KUBE_CONTROLLER_MANAGER"
        )
    return kube_cluster


@pytest.fixture(scope="session")
def real_node_cluster(kube_cluster: KubeCluster) -> KubeCluster:
    if kube_cluster.node is None:
        unavailable(why_no_node(kube_cluster.bin_dir) or "the cluster started without its node")
    return kube_cluster


@pytest.fixture(scope="session")
def product_images(real_node_cluster: KubeCluster) -> KubeCluster:
    """The operator and converter images (`make images`) in the node; pods use them with
    imagePullPolicy Never (there is no registry)."""
    from images.helpers import CONVERTER_IMAGE, OPERATOR_IMAGE, ImagesUnavailable, image_tar

    try:
        tars = [image_tar(OPERATOR_IMAGE), image_tar(CONVERTER_IMAGE)]
    except ImagesUnavailable as err:
        unavailable(f"{err}; `make test IMAGES=0` leaves these tests out")
    assert real_node_cluster.node is not None
    for tar in tars:
        real_node_cluster.node.import_image(tar)
    return real_node_cluster


@pytest.fixture
def namespace(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    # The test's name in the namespace makes a leftover or a log line easy to trace.
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = kube_cluster.create_namespace(prefix=f"{slug}-" if slug else "t-")
    yield name
    # Not waiting: the namespace controller finishes the deletion while the
    # next test runs, and the whole cluster goes at the end of the session.
    kube_cluster.delete_namespace(name)
