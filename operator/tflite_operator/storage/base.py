"""The Storage interface both backends (GCS, local disk) implement, and what they share."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

from tflite_operator.api.errors import OutputExistsError, SpecError, StorageError
from tflite_operator.api.units import human_size
from tflite_operator.storage.ownership import ObjectInfo, Owner, complete_set, foreign
from tflite_operator.storage.uris import Location, child, display, parse_uri, relative_name_problem

# What publish() accepts for one output: the bytes, or a local file to copy/upload.
Payload = bytes | Path
# progress(done_bytes, total_bytes); may be called from worker threads, never concurrently.
Progress = Callable[[int, int], None]

CONTENT_TYPES = {
    ".tflite": "application/octet-stream",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


def content_type_for(name: str) -> str:
    """The Content-Type to store name with, so browsers render report.html instead of saving it."""
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    return CONTENT_TYPES.get(suffix, "application/octet-stream")


def payload_size(payload: Payload) -> int:
    return len(payload) if isinstance(payload, bytes) else payload.stat().st_size


def too_large_error(what: Location, total: int, max_bytes: int, field: str) -> StorageError:
    # spec.source.maxBytes is the only size limit in the spec; callers use it for datasets too.
    return StorageError(
        f"{what} holds {total} bytes ({human_size(total)}), more than the limit of {max_bytes} "
        f"bytes ({human_size(max_bytes)}) set by spec.source.maxBytes; raise "
        f"spec.source.maxBytes if it really is this large, or point {field} at a smaller one"
    )


def outputs_exist_error(where: Location, names: list[str]) -> OutputExistsError:
    return OutputExistsError(
        f"outputs already exist at {where}: {', '.join(sorted(names))}; set "
        "spec.output.overwrite: true to replace them, or choose a new spec.output.uri"
    )


def publish_plan(files: Mapping[str, Payload], last: Mapping[str, Payload]) -> list[str]:
    """Check publish() arguments; returns every name, files first then last."""
    both = sorted(set(files) & set(last))
    if both:
        raise SpecError(f"publish: {', '.join(both)} given both as a file and as a last file")
    names = [*files, *last]
    for name in names:
        if problem := relative_name_problem(name):
            raise SpecError(f"output name {name!r} {problem}; use a plain relative name")
    for name, payload in [*files.items(), *last.items()]:
        if not isinstance(payload, bytes | Path):
            raise TypeError(f"payload for {name!r} must be bytes or a Path, not {type(payload)}")
    return names


class Storage(abc.ABC):
    """One backend, picked by URI scheme with storage_for(). All URIs are str or Location.

    Errors are ConversionErrors whose message names the cause and the fix:
    SourceNotFoundError, StorageError, OutputExistsError (a StorageError), SpecError.
    """

    scheme: ClassVar[str]

    def _location(self, uri: str | Location) -> Location:
        loc = uri if isinstance(uri, Location) else parse_uri(uri)
        if loc.scheme != self.scheme:
            raise SpecError(f"{loc} is not a {self.scheme} URI ({type(self).__name__})")
        return loc

    @abc.abstractmethod
    def fetch(
        self,
        uri: str | Location,
        dest: Path,
        max_bytes: int,
        progress: Progress | None = None,
        *,
        field: str = "spec.source.uri",
    ) -> Path:
        """Make the object or "directory" at uri available locally; returns its local path.

        GCS: an object (gs://b/m.keras) is downloaded to dest/<its name>; otherwise every
        object under the prefix (gs://b/sm -> saved_model.pb, variables/...) is downloaded into
        dest itself, and dest is returned. Local: the path itself, nothing copied.
        field names the spec field the URI came from, for messages.
        """

    @abc.abstractmethod
    def exists(self, uri: str | Location) -> bool:
        """True when an object/file, or anything under the prefix/directory, is at uri."""

    @abc.abstractmethod
    def list_names(self, uri_prefix: str | Location) -> list[str]:
        """Sorted names of the objects/files under uri_prefix, relative to it ([] if none)."""

    @abc.abstractmethod
    def publish(
        self,
        output_uri: str | Location,
        files: Mapping[str, Payload],
        last: Mapping[str, Payload],
        overwrite: bool,
        owner: Owner | None = None,
    ) -> dict[str, str]:
        """Write files, then last, under output_uri so no reader sees half an output.

        Refuses (OutputExistsError, nothing written) when a name already exists that is not
        owner's (same uid and generation, see ownership.py) and overwrite is False. last (the
        reports) is written only after every file succeeded. On any failure the output holds
        what it held before. Returns name -> URI.
        """

    def check_absent(self, output_uri: str | Location, names: list[str]) -> None:
        """Raise OutputExistsError (listing them) if any of names exists under output_uri.

        For refusing early, before minutes of conversion; publish() checks again, atomically.
        """
        self.check_publishable(output_uri, names, overwrite=False, owner=None)

    def check_publishable(
        self, output_uri: str | Location, names: list[str], overwrite: bool, owner: Owner | None
    ) -> dict[str, ObjectInfo]:
        """check_absent, except that owner's own objects (a retry's) never count as taken.

        Returns what exists, for published_by(). publish() checks again, atomically.
        """
        loc = self._location(output_uri)
        for name in names:
            child(loc, name)  # SpecError for unsafe names
        existing = self._existing(loc, names)
        if not overwrite and (taken := foreign(existing, owner)):
            raise outputs_exist_error(loc, taken)
        return existing

    def published_by(
        self,
        output_uri: str | Location,
        existing: Mapping[str, ObjectInfo],
        owner: Owner | None,
        report: str,
    ) -> bytes | None:
        """The report's bytes when owner already published a complete set here, else None."""
        if not complete_set(existing, owner, report):
            return None
        return self.read_bytes(child(self._location(output_uri), report), existing[report])

    def stat(self, output_uri: str | Location, names: list[str]) -> dict[str, ObjectInfo]:
        """The names that exist under output_uri, each with its GCS generation and tags."""
        loc = self._location(output_uri)
        for name in names:
            child(loc, name)  # SpecError for unsafe names
        return self._existing(loc, names)

    @abc.abstractmethod
    def versions(self, uri: str | Location, *, field: str = "spec.source.uri") -> dict[str, str]:
        """What identifies the bytes fetch() would read at uri now: relative name -> version.

        GCS: the object's generation, for the object at uri or every object under the prefix
        (the same choice fetch() makes). Local: "<size>:<mtime_ns>" of each file. {} when
        nothing is there. A rewrite of any object or file changes its version. field names
        the spec field the URI came from, for messages.
        """

    @abc.abstractmethod
    def read_bytes(self, uri: str | Location, info: ObjectInfo | None = None) -> bytes:
        """An object's/file's bytes; with info, exactly that GCS generation of it."""

    @abc.abstractmethod
    def delete_owned(
        self, output_uri: str | Location, names: list[str], uid: str
    ) -> tuple[list[str], list[str]]:
        """Delete the names under output_uri that the resource with uid wrote.

        Returns (deleted, kept): kept are there but someone else's (or rewritten since they
        were read). Missing names are in neither, so a finalizer can call it again safely.
        """

    def uri_of(self, output_uri: str | Location, name: str) -> str:
        """The URI publish() will return for name (for reports written before publishing)."""
        return display(child(self._location(output_uri), name))

    @abc.abstractmethod
    def _existing(self, loc: Location, names: list[str]) -> dict[str, ObjectInfo]:
        """The names that exist under loc, each with its GCS generation and tags."""

    @abc.abstractmethod
    def delete_prefix(self, uri_prefix: str | Location, names: list[str] | None = None) -> int:
        """Delete names under uri_prefix (everything under it when names is None).

        Returns how many were deleted; 0 when nothing was there (also for a missing bucket or
        directory), so a finalizer can call it again safely.
        """
