"""Shared fixtures: the real control plane (tests/controlplane), fake-gcs-server, and the
small models and CRD that the operator and shipping tests both use."""

pytest_plugins = ["controlplane.fixtures", "gcs_server", "shared_fixtures"]
