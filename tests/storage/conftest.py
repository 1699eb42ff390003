"""Storage tests: the real google-cloud-storage client against a real fake-gcs-server."""

from __future__ import annotations

import pytest

from gcs_server import FakeGCS


@pytest.fixture
def bucket(fake_gcs: FakeGCS) -> str:
    """A fresh, empty bucket on the shared server, so tests cannot see each other's objects."""
    return fake_gcs.create_bucket().name
