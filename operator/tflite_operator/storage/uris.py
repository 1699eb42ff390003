"""Parsing and joining storage URIs: gs://bucket/key or a local path (plain or file://).

Pure: no I/O, no cloud client, so the operator (which has no google-cloud-storage) can validate
URIs too. Everything wrong with a URI is a SpecError whose message names the URI and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from tflite_operator.api.errors import SpecError

# GCS limits object names to 1024 bytes of UTF-8.
MAX_OBJECT_NAME_BYTES = 1024
_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Location:
    """Where a model, a dataset or an output folder lives.

    scheme "gs": bucket and key are set (key "" is the bucket root; never a leading or trailing
    '/'), path is None. scheme "file": path is set, bucket and key are "".
    """

    scheme: Literal["gs", "file"]
    bucket: str = ""
    key: str = ""
    path: Path | None = None

    @property
    def is_gcs(self) -> bool:
        return self.scheme == "gs"

    @property
    def prefix(self) -> str:
        """The key as a listing prefix: "models/a/" (or "" at the bucket root)."""
        return f"{self.key}/" if self.key else ""

    @property
    def name(self) -> str:
        """The last segment (file or folder name); the bucket name at a bucket root."""
        if self.is_gcs:
            return self.key.rsplit("/", 1)[-1] if self.key else self.bucket
        assert self.path is not None
        return self.path.name

    @property
    def local_path(self) -> Path:
        if self.path is None:
            raise SpecError(f"{self} is not a local path")
        return self.path

    def __str__(self) -> str:
        return display(self)


def display(loc: Location) -> str:
    """The form to show users and to put in reports: gs://bucket/key, or the local path."""
    if loc.is_gcs:
        return f"gs://{loc.bucket}/{loc.key}" if loc.key else f"gs://{loc.bucket}"
    return str(loc.path)


def bucket_name_problem(name: str) -> str | None:
    """Why name is not a valid Cloud Storage bucket name, or None when it is.

    https://cloud.google.com/storage/docs/buckets#naming — checked here so a typo fails at
    admission with a clear message instead of as a 400 from the API inside a Job.
    """
    if not 3 <= len(name) <= 222:
        return "must be 3 to 63 characters (up to 222 when it contains dots)"
    if not _BUCKET_CHARS.match(name):
        return (
            "may only contain lowercase letters, digits, '-', '_' and '.', "
            "and must start and end with a letter or digit"
        )
    parts = name.split(".")
    if "." not in name and len(name) > 63:
        return "must be at most 63 characters unless it contains dots"
    if any(not part for part in parts):
        return "must not contain '..'"
    if any(len(part) > 63 for part in parts):
        return "has a dot-separated component longer than 63 characters"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "must not look like an IP address"
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        return "must not start with 'goog' or contain 'google'"
    return None


def relative_name_problem(name: str) -> str | None:
    """Why name is unsafe as a relative object/file name, or None when it is safe.

    Safe means it stays below the folder it is joined to, whatever that folder is: not
    absolute, no '.' or '..' segments, no empty segments ('a//b', trailing '/'), no control
    characters. Used for output names and for object names found under a fetched prefix (a
    bucket may hold '../x' or '/etc/x'; GCS allows such names).
    """
    if not name:
        return "is empty"
    if _CONTROL.search(name):
        return "contains a control character"
    if name.startswith("/"):
        return "is absolute (starts with '/')"
    segments = name.split("/")
    if any(s in (".", "..") for s in segments):
        return "contains a '.' or '..' segment"
    if any(not s for s in segments):
        return "contains an empty segment ('//' or a trailing '/')"
    if len(name.encode()) > MAX_OBJECT_NAME_BYTES:
        return f"is longer than {MAX_OBJECT_NAME_BYTES} bytes"
    return None


def parse_uri(uri: str) -> Location:
    """Parse gs://bucket[/key], file:///abs/path, or a plain local path.

    A single trailing '/' is allowed and dropped. gs keys may not contain '.', '..' or empty
    segments: GCS would store them literally, but local tools map them to other paths, so they
    are almost always a mistake. Local paths may contain '..': they name the user's own
    filesystem, and there is nothing to escape from.
    """
    if not isinstance(uri, str) or not uri:
        raise SpecError("empty URI; give gs://bucket/path or a local path")
    if _CONTROL.search(uri):
        raise SpecError(f"URI {uri!r} contains a control character; remove it")
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return Location(scheme="file", path=Path(uri))
    scheme = scheme.lower()
    if scheme == "gs":
        return _parse_gs(uri, rest)
    if scheme == "file":
        return _parse_file(uri)
    raise SpecError(
        f"unsupported URI scheme {scheme!r} in {uri!r}; use gs://bucket/path or a local path"
    )


def _parse_gs(uri: str, rest: str) -> Location:
    bucket, _, key = rest.partition("/")
    if problem := bucket_name_problem(bucket):
        raise SpecError(
            f"invalid bucket name {bucket!r} in {uri!r}: a bucket name {problem}; fix the URI"
        )
    if key.endswith("/"):
        key = key[:-1]
    if key and (problem := relative_name_problem(key)):
        raise SpecError(
            f"invalid object path in {uri!r}: it {problem}; write it as gs://{bucket}/a/b"
        )
    return Location(scheme="gs", bucket=bucket, key=key)


def _parse_file(uri: str) -> Location:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise SpecError(
            f"file URI {uri!r} needs an absolute path: file:///abs/path "
            "(or give the path without file://)"
        )
    if parts.query or parts.fragment:
        raise SpecError(f"file URI {uri!r} has a '?' or '#' part; percent-encode it as %3F/%23")
    return Location(scheme="file", path=Path(unquote(parts.path)))


def child(loc: Location, name: str) -> Location:
    """loc joined with a relative name ("int8.tflite", "variables/variables.index").

    Raises SpecError when name could leave loc ('..', absolute, empty segments).
    """
    if problem := relative_name_problem(name):
        raise SpecError(f"name {name!r} under {loc} {problem}; use a plain relative name")
    if loc.is_gcs:
        key = f"{loc.key}/{name}" if loc.key else name
        if len(key.encode()) > MAX_OBJECT_NAME_BYTES:
            raise SpecError(
                f"gs://{loc.bucket}/{key} is longer than {MAX_OBJECT_NAME_BYTES} bytes; "
                "use a shorter spec.output.uri"
            )
        return Location(scheme="gs", bucket=loc.bucket, key=key)
    return Location(scheme="file", path=loc.local_path / name)
