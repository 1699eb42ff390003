"""Storage tests: the real google-cloud-storage client against a real fake-gcs-server."""

from __future__ import annotations

import pytest

from gcs_server import FakeGCS, fake_gcs  # noqa: F401  (fake_gcs is a fixture, used by name)


@pytest.fixture
def bucket(fake_gcs: FakeGCS) -> str:  # noqa: F811  (the fixture above, not a redefinition)
    """A fresh, empty bucket on the shared server, so tests cannot see each other's objects."""
    return fake_gcs.create_bucket().name
