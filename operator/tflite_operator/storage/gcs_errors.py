"""What a failed Cloud Storage call means, and the fix: google-cloud-storage, api-core and auth
exceptions as our errors (the IAM role to grant, the credentials to set, the host to reach).
"""

from __future__ import annotations

import contextlib
import os

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud import storage

from tflite_operator.api.errors import (
    ConversionError,
    OutputExistsError,
    SourceNotFoundError,
    StorageError,
)
from tflite_operator.storage.gcs_client import EMULATOR_ENV
from tflite_operator.storage.uris import Location

# The permission each kind of call needs, and the smallest predefined role that grants it.
ROLES = {
    "storage.objects.get": "roles/storage.objectViewer",
    "storage.objects.list": "roles/storage.objectViewer",
    "storage.objects.create": "roles/storage.objectCreator",
    "storage.objects.delete": "roles/storage.objectUser",
}


def _principal(client: storage.Client | None) -> str:
    email = getattr(getattr(client, "_credentials", None), "service_account_email", None)
    if email and email != "default":
        return email
    return "the converter's Google identity (the Job's Workload Identity service account or ADC)"


def _endpoint(client: storage.Client | None) -> str:
    if client is not None:
        with contextlib.suppress(Exception):
            return str(client.api_endpoint)
    return os.environ.get(EMULATOR_ENV) or "https://storage.googleapis.com"


def map_gcs_error(
    exc: BaseException,
    *,
    loc: Location,
    permission: str,
    doing: str,
    field: str,
    source: bool = False,
    client: storage.Client | None = None,
) -> ConversionError:
    """Turn a google-cloud-storage/api-core/auth exception into our error with cause and fix.

    permission: the IAM permission the failed call needed (storage.objects.get, ...).
    doing: what we were doing, for the message ("reading", "uploading report.json to").
    field: the spec field the URI came from. source: a missing bucket is SourceNotFoundError.
    """
    if isinstance(exc, ConversionError):
        return exc
    if isinstance(exc, gexc.RetryError) and exc.cause is not None:
        # Retries ran out; the last attempt's failure is the one worth reporting.
        exc = exc.cause
    where = f"gs://{loc.bucket}"
    server_said = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, gexc.Forbidden):
        role = ROLES.get(permission, "roles/storage.objectUser")
        return StorageError(
            f"permission denied while {doing} {loc}: {_principal(client)} needs {permission} on "
            f"bucket {loc.bucket}. Grant it {role} on {where} (gcloud storage buckets "
            f"add-iam-policy-binding {where} --member=serviceAccount:GSA_EMAIL --role={role}); "
            "in a cluster also set the converter Job's serviceAccountName to the Kubernetes "
            "service account bound to that Google service account (Workload Identity). "
            f"Server said: {server_said}"
        )
    if isinstance(exc, gexc.Unauthorized):
        return StorageError(
            f"Cloud Storage rejected the credentials while {doing} {loc} (401): {server_said}; "
            "in a cluster set the converter Job's serviceAccountName to a Kubernetes service "
            "account with Workload Identity; elsewhere refresh ADC with `gcloud auth "
            "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
        )
    if isinstance(exc, gexc.NotFound):
        if source:
            # get_blob() answers None for a missing object, so a raised 404 is the bucket.
            return SourceNotFoundError(
                f"no object or prefix at {loc}: bucket {loc.bucket} does not exist; check {field}"
            )
        return StorageError(f"bucket {loc.bucket} does not exist; create it or fix {field}")
    if isinstance(exc, gexc.PreconditionFailed):
        return OutputExistsError(
            f"{loc} was written by someone else while {doing} it; set "
            "spec.output.overwrite: true to replace it, or choose a new spec.output.uri"
        )
    if isinstance(exc, gexc.GoogleAPICallError):
        return StorageError(
            f"Cloud Storage error while {doing} {loc}: HTTP {exc.code} {server_said}"
        )
    if isinstance(exc, auth_exc.DefaultCredentialsError | auth_exc.RefreshError):
        return StorageError(
            f"cannot get Google credentials while {doing} {loc}: {exc}; in a cluster set the "
            "converter Job's serviceAccountName for Workload Identity; elsewhere run `gcloud "
            "auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
        )
    if _is_transport_error(exc):
        host = _endpoint(client)
        if os.environ.get(EMULATOR_ENV):
            hint = (
                f"STORAGE_EMULATOR_HOST is set to {os.environ[EMULATOR_ENV]}: is the emulator "
                "running there? Unset it to use real Cloud Storage"
            )
        else:
            hint = (
                "check the pod's network egress, DNS and proxy settings (HTTPS_PROXY); "
                "set STORAGE_EMULATOR_HOST to use an emulator instead"
            )
        return StorageError(
            f"cannot reach Cloud Storage at {host} while {doing} {loc}: {exc}; {hint}"
        )
    if isinstance(exc, OSError):
        return StorageError(f"local I/O error while {doing} {loc}: {exc}")
    return StorageError(f"unexpected error while {doing} {loc}: {type(exc).__name__}: {exc}")


def _is_transport_error(exc: BaseException) -> bool:
    import requests

    return isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | auth_exc.TransportError
        | ConnectionError
        | TimeoutError,
    )
