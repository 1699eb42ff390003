"""The Storage interface both backends (GCS, local disk) implement, and what they share."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

from tflite_operator.api.errors import OutputExistsError, SpecError, StorageError
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


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def too_large_error(what: Location, total: int, max_bytes: int, field: str) -> StorageError:
    # spec.source.maxBytes is the only size limit in the spec; callers use it for datasets too.
    return StorageError(
        f"{what} holds {total} bytes ({human_bytes(total)}), more than the limit of {max_bytes} "
        f"bytes ({human_bytes(max_bytes)}) set by spec.source.maxBytes; raise "
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
    ) -> dict[str, str]:
        """Write files, then last, under output_uri so no reader sees half an output.

        Refuses (OutputExistsError, nothing written) when any name already exists and
        overwrite is False. last (the reports) is written only after every file succeeded; with
        overwrite, existing last names are removed first so an old report never describes new
        files. On any failure what this call wrote is removed again. Returns name -> URI.
        """

    def check_absent(self, output_uri: str | Location, names: list[str]) -> None:
        """Raise OutputExistsError (listing them) if any of names exists under output_uri.

        For refusing early, before minutes of conversion; publish() checks again, atomically.
        """
        loc = self._location(output_uri)
        for name in names:
            child(loc, name)  # SpecError for unsafe names
        if existing := self._existing(loc, names):
            raise outputs_exist_error(loc, list(existing))

    def uri_of(self, output_uri: str | Location, name: str) -> str:
        """The URI publish() will return for name (for reports written before publishing)."""
        return display(child(self._location(output_uri), name))

    @abc.abstractmethod
    def _existing(self, loc: Location, names: list[str]) -> dict[str, int]:
        """The names that exist under loc, each with its GCS generation (0 for local files)."""

    @abc.abstractmethod
    def delete_prefix(self, uri_prefix: str | Location, names: list[str] | None = None) -> int:
        """Delete names under uri_prefix (everything under it when names is None).

        Returns how many were deleted; 0 when nothing was there (also for a missing bucket or
        directory), so a finalizer can call it again safely.
        """
