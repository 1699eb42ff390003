"""Runs the images `make images` builds, with Docker alone (no cluster)."""
