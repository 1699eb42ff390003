"""Shared fixtures: the real control plane (tests/controlplane) and fake-gcs-server."""

pytest_plugins = ["controlplane.fixtures", "gcs_server"]
