"""Reading models and publishing outputs on Cloud Storage (gs://) or local disk.

    from tflite_operator.storage import storage_for
    store = storage_for(spec.source.uri)
    model_dir = store.fetch(spec.source.uri, workdir / "source", spec.source.max_bytes)
    storage_for(spec.output.uri).publish(spec.output.uri, files, last=reports, overwrite=False)

The GCS backend needs google-cloud-storage (the converter extra); it is imported only when a
gs:// URI is used, so the operator image without it can still parse URIs and use local paths.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from tflite_operator.api.errors import StorageError
from tflite_operator.storage.base import Payload, Progress, Storage, content_type_for
from tflite_operator.storage.local import LocalStorage
from tflite_operator.storage.uris import (
    Location,
    bucket_name_problem,
    child,
    display,
    parse_uri,
    relative_name_problem,
)

if TYPE_CHECKING:
    from tflite_operator.storage.gcs import GCSStorage

__all__ = [
    "LocalStorage",
    "Location",
    "Payload",
    "Progress",
    "Storage",
    "bucket_name_problem",
    "child",
    "content_type_for",
    "display",
    "parse_uri",
    "relative_name_problem",
    "storage_for",
]

_local = LocalStorage()
_gcs: GCSStorage | None = None
_gcs_lock = threading.Lock()


def storage_for(uri: str | Location) -> Storage:
    """The backend for uri's scheme. Raises SpecError for a malformed URI.

    The GCS backend is shared: one client (per STORAGE_EMULATOR_HOST value) for the process.
    """
    loc = uri if isinstance(uri, Location) else parse_uri(uri)
    if not loc.is_gcs:
        return _local
    global _gcs
    with _gcs_lock:
        if _gcs is None:
            try:
                from tflite_operator.storage.gcs import GCSStorage
            except ImportError as exc:
                raise StorageError(
                    f"{loc} needs google-cloud-storage, which is not installed ({exc}); "
                    "pip install 'tflite-operator[converter]'"
                ) from exc
            _gcs = GCSStorage()
        return _gcs
