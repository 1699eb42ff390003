"""Pytest fixtures for the real control plane; tests/conftest.py loads them as a plugin.

    kube_cluster        session: etcd + kube-apiserver + kube-controller-manager
                        + the kubelet stand-in, a KubeCluster
    controller_manager  the same KubeCluster, but skips (fails under CI=true)
                        when there is no kube-controller-manager (envtest assets)
    kubelet             the KubeletStandin of kube_cluster
    namespace           a fresh namespace per test, deleted afterwards
    real_node_cluster   session: another control plane, with kube-scheduler and a
                        real node (kubelet + containerd + CNI, node.py) instead of
                        the stand-in; the probe test image is imported. Skips
                        (fails under CI=true) when the runtime pieces are missing

The fixtures never build: `bash tests/controlplane/build.sh` (or the Makefile)
does, before pytest. Without binaries the tests skip with instructions, except
under CI=true, where a missing control plane fails the run instead of hiding
behind a skip.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import NoReturn

import pytest

from controlplane.cluster import ControlPlaneUnavailable, KubeCluster, locate_bin_dir
from controlplane.images import ImageBuildUnavailable, build
from controlplane.kubelet_standin import KubeletStandin
from controlplane.node import HOW_TO_INSTALL, missing_pieces


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(message: str) -> NoReturn:
    """Skip, or fail under CI=true: CI must never go green by skipping these tests."""
    if _in_ci():
        pytest.fail(f"CI=true and the control plane is unavailable: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    try:
        bin_dir = locate_bin_dir()
    except ControlPlaneUnavailable as exc:
        unavailable(str(exc))
    cluster = KubeCluster.start(bin_dir)
    try:
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


@pytest.fixture
def kubelet(kube_cluster: KubeCluster) -> KubeletStandin:
    assert kube_cluster.kubelet is not None
    return kube_cluster.kubelet


@pytest.fixture
def namespace(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    # The test's name in the namespace makes a leftover or a log line easy to trace.
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = kube_cluster.create_namespace(prefix=f"{slug}-" if slug else "t-")
    yield name
    # Not waiting: the namespace controller finishes the deletion while the
    # next test runs, and the whole cluster goes at the end of the session.
    kube_cluster.delete_namespace(name)


@pytest.fixture(scope="session")
def real_node_cluster() -> Iterator[KubeCluster]:
    try:
        bin_dir = locate_bin_dir()
    except ControlPlaneUnavailable as exc:
        unavailable(str(exc))
    if not (bin_dir / "kubelet").exists() or not (bin_dir / "kube-scheduler").exists():
        unavailable(
            f"no kubelet or kube-scheduler in {bin_dir} (envtest ships neither): build them with "
            "`bash tests/controlplane/build.sh` and unset KUBEBUILDER_ASSETS, or set "
            "TEST_ASSET_KUBELET and TEST_ASSET_KUBE_SCHEDULER"
        )
    if missing := missing_pieces():
        unavailable(f"no real node possible, missing: {', '.join(missing)}; {HOW_TO_INSTALL}")
    try:
        images = build()
    except ImageBuildUnavailable as exc:
        unavailable(str(exc))
    cluster = KubeCluster.start(bin_dir, real_node=True)
    try:
        assert cluster.node is not None
        for tar in images.values():
            cluster.node.import_image(tar)
        yield cluster
    finally:
        cluster.stop()
