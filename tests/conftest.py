"""Shared fixtures: the real control plane (tests/controlplane), fake-gcs-server, and the
small models and CRD that the operator and shipping tests both use."""

import pytest

pytest_plugins = ["controlplane.fixtures", "gcs_server", "shared_fixtures"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that runs the product's images on the node is an `images` test, so
    `-m 'not images'` (make test IMAGES=0) leaves it out with the others. tryfirst: before
    -m deselects."""
    for item in items:
        if "product_images" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.images)
