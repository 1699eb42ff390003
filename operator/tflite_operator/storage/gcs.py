"""Google Cloud Storage backend: GCSStorage (fetch, publish, list, delete) over the shared
client (gcs_client.py), with errors that say the cause and the fix (gcs_errors.py).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import storage
from google.cloud.storage import transfer_manager
from google.cloud.storage.retry import DEFAULT_RETRY

from tflite_operator.api.errors import (
    ConversionError,
    SourceNotFoundError,
    SpecError,
    StorageError,
)
from tflite_operator.storage import gcs_publish, gcs_versions
from tflite_operator.storage.base import Payload, Progress, Storage, too_large_error
from tflite_operator.storage.gcs_client import default_client
from tflite_operator.storage.gcs_errors import map_gcs_error
from tflite_operator.storage.ownership import ObjectInfo, Owner
from tflite_operator.storage.uris import Location, relative_name_problem


class _CountingWriter:
    """A file wrapper that reports bytes written, for fetch()'s progress callback."""

    def __init__(self, raw: io.BufferedWriter, count: Callable[[int], None]) -> None:
        self._raw = raw
        self._count = count

    def write(self, data: bytes) -> int:
        n = self._raw.write(data)
        self._count(n)
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        # The client rewinds to 0 when the server transcodes; progress restarts with it.
        pos = self._raw.tell()
        result = self._raw.seek(offset, whence)
        self._count(result - pos)
        return result

    def tell(self) -> int:
        return self._raw.tell()

    def flush(self) -> None:
        self._raw.flush()


class GCSStorage(Storage):
    scheme = "gs"

    def __init__(
        self,
        client: storage.Client | None = None,
        *,
        max_workers: int = 4,
        retry_timeout: float = 120.0,
    ) -> None:
        """client: None means default_client(), made on first use (so no ADC lookup before).

        max_workers: parallel transfers (threads; the Job's CPU is small, the work is I/O).
        retry_timeout: total seconds transient errors (5xx, 429, connection resets) are retried.
        """
        self._client = client
        self.max_workers = max_workers
        self.retry: Retry = DEFAULT_RETRY.with_timeout(retry_timeout)

    @property
    def client(self) -> storage.Client:
        # Looked up on each use, so a change of STORAGE_EMULATOR_HOST (tests) takes effect.
        return self._client or default_client()

    def _error(
        self, exc: BaseException, loc: Location, permission: str, doing: str, **kw: Any
    ) -> ConversionError:
        kw.setdefault("field", "spec.output.uri")
        return map_gcs_error(
            exc, loc=loc, permission=permission, doing=doing, client=self.client, **kw
        )

    # -- reading ----------------------------------------------------------------------------

    def fetch(
        self,
        uri: str | Location,
        dest: Path,
        max_bytes: int,
        progress: Progress | None = None,
        *,
        field: str = "spec.source.uri",
    ) -> Path:
        loc = self._location(uri)
        err = {"field": field, "source": True}
        bucket = self.client.bucket(loc.bucket)
        single = None
        if loc.key:
            try:
                single = bucket.get_blob(loc.key, retry=self.retry)
            except Exception as exc:
                raise self._error(exc, loc, "storage.objects.get", "reading", **err) from exc
        if single is not None:
            # An object wins over a same-named prefix: gs://b/m.keras means that file.
            plan = [(single, dest / loc.name)]
            result = dest / loc.name
        else:
            try:
                blobs = list(
                    self.client.list_blobs(loc.bucket, prefix=loc.prefix or None, retry=self.retry)
                )
            except Exception as exc:
                raise self._error(exc, loc, "storage.objects.list", "listing", **err) from exc
            plan = []
            for blob in blobs:
                rel = blob.name[len(loc.prefix) :]
                if (not rel or rel.endswith("/")) and not blob.size:
                    continue  # a "folder" placeholder made by the Cloud Console: no content
                if problem := relative_name_problem(rel):
                    raise StorageError(
                        f"refusing to download gs://{loc.bucket}/{blob.name}: its name below "
                        f"{loc} {problem}, so it cannot be written safely under {dest}; "
                        f"rename or delete that object, or point {field} elsewhere"
                    )
                plan.append((blob, dest / rel))
            result = dest
        if not plan:
            raise SourceNotFoundError(f"no object or prefix at {loc}; check {field}")
        total = sum(blob.size or 0 for blob, _ in plan)
        if total > max_bytes:
            raise too_large_error(loc, total, max_bytes, field)
        self._download(loc, plan, dest, total, progress, field)
        return result

    def _download(
        self,
        loc: Location,
        plan: list[tuple[storage.Blob, Path]],
        dest: Path,
        total: int,
        progress: Progress | None,
        field: str,
    ) -> None:
        created_dest = not dest.exists()
        done = 0
        lock = threading.Lock()

        def count(n: int) -> None:
            nonlocal done
            with lock:
                done += n
                if progress is not None:
                    progress(done, total)

        files: list[io.BufferedWriter] = []
        pairs = []
        try:
            dest_real = dest.resolve()
            for blob, target in plan:
                # Belt and braces after relative_name_problem: the target must stay in dest.
                if not target.resolve().is_relative_to(dest_real):
                    raise StorageError(f"refusing to write {target}: it is outside {dest}")
                target.parent.mkdir(parents=True, exist_ok=True)
                # Pin the generation we listed (and sized): a concurrent overwrite then fails
                # the download instead of mixing files of two model versions.
                pinned = blob.bucket.blob(blob.name, generation=blob.generation)
                fh = target.open("wb")
                files.append(fh)
                pairs.append((pinned, _CountingWriter(fh, count)))
            results = transfer_manager.download_many(
                pairs,
                download_kwargs={"retry": self.retry},
                worker_type=transfer_manager.THREAD,
                max_workers=max(1, min(self.max_workers, len(pairs))),
                raise_exception=False,
            )
            for (blob, _), outcome in zip(pairs, results, strict=True):
                if isinstance(outcome, BaseException):
                    obj = Location(scheme="gs", bucket=loc.bucket, key=blob.name)
                    if isinstance(outcome, gexc.NotFound):
                        raise SourceNotFoundError(
                            f"{obj} disappeared or was replaced while downloading {loc}; "
                            f"retry once the upload to {field} has finished"
                        ) from outcome
                    raise self._error(
                        outcome, obj, "storage.objects.get", "downloading", field=field, source=True
                    ) from outcome
        except BaseException as exc:
            for fh in files:
                fh.close()
            if created_dest:
                shutil.rmtree(dest, ignore_errors=True)
            else:
                for _, target in plan:
                    with contextlib.suppress(OSError):
                        target.unlink()
            if isinstance(exc, Exception) and not isinstance(exc, ConversionError):
                # e.g. a local write error (disk full, a file where a directory must go).
                raise self._error(
                    exc, loc, "storage.objects.get", "downloading", field=field, source=True
                ) from exc
            raise
        for fh in files:
            fh.close()

    def exists(self, uri: str | Location) -> bool:
        loc = self._location(uri)
        try:
            if loc.key and self.client.bucket(loc.bucket).get_blob(loc.key, retry=self.retry):
                return True
            found = self.client.list_blobs(
                loc.bucket, prefix=loc.prefix or None, max_results=1, retry=self.retry
            )
            return any(True for _ in found)
        except gexc.NotFound:
            return False  # no bucket: nothing there
        except Exception as exc:
            raise self._error(exc, loc, "storage.objects.list", "checking") from exc

    def list_names(self, uri_prefix: str | Location) -> list[str]:
        loc = self._location(uri_prefix)
        try:
            blobs = self.client.list_blobs(loc.bucket, prefix=loc.prefix or None, retry=self.retry)
            names = [b.name[len(loc.prefix) :] for b in blobs]
        except Exception as exc:
            raise self._error(exc, loc, "storage.objects.list", "listing") from exc
        return sorted(n for n in names if n and not n.endswith("/"))

    def versions(self, uri: str | Location, *, field: str = "spec.source.uri") -> dict[str, str]:
        return gcs_versions.versions(self, self._location(uri), field)

    # -- writing ----------------------------------------------------------------------------

    def publish(
        self,
        output_uri: str | Location,
        files: Mapping[str, Payload],
        last: Mapping[str, Payload],
        overwrite: bool,
        owner: Owner | None = None,
    ) -> dict[str, str]:
        # Staging, promotion and rollback live in gcs_publish.py.
        return gcs_publish.publish(self, self._location(output_uri), files, last, overwrite, owner)

    def delete_owned(
        self, output_uri: str | Location, names: list[str], uid: str
    ) -> tuple[list[str], list[str]]:
        return gcs_publish.delete_owned(self, self._location(output_uri), names, uid)

    def read_bytes(self, uri: str | Location, info: ObjectInfo | None = None) -> bytes:
        loc = self._location(uri)
        blob = self.client.bucket(loc.bucket).blob(
            loc.key, generation=info.generation if info and info.generation else None
        )
        try:
            return blob.download_as_bytes(retry=self.retry)
        except gexc.NotFound as exc:
            raise StorageError(
                f"{loc} was deleted or replaced while reading it; make sure only one "
                "conversion writes to spec.output.uri"
            ) from exc
        except Exception as exc:
            raise self._error(exc, loc, "storage.objects.get", "reading") from exc

    def _existing(self, loc: Location, names: list[str]) -> dict[str, ObjectInfo]:
        # get per name rather than a listing: the folder may hold many unrelated objects.
        # A missing bucket reads as "nothing exists"; publish's first upload then reports it.
        bucket = self.client.bucket(loc.bucket)
        existing: dict[str, ObjectInfo] = {}
        for name in names:
            obj = Location(scheme="gs", bucket=loc.bucket, key=f"{loc.prefix}{name}")
            try:
                blob = bucket.get_blob(obj.key, retry=self.retry)
            except Exception as exc:
                raise self._error(exc, obj, "storage.objects.get", "checking") from exc
            if blob is not None:
                existing[name] = ObjectInfo(int(blob.generation or 0), dict(blob.metadata or {}))
        return existing

    def delete_prefix(self, uri_prefix: str | Location, names: list[str] | None = None) -> int:
        loc = self._location(uri_prefix)
        bucket = self.client.bucket(loc.bucket)
        if names is None:
            if not loc.key:
                raise SpecError(
                    f"refusing to delete every object in bucket {loc.bucket}; give an output "
                    "folder (gs://bucket/path) or the names to delete"
                )
            try:
                keys = [
                    b.name
                    for b in self.client.list_blobs(loc.bucket, prefix=loc.prefix, retry=self.retry)
                ]
            except gexc.NotFound:
                return 0
            except Exception as exc:
                raise self._error(exc, loc, "storage.objects.list", "listing") from exc
        else:
            for name in names:
                if problem := relative_name_problem(name):
                    raise SpecError(f"name {name!r} under {loc} {problem}")
            keys = [f"{loc.prefix}{name}" for name in names]
        deleted = 0
        for k in keys:
            try:
                bucket.blob(k).delete(retry=self.retry)
                deleted += 1
            except gexc.NotFound:
                pass  # already gone (or no bucket): the goal is reached
            except Exception as exc:
                obj = Location(scheme="gs", bucket=loc.bucket, key=k)
                raise self._error(exc, obj, "storage.objects.delete", "deleting") from exc
        return deleted
