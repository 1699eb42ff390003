"""Local-disk backend: plain paths and file:// URIs (the CLI outside a cluster, and tests)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tflite_operator.api.errors import ConversionError, SourceNotFoundError, SpecError, StorageError
from tflite_operator.storage.base import (
    Payload,
    Progress,
    Storage,
    outputs_exist_error,
    publish_plan,
    too_large_error,
)
from tflite_operator.storage.ownership import ObjectInfo, Owner
from tflite_operator.storage.uris import Location, relative_name_problem


def _tree_size(path: Path) -> int:
    if not path.is_dir():
        return path.stat().st_size
    total = 0
    # os.walk does not follow directory symlinks, so a link loop cannot make this spin.
    for root, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


def _write_error(path: Path, exc: OSError) -> StorageError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make the directory writable for the converter's user, or choose another"
    elif exc.errno == errno.ENOSPC:
        fix = "free disk space, or choose another"
    else:
        fix = "fix the path, or choose another"
    return StorageError(f"cannot write {path}: {reason}; {fix} spec.output.uri")


class LocalStorage(Storage):
    """Ownership (storage/ownership.py) does not apply to local paths: nothing is tagged.

    Local outputs are written by the CLI on one user's disk, where no other tenant's
    conversion shares the folder; in a cluster outputs are gs://. Recording owners here would
    need a sidecar file with its own locking against concurrent writers, and a half-correct
    record is worse than none. So a job's retry onto a local folder is refused like a CLI
    run (OutputExists unless overwrite), and delete_owned deletes by name, as before.
    """

    scheme = "file"

    def fetch(
        self,
        uri: str | Location,
        dest: Path,
        max_bytes: int,
        progress: Progress | None = None,
        *,
        field: str = "spec.source.uri",
    ) -> Path:
        # No copy: the converter only reads the source, and models can be gigabytes.
        loc = self._location(uri)
        path = loc.local_path
        if not path.exists():
            raise SourceNotFoundError(f"no file or directory at {path}; check {field}")
        try:
            total = _tree_size(path)
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}; check {field}") from exc
        if total > max_bytes:
            raise too_large_error(loc, total, max_bytes, field)
        if progress is not None:
            progress(total, total)
        return path

    def exists(self, uri: str | Location) -> bool:
        path = self._location(uri).local_path
        return path.exists() or path.is_symlink()

    def list_names(self, uri_prefix: str | Location) -> list[str]:
        root = self._location(uri_prefix).local_path
        if not root.is_dir():
            return []
        return sorted(
            (Path(dirpath) / name).relative_to(root).as_posix()
            for dirpath, _dirs, names in os.walk(root)
            for name in names
        )

    def versions(self, uri: str | Location, *, field: str = "spec.source.uri") -> dict[str, str]:
        # Size and mtime, not a hash: hashing a gigabyte model on every run costs what a
        # listing does not, and any write through the filesystem moves mtime_ns.
        path = self._location(uri).local_path
        if path.is_file():
            files = {path.name: path}
        elif path.is_dir():
            files = {
                (Path(d) / n).relative_to(path).as_posix(): Path(d) / n
                for d, _dirs, names in os.walk(path)
                for n in names
            }
        else:
            return {}
        out = {}
        for rel, file in sorted(files.items()):
            try:
                st = file.stat()
            except OSError:
                continue  # vanished while listing: fetch() will say what is missing
            out[rel] = f"{st.st_size}:{st.st_mtime_ns}"
        return out

    def publish(
        self,
        output_uri: str | Location,
        files: Mapping[str, Payload],
        last: Mapping[str, Payload],
        overwrite: bool,
        owner: Owner | None = None,  # not recorded on local paths: see the class docstring
    ) -> dict[str, str]:
        loc = self._location(output_uri)
        names = publish_plan(files, last)
        out_dir = loc.local_path
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_error(out_dir, exc) from exc
        targets = {name: out_dir / name for name in names}
        existing = self._existing(loc, names)
        if existing and not overwrite:
            raise outputs_exist_error(loc, list(existing))

        written: list[Path] = []
        try:
            if overwrite:
                # Old reports go first, so no report ever describes a mix of old and new files.
                for name in last:
                    with contextlib.suppress(FileNotFoundError):
                        targets[name].unlink()
            for group in (files, last):
                for name, payload in group.items():
                    self._write_one(targets[name], payload, overwrite, loc)
                    written.append(targets[name])
        except BaseException as exc:
            # BaseException too: a KeyboardInterrupt must not leave a .tflite without its report.
            leftovers = []
            for path in written:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError:
                    leftovers.append(str(path))
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, ConversionError):
                error = exc
            elif isinstance(exc, OSError):
                error = _write_error(Path(exc.filename or out_dir), exc)
            else:
                raise
            if leftovers:
                error = type(error)(
                    f"{error.message}; could not remove the partial outputs "
                    f"{', '.join(leftovers)}: delete them by hand"
                )
            raise error from exc
        return {name: str(targets[name]) for name in names}

    def _existing(self, loc: Location, names: list[str]) -> dict[str, ObjectInfo]:
        root = loc.local_path
        return {
            n: ObjectInfo(generation=0)
            for n in names
            if (root / n).exists() or (root / n).is_symlink()
        }

    def read_bytes(self, uri: str | Location, info: ObjectInfo | None = None) -> bytes:
        path = self._location(uri).local_path
        try:
            return path.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def delete_owned(
        self, output_uri: str | Location, names: list[str], uid: str
    ) -> tuple[list[str], list[str]]:
        # No owners on local paths (class docstring): every listed name counts as ours.
        root = self._location(output_uri).local_path
        present = [n for n in names if (root / n).exists() or (root / n).is_symlink()]
        self.delete_prefix(output_uri, present)
        return present, []

    @staticmethod
    def _write_one(target: Path, payload: Payload, overwrite: bool, loc: Location) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Same directory as the target, so the final rename/link is atomic.
            fd, tmp_name = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
            )
        except OSError as exc:
            raise _write_error(target, exc) from exc
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(payload, bytes):
                    out.write(payload)
                else:
                    try:
                        with payload.open("rb") as src:
                            shutil.copyfileobj(src, out, 1024 * 1024)
                    except OSError as exc:
                        raise StorageError(
                            f"cannot read {payload} to publish it as {target}: "
                            f"{exc.strerror or exc}"
                        ) from exc
                out.flush()
                os.fsync(out.fileno())
            # mkstemp makes 0600 files; outputs are meant to be read by others.
            tmp.chmod(0o644)
            if overwrite:
                os.replace(tmp, target)
            else:
                _link_exclusive(tmp, target, loc)
        except OSError as exc:
            raise _write_error(target, exc) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def delete_prefix(self, uri_prefix: str | Location, names: list[str] | None = None) -> int:
        root = self._location(uri_prefix).local_path
        if root.resolve() == Path(root.resolve().anchor):
            raise SpecError(f"refusing to delete everything under {root}; give an output folder")
        if names is None:
            if not root.is_dir():
                return 0
            paths = [Path(d) / n for d, _dirs, ns in os.walk(root) for n in ns]
        else:
            for name in names:
                if problem := relative_name_problem(name):
                    raise SpecError(f"name {name!r} under {root} {problem}")
            paths = [root / name for name in names]
        deleted = 0
        for path in paths:
            try:
                path.unlink()
                deleted += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError(
                    f"cannot delete {path}: {exc.strerror or exc}; make {root} writable for the "
                    "operator's user, or delete the outputs by hand"
                ) from exc
        # Remove directories emptied above (deepest first); non-empty ones stay.
        if root.is_dir():
            for dirpath, _dirs, _names in sorted(os.walk(root), key=lambda t: -len(t[0])):
                with contextlib.suppress(OSError):
                    Path(dirpath).rmdir()
        return deleted


def _link_exclusive(tmp: Path, target: Path, loc: Location) -> None:
    """Move tmp to target only if target does not exist, atomically where the filesystem can.

    A hard link fails with EEXIST instead of replacing, closing the check-then-write race with a
    concurrent publisher. Filesystems without hard links fall back to check-then-rename.
    """
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise outputs_exist_error(loc, [target.relative_to(loc.local_path).as_posix()]) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if target.exists():
            raise outputs_exist_error(
                loc, [target.relative_to(loc.local_path).as_posix()]
            ) from None
        os.replace(tmp, target)
