"""Which generation of each source object is on gs:// now, without downloading anything.

Kept apart from gcs.py (already long). The choice of objects mirrors GCSStorage.fetch(): the
object at the URI itself when there is one, otherwise every object under the prefix, minus
the empty "folder" placeholders the Cloud Console makes. Any rewrite of an object, even with
the same bytes, gives it a new generation, so equal versions mean the very same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tflite_operator.storage.uris import Location

if TYPE_CHECKING:
    from tflite_operator.storage.gcs import GCSStorage


def versions(store: GCSStorage, loc: Location, field: str) -> dict[str, str]:
    """Relative name -> generation of what fetch(loc) would download; {} when nothing is there."""
    from google.api_core import exceptions as gexc

    client = store.client
    try:
        if loc.key:
            single = client.bucket(loc.bucket).get_blob(loc.key, retry=store.retry)
            if single is not None:
                return {loc.name: str(single.generation)}
        blobs = list(client.list_blobs(loc.bucket, prefix=loc.prefix or None, retry=store.retry))
    except gexc.NotFound:
        return {}  # no bucket: fetch() reports it with the fix
    except Exception as exc:
        raise store._error(
            exc, loc, "storage.objects.list", "listing", field=field, source=True
        ) from exc
    out = {}
    for blob in blobs:
        rel = blob.name[len(loc.prefix) :]
        if (not rel or rel.endswith("/")) and not blob.size:
            continue
        out[rel] = str(blob.generation)
    return out
