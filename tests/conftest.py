"""Shared fixtures: the real control plane comes from tests/controlplane."""

pytest_plugins = ["controlplane.fixtures"]
