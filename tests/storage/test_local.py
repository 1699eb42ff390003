"""LocalStorage on real directories (tmp_path): paths, file:// URIs, atomic publishing."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tflite_operator.api.errors import (
    OutputExistsError,
    SourceNotFoundError,
    SpecError,
    StorageError,
)
from tflite_operator.storage import LocalStorage, storage_for

NOBODY = 65534


@pytest.fixture
def store() -> LocalStorage:
    s = storage_for("/tmp")
    assert isinstance(s, LocalStorage)
    return s


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "saved_model.pb": b"\x08\x01" * 100,
        "variables/variables.index": b"index",
        "variables/variables.data-00000-of-00001": os.urandom(5000),
        "assets/vocab.txt": b"a\nb\n",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def leftovers(root: Path) -> list[str]:
    """Temp files of interrupted writes: there must never be any after publish returns."""
    return [p.name for p in root.rglob(".*.tmp")]


# -- fetch, exists, list_names --------------------------------------------------------------


def test_fetch_returns_the_path_itself(store: LocalStorage, tmp_path: Path) -> None:
    src = tmp_path / "sm"
    files = make_tree(src)
    seen: list[tuple[int, int]] = []
    got = store.fetch(str(src), tmp_path / "dest", 10**6, progress=lambda d, t: seen.append((d, t)))
    assert got == src
    assert not (tmp_path / "dest").exists()  # nothing copied
    total = sum(map(len, files.values()))
    assert seen == [(total, total)]
    assert store.fetch(f"file://{src}/saved_model.pb", tmp_path, 10**6) == src / "saved_model.pb"


def test_fetch_missing_names_path_and_field(store: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError) as info:
        store.fetch(str(tmp_path / "nope"), tmp_path / "d", 10**6)
    assert str(tmp_path / "nope") in info.value.message
    assert "check spec.source.uri" in info.value.message
    with pytest.raises(SourceNotFoundError, match=r"variants\[0\]"):
        store.fetch(str(tmp_path / "x.npz"), tmp_path, 1, field="spec.variants[0].uri")


def test_fetch_size_cap(store: LocalStorage, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "sm")
    total = sum(map(len, files.values()))
    assert store.fetch(str(tmp_path / "sm"), tmp_path, total) == tmp_path / "sm"
    with pytest.raises(StorageError) as info:
        store.fetch(str(tmp_path / "sm"), tmp_path, total - 1)
    assert "spec.source.maxBytes" in info.value.message
    assert str(total) in info.value.message


def test_exists_and_list_names(store: LocalStorage, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "sm")
    assert store.exists(str(tmp_path / "sm"))
    assert store.exists(f"file://{tmp_path}/sm/saved_model.pb")
    assert not store.exists(str(tmp_path / "other"))
    assert store.list_names(str(tmp_path / "sm")) == sorted(files)
    assert store.list_names(str(tmp_path / "other")) == []


def test_wrong_scheme_is_a_spec_error(store: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not a file URI"):
        store.exists("gs://bucket/x")


# -- publish --------------------------------------------------------------------------------


def test_publish_writes_files_and_reports(store: LocalStorage, tmp_path: Path) -> None:
    payload = tmp_path / "built.tflite"
    payload.write_bytes(b"TFL3-from-disk")
    out = tmp_path / "out" / "run1"  # does not exist yet: publish creates it
    got = store.publish(
        str(out),
        {"float16.tflite": b"TFL3-f16", "int8.tflite": payload},
        {"report.json": b'{"ok": true}', "report.html": b"<html></html>"},
        overwrite=False,
    )
    assert got == {
        n: str(out / n) for n in ("float16.tflite", "int8.tflite", "report.json", "report.html")
    }
    assert (out / "int8.tflite").read_bytes() == b"TFL3-from-disk"
    assert (out / "float16.tflite").read_bytes() == b"TFL3-f16"
    assert json.loads((out / "report.json").read_text()) == {"ok": True}
    assert stat.S_IMODE((out / "report.json").stat().st_mode) == 0o644
    assert leftovers(out) == []
    assert store.list_names(str(out)) == sorted(got)


def test_publish_refuses_existing_and_touches_nothing(store: LocalStorage, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "int8.tflite").write_bytes(b"old model")
    (out / "report.json").write_bytes(b"old report")
    with pytest.raises(OutputExistsError) as info:
        store.publish(
            f"file://{out}",
            {"f16.tflite": b"new", "int8.tflite": b"new"},
            {"report.json": b"new"},
            overwrite=False,
        )
    msg = info.value.message
    assert "int8.tflite, report.json" in msg and "f16.tflite" not in msg
    assert "spec.output.overwrite: true" in msg and "spec.output.uri" in msg
    assert (out / "int8.tflite").read_bytes() == b"old model"
    assert (out / "report.json").read_bytes() == b"old report"
    assert sorted(p.name for p in out.iterdir()) == ["int8.tflite", "report.json"]


def test_publish_overwrite_replaces(store: LocalStorage, tmp_path: Path) -> None:
    out = tmp_path / "out"
    store.publish(str(out), {"a.tflite": b"v1"}, {"report.json": b"r1"}, overwrite=False)
    store.publish(str(out), {"a.tflite": b"v2"}, {"report.json": b"r2"}, overwrite=True)
    assert (out / "a.tflite").read_bytes() == b"v2"
    assert (out / "report.json").read_bytes() == b"r2"
    assert leftovers(out) == []


def test_publish_failure_midway_removes_what_it_wrote(store: LocalStorage, tmp_path: Path) -> None:
    # A directory squats on b.tflite: os.replace onto it fails after a.tflite was written.
    out = tmp_path / "out"
    (out / "b.tflite").mkdir(parents=True)
    (out / "report.json").write_bytes(b"old report")
    with pytest.raises(StorageError) as info:
        store.publish(
            str(out),
            {"a.tflite": b"new a", "b.tflite": b"new b"},
            {"report.json": b"new report"},
            overwrite=True,
        )
    assert str(out / "b.tflite") in info.value.message
    assert not (out / "a.tflite").exists()
    # The old report went first, so it cannot describe the new (now removed) files either.
    assert not (out / "report.json").exists()
    assert leftovers(out) == []


def test_publish_failing_report_removes_the_files(store: LocalStorage, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(StorageError) as info:
        store.publish(
            str(out),
            {"a.tflite": b"a", "b.tflite": b"b"},
            {"report.json": tmp_path / "report-that-was-never-written.json"},
            overwrite=False,
        )
    assert "report-that-was-never-written.json" in info.value.message
    assert list(out.iterdir()) == []


def test_publish_under_a_file_says_so(store: LocalStorage, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(StorageError) as info:
        store.publish(str(tmp_path / "f" / "out"), {"a.tflite": b"a"}, {}, overwrite=False)
    assert "Not a directory" in info.value.message and "spec.output.uri" in info.value.message


@pytest.mark.parametrize("name", ["../a.tflite", "/abs.tflite", "a//b", ""])
def test_publish_refuses_unsafe_names(store: LocalStorage, tmp_path: Path, name: str) -> None:
    with pytest.raises(SpecError):
        store.publish(str(tmp_path / "out"), {name: b"x"}, {}, overwrite=False)
    assert not (tmp_path / "a.tflite").exists() and not (tmp_path / "out").exists()


def test_publish_same_name_twice_is_a_spec_error(store: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"report\.json"):
        store.publish(str(tmp_path), {"report.json": b"1"}, {"report.json": b"2"}, overwrite=True)


# -- read-only directories --------------------------------------------------------------------


def as_unprivileged(fn: Callable[[], object]) -> tuple[str, str]:
    """Run fn in a forked child as uid/gid nobody; returns (exception class, message) or ("", "").

    Root ignores permission bits, and CI runs as root: dropping privileges in a child is the
    way to get a real EACCES there.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                fn()
                result = ("", "")
            except BaseException as exc:
                result = (type(exc).__name__, getattr(exc, "message", str(exc)))
            os.write(w, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    name, message = json.loads(data)
    return name, message


@pytest.fixture
def readonly_dir() -> Iterator[Path]:
    # Not tmp_path: its parents are 0700 root-owned, so the unprivileged child could not reach it.
    base = Path(tempfile.mkdtemp(prefix="tflite-ro-"))
    base.chmod(0o755)
    ro = base / "ro"
    ro.mkdir()
    (ro / "existing.tflite").write_bytes(b"keep")
    ro.chmod(0o555)
    yield ro
    ro.chmod(0o755)
    for p in sorted(base.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    base.rmdir()


def run_denied(fn: Callable[[], object]) -> tuple[str, str]:
    if os.geteuid() == 0:
        return as_unprivileged(fn)
    try:
        fn()
    except StorageError as exc:
        return type(exc).__name__, exc.message
    return "", ""


def test_publish_into_readonly_dir(store: LocalStorage, readonly_dir: Path) -> None:
    name, message = run_denied(
        lambda: store.publish(
            str(readonly_dir), {"a.tflite": b"a"}, {"report.json": b"{}"}, overwrite=False
        )
    )
    assert name == "StorageError"
    assert "Permission denied" in message and "writable" in message and "spec.output.uri" in message
    assert sorted(p.name for p in readonly_dir.iterdir()) == ["existing.tflite"]


def test_publish_below_readonly_dir(store: LocalStorage, readonly_dir: Path) -> None:
    name, message = run_denied(
        lambda: store.publish(str(readonly_dir / "new" / "run"), {"a.tflite": b"a"}, {}, False)
    )
    assert name == "StorageError" and str(readonly_dir / "new") in message
    assert not (readonly_dir / "new").exists()


def test_delete_in_readonly_dir(store: LocalStorage, readonly_dir: Path) -> None:
    name, message = run_denied(lambda: store.delete_prefix(str(readonly_dir), ["existing.tflite"]))
    assert name == "StorageError" and "existing.tflite" in message and "by hand" in message
    assert (readonly_dir / "existing.tflite").read_bytes() == b"keep"


# -- delete_prefix -----------------------------------------------------------------------------


def test_delete_named_outputs_is_idempotent(store: LocalStorage, tmp_path: Path) -> None:
    out = tmp_path / "out"
    store.publish(str(out), {"a.tflite": b"a"}, {"report.json": b"{}"}, overwrite=False)
    (out / "keep.txt").write_bytes(b"not ours")
    assert store.delete_prefix(str(out), ["a.tflite", "report.json", "report.html"]) == 2
    assert store.delete_prefix(str(out), ["a.tflite", "report.json"]) == 0
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_delete_everything_under(store: LocalStorage, tmp_path: Path) -> None:
    make_tree(tmp_path / "out")
    assert store.delete_prefix(f"file://{tmp_path}/out") == 4
    assert not (tmp_path / "out").exists()  # emptied directories go too
    assert store.delete_prefix(str(tmp_path / "out")) == 0
    assert store.delete_prefix(str(tmp_path / "never-existed")) == 0


def test_delete_refuses_root_and_escapes(store: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="refusing"):
        store.delete_prefix("/")
    with pytest.raises(SpecError):
        store.delete_prefix(str(tmp_path / "out"), ["../x"])


def test_check_absent_and_uri_of(store: LocalStorage, tmp_path: Path) -> None:
    out = tmp_path / "out"
    store.check_absent(str(out), ["a.tflite", "report.json"])  # nothing there: no error
    got = store.publish(str(out), {"a.tflite": b"a"}, {"report.json": b"{}"}, overwrite=False)
    assert got["a.tflite"] == store.uri_of(f"file://{out}", "a.tflite") == str(out / "a.tflite")
    with pytest.raises(OutputExistsError, match=r"a\.tflite, report\.json; set spec\.output"):
        store.check_absent(str(out), ["a.tflite", "b.tflite", "report.json"])
    with pytest.raises(SpecError):
        store.check_absent(str(out), ["../a.tflite"])
