"""The conditional object writes publishing is built from: server-side copies, a group of
uploads in parallel, and deleting the generations a call wrote. Each is pinned to the
generation it expects, so an object someone else wrote meanwhile is never clobbered.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from google.api_core import exceptions as gexc
from google.cloud import storage

from tflite_operator.api.errors import OutputExistsError, StorageError
from tflite_operator.storage.base import Payload, content_type_for
from tflite_operator.storage.uris import Location

if TYPE_CHECKING:
    from tflite_operator.storage.gcs import GCSStorage


def copy_object(
    store: GCSStorage,
    bucket: storage.Bucket,
    loc: Location,
    src_key: str,
    src_generation: int | None,
    dst_key: str,
    dst_generation: int,
) -> int:
    """Server-side copy (rewrite, which handles objects of any size); returns the new generation.

    dst_generation: the generation the destination must still have (0: must not exist);
    src_generation: the one the source must still have. Metadata (tags) and content type
    travel with the object.
    """
    src = bucket.blob(src_key)
    dst = bucket.blob(dst_key)
    token: str | None = None
    try:
        while True:
            token, _done, _total = dst.rewrite(
                src,
                token=token,
                if_generation_match=dst_generation,
                if_source_generation_match=src_generation,
                retry=store.retry,
            )
            if token is None:
                return int(dst.generation or 0)
    except gexc.PreconditionFailed as exc:
        raise OutputExistsError(
            f"gs://{loc.bucket}/{dst_key} or gs://{loc.bucket}/{src_key} was replaced by "
            f"someone else while publishing to {loc}; make sure only one conversion writes to "
            "spec.output.uri"
        ) from exc
    except gexc.NotFound as exc:
        raise OutputExistsError(
            f"gs://{loc.bucket}/{src_key} was deleted by someone else while publishing to "
            f"{loc}; make sure only one conversion writes to spec.output.uri"
        ) from exc


def upload_group(
    store: GCSStorage,
    bucket: storage.Bucket,
    loc: Location,
    key: Mapping[str, str],
    group: Mapping[str, Payload],
    meta: Mapping[str, Mapping[str, str]],
    created: dict[str, int],
) -> None:
    """Upload group in parallel to names that must not exist yet; raise the first failure once
    all have finished. created gets key -> generation of each upload that succeeded.

    Each upload carries if_generation_match=0, so an object written concurrently is never
    clobbered. transfer_manager.upload_many would send bytes payloads as size-less resumable
    uploads; an explicit size keeps small files on one multipart request, and per-object
    metadata is set on each blob.
    """
    if not group:
        return

    def upload(name: str) -> int:
        blob = bucket.blob(key[name])
        blob.metadata = dict(meta[name])
        payload = group[name]
        obj = Location(scheme="gs", bucket=loc.bucket, key=key[name])
        stream: io.IOBase
        if isinstance(payload, bytes):
            stream, size = io.BytesIO(payload), len(payload)
        else:
            try:
                stream = payload.open("rb")
                size = os.fstat(stream.fileno()).st_size
            except OSError as exc:
                raise StorageError(
                    f"cannot read {payload} to upload it as {obj}: {exc.strerror or exc}"
                ) from exc
        try:
            with stream:
                blob.upload_from_file(
                    stream,
                    size=size,
                    content_type=content_type_for(name),
                    if_generation_match=0,
                    retry=store.retry,
                )
        except gexc.PreconditionFailed as exc:
            # Absent at our check, present now: another writer is publishing here too.
            raise OutputExistsError(
                f"{obj} was created by another writer while this conversion was publishing "
                f"to {loc}, so nothing of this run was kept; make sure only one conversion "
                "writes to spec.output.uri (or set spec.output.overwrite: true)"
            ) from exc
        except Exception as exc:
            raise store._error(exc, obj, "storage.objects.create", "uploading") from exc
        return int(blob.generation or 0)

    first_error: BaseException | None = None
    workers = max(1, min(store.max_workers, len(group)))
    with concurrent.futures.ThreadPoolExecutor(workers, "tflite-upload") as pool:
        futures = {pool.submit(upload, name): name for name in group}
        for future in concurrent.futures.as_completed(futures):
            try:
                created[key[futures[future]]] = future.result()
            except concurrent.futures.CancelledError:
                pass
            except BaseException as exc:
                if first_error is None:
                    first_error = exc
                    for other in futures:
                        other.cancel()  # not-yet-started uploads: no point any more
    if first_error is not None:
        raise first_error


def delete_generations(
    store: GCSStorage, bucket: storage.Bucket, created: Mapping[str, int]
) -> list[str]:
    """Delete the generations this call wrote; returns the URIs that could not be deleted."""
    leftovers = []
    for key, generation in created.items():
        try:
            # Only our generation: if someone replaced it since, theirs stays.
            bucket.blob(key).delete(if_generation_match=generation or None, retry=store.retry)
        except (gexc.NotFound, gexc.PreconditionFailed):
            pass
        except Exception:
            leftovers.append(f"gs://{bucket.name}/{key}")
    return leftovers
