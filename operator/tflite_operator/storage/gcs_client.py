"""The google-cloud-storage client every GCSStorage shares.

Credentials: google.cloud.storage.Client() uses Application Default Credentials, which in a
cluster means Workload Identity (the converter Job's serviceAccountName, bound to a Google
service account) and locally `gcloud auth application-default login` or
GOOGLE_APPLICATION_CREDENTIALS. When STORAGE_EMULATOR_HOST is set (fake-gcs-server in tests)
the client talks to that host with anonymous credentials and project "test" (or
GOOGLE_CLOUD_PROJECT), so no ADC lookup (and no metadata-server timeout) happens.

One client per emulator setting is shared by every GCSStorage (it pools HTTP connections and
is safe to use from the transfer threads, which is how google-cloud-storage's own
transfer_manager uses it).
"""

from __future__ import annotations

import os
import threading

from google.auth import exceptions as auth_exc
from google.cloud import storage

from tflite_operator.api.errors import StorageError

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
EMULATOR_PROJECT = "test"

_clients: dict[str | None, storage.Client] = {}
_clients_lock = threading.Lock()


def default_client() -> storage.Client:
    """The shared client for the current STORAGE_EMULATOR_HOST (read on each call)."""
    emulator = os.environ.get(EMULATOR_ENV) or None
    with _clients_lock:
        client = _clients.get(emulator)
        if client is None:
            client = _clients[emulator] = _make_client(emulator)
        return client


def _make_client(emulator: str | None) -> storage.Client:
    from google.auth.credentials import AnonymousCredentials

    if emulator:
        project = os.environ.get("GOOGLE_CLOUD_PROJECT") or EMULATOR_PROJECT
        return storage.Client(project=project, credentials=AnonymousCredentials())
    try:
        # project=None: we never create buckets, so no project has to be discovered.
        return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT") or None)
    except auth_exc.DefaultCredentialsError as exc:
        raise StorageError(
            f"no Google Cloud credentials found ({exc}); in a cluster set the converter Job's "
            "serviceAccountName to a Kubernetes service account bound to a Google service "
            "account (Workload Identity); elsewhere run `gcloud auth application-default "
            "login` or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from exc
