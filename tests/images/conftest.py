"""Fixtures for the image tests: the Docker client and the images, found, never built.

`make images` builds them (starting a Docker engine if needed); without an engine or an image
these tests skip with the command to run, except under CI=true, where they fail: CI must not
go green by skipping them. `make test` deselects them unless IMAGES=1.
"""

from __future__ import annotations

from typing import NoReturn

import pytest

from controlplane.fixtures import _in_ci
from images.helpers import (
    CONVERTER_IMAGE,
    OPERATOR_IMAGE,
    ImagesUnavailable,
    docker_client,
    image_id,
)


def unavailable(message: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"CI=true and the images cannot run: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker() -> str:
    try:
        return docker_client()
    except ImagesUnavailable as exc:
        unavailable(f"{exc}\nTo get it: make images (starts an engine, builds both images)")


def _image(docker: str, image: str) -> str:
    try:
        image_id(docker, image)
    except ImagesUnavailable as exc:
        unavailable(str(exc))
    return image


@pytest.fixture(scope="session")
def converter_image(docker: str) -> str:
    return _image(docker, CONVERTER_IMAGE)


@pytest.fixture(scope="session")
def operator_image(docker: str) -> str:
    return _image(docker, OPERATOR_IMAGE)
