"""GCSStorage with the real google-cloud-storage client against a real fake-gcs-server.

No mocks: objects are created and read through the server's JSON API. The one thing the
emulator cannot do is IAM (it never answers 403), so the 403 message is tested by feeding a
real google.api_core Forbidden instance to map_gcs_error, the function every call site uses.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc

from gcs_server import FakeGCS, start_server, stop_server
from tflite_operator.api.errors import (
    OutputExistsError,
    SourceNotFoundError,
    SpecError,
    StorageError,
)
from tflite_operator.storage import parse_uri, storage_for
from tflite_operator.storage.gcs import GCSStorage
from tflite_operator.storage.gcs_client import default_client
from tflite_operator.storage.gcs_errors import map_gcs_error

pytestmark = pytest.mark.gcs

SAVED_MODEL = {
    "saved_model.pb": os.urandom(3000),
    "fingerprint.pb": b"fp",
    "variables/variables.index": os.urandom(200),
    "variables/variables.data-00000-of-00001": os.urandom(300_000),
    "assets/vocab.txt": b"hello\nworld\n",
    "assets/nested/deeper/table.csv": b"a,b\n1,2\n",
}


@pytest.fixture
def gcs(fake_gcs: FakeGCS) -> GCSStorage:
    # Through storage_for, as the converter does: STORAGE_EMULATOR_HOST picks the emulator.
    store = storage_for("gs://any-bucket/x")
    assert isinstance(store, GCSStorage)
    return store


def upload_saved_model(fake_gcs: FakeGCS, tmp_path: Path, uri: str) -> None:
    src = tmp_path / "src"
    for name, data in SAVED_MODEL.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    fake_gcs.upload_dir(src, uri)


def test_fixture_points_the_default_client_at_the_emulator(fake_gcs: FakeGCS) -> None:
    assert os.environ["STORAGE_EMULATOR_HOST"] == fake_gcs.url
    client = default_client()
    assert client.api_endpoint == fake_gcs.url
    assert client.project == "test"


# -- fetch ------------------------------------------------------------------------------------


def test_fetch_saved_model_prefix_in_parallel(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str, tmp_path: Path
) -> None:
    upload_saved_model(fake_gcs, tmp_path, f"gs://{bucket}/models/resnet/1")
    fake_gcs.upload_bytes(f"gs://{bucket}/models/resnet/10/other.pb", b"not this model")
    seen: list[tuple[int, int]] = []
    threads: set[str] = set()

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        threads.add(threading.current_thread().name)

    dest = tmp_path / "work" / "source"
    got = gcs.fetch(f"gs://{bucket}/models/resnet/1/", dest, 10**7, progress)
    assert got == dest
    assert {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()} == set(
        SAVED_MODEL
    )
    for name, data in SAVED_MODEL.items():
        assert (dest / name).read_bytes() == data, name
    total = sum(map(len, SAVED_MODEL.values()))
    assert seen[-1] == (total, total)
    assert all(t == total for _, t in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    # The bytes were written by transfer_manager's worker threads, not this one.
    assert threading.current_thread().name not in threads


def test_fetch_single_object(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(10_000)
    fake_gcs.upload_bytes(f"gs://{bucket}/keras/model.keras", data)
    got = gcs.fetch(f"gs://{bucket}/keras/model.keras", tmp_path / "d", 10**6)
    assert got == tmp_path / "d" / "model.keras"
    assert got.read_bytes() == data


def test_fetch_skips_console_folder_placeholders(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str, tmp_path: Path
) -> None:
    fake_gcs.upload_bytes(f"gs://{bucket}/sm/", b"")
    fake_gcs.upload_bytes(f"gs://{bucket}/sm/variables/", b"")
    fake_gcs.upload_bytes(f"gs://{bucket}/sm/saved_model.pb", b"pb")
    dest = gcs.fetch(f"gs://{bucket}/sm", tmp_path / "d", 100)
    assert [p.relative_to(dest).as_posix() for p in dest.rglob("*")] == ["saved_model.pb"]


def test_fetch_nothing_there(gcs: GCSStorage, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError) as info:
        gcs.fetch(f"gs://{bucket}/models/missing", tmp_path / "d", 100)
    assert info.value.message == (
        f"no object or prefix at gs://{bucket}/models/missing; check spec.source.uri"
    )
    assert not (tmp_path / "d").exists()


def test_fetch_missing_bucket(gcs: GCSStorage, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError) as info:
        gcs.fetch("gs://no-such-bucket-here/m", tmp_path / "d", 100, field="spec.x.uri")
    assert "bucket no-such-bucket-here does not exist" in info.value.message
    assert "check spec.x.uri" in info.value.message


@pytest.mark.parametrize("hostile", ["../escaped.pb", "/etc/escaped.pb", "variables//x", "a/./b"])
def test_fetch_refuses_names_that_escape_dest(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str, tmp_path: Path, hostile: str
) -> None:
    # GCS (and fake-gcs-server, memory backend) store such names verbatim.
    fake_gcs.upload_bytes(f"gs://{bucket}/sm/saved_model.pb", b"pb")
    fake_gcs.upload_bytes(f"gs://{bucket}/sm/{hostile}", b"evil")
    assert f"sm/{hostile}" in fake_gcs.names(f"gs://{bucket}/sm/")
    dest = tmp_path / "work" / "source"
    with pytest.raises(StorageError) as info:
        gcs.fetch(f"gs://{bucket}/sm", dest, 10**6)
    assert f"gs://{bucket}/sm/{hostile}" in info.value.message
    assert "rename or delete that object" in info.value.message
    assert not (tmp_path / "work").exists()  # refused before anything was written
    assert not Path("/etc/escaped.pb").exists()


def test_fetch_size_cap(gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str, tmp_path: Path) -> None:
    upload_saved_model(fake_gcs, tmp_path, f"gs://{bucket}/sm")
    total = sum(map(len, SAVED_MODEL.values()))
    with pytest.raises(StorageError) as info:
        gcs.fetch(f"gs://{bucket}/sm", tmp_path / "d", total - 1)
    assert "spec.source.maxBytes" in info.value.message and str(total) in info.value.message
    assert not (tmp_path / "d").exists()
    assert gcs.fetch(f"gs://{bucket}/sm", tmp_path / "d", total) == tmp_path / "d"


def test_fetch_fails_when_an_object_is_replaced_mid_download(
    fake_gcs: FakeGCS, bucket: str, tmp_path: Path
) -> None:
    # One worker, so b.bin is fetched after a.bin; a.bin's first progress call replaces b.bin.
    gcs = GCSStorage(max_workers=1)
    fake_gcs.upload_bytes(f"gs://{bucket}/m/a.bin", b"a" * 1000)
    fake_gcs.upload_bytes(f"gs://{bucket}/m/b.bin", b"old b")
    replaced = []

    def replace_b(done: int, total: int) -> None:
        if not replaced:
            replaced.append(True)
            fake_gcs.upload_bytes(f"gs://{bucket}/m/b.bin", b"new b, another model version")

    dest = tmp_path / "d"
    with pytest.raises(SourceNotFoundError) as info:
        gcs.fetch(f"gs://{bucket}/m", dest, 10**6, replace_b)
    assert f"gs://{bucket}/m/b.bin disappeared or was replaced" in info.value.message
    assert not dest.exists()  # no half-downloaded model left behind


# -- exists, list_names ------------------------------------------------------------------------


def test_exists_and_list_names(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str, tmp_path: Path
) -> None:
    upload_saved_model(fake_gcs, tmp_path, f"gs://{bucket}/sm")
    assert gcs.exists(f"gs://{bucket}/sm")
    assert gcs.exists(f"gs://{bucket}/sm/saved_model.pb")
    assert not gcs.exists(f"gs://{bucket}/s")  # a prefix of a name is not a folder
    assert not gcs.exists(f"gs://{bucket}/other")
    assert not gcs.exists("gs://no-such-bucket-here/x")
    assert gcs.list_names(f"gs://{bucket}/sm") == sorted(SAVED_MODEL)
    assert gcs.list_names(f"gs://{bucket}/sm/variables/") == [
        "variables.data-00000-of-00001",
        "variables.index",
    ]
    assert gcs.list_names(f"gs://{bucket}/nothing") == []
    with pytest.raises(StorageError, match="bucket no-such-bucket-here does not exist"):
        gcs.list_names("gs://no-such-bucket-here/x")


# -- publish ----------------------------------------------------------------------------------


def test_publish_files_then_reports(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str, tmp_path: Path
) -> None:
    on_disk = tmp_path / "int8.tflite"
    on_disk.write_bytes(os.urandom(50_000))
    files = {"float16.tflite": os.urandom(20_000), "int8.tflite": on_disk}
    last = {"report.json": b'{"variants": 2}', "report.html": b"<html>ok</html>"}
    out = f"gs://{bucket}/out/run1"
    got = gcs.publish(out, files, last, overwrite=False)
    assert got == {n: f"{out}/{n}" for n in [*files, *last]}
    client = fake_gcs.client()
    blobs = {b.name.rsplit("/", 1)[-1]: b for b in client.list_blobs(bucket, prefix="out/run1/")}
    assert set(blobs) == {*files, *last}
    assert blobs["int8.tflite"].download_as_bytes() == on_disk.read_bytes()
    assert blobs["float16.tflite"].download_as_bytes() == files["float16.tflite"]
    assert blobs["report.json"].content_type == "application/json"
    assert blobs["report.html"].content_type.startswith("text/html")
    assert blobs["int8.tflite"].content_type == "application/octet-stream"
    # Generations are write timestamps (microseconds): every report was written after every file.
    assert max(blobs[n].generation for n in files) < min(blobs[n].generation for n in last)


def test_publish_refuses_existing_outputs(gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str) -> None:
    out = f"gs://{bucket}/out"
    fake_gcs.upload_bytes(f"{out}/int8.tflite", b"old model")
    fake_gcs.upload_bytes(f"{out}/report.json", b"old report")
    with pytest.raises(OutputExistsError) as info:
        gcs.publish(
            out, {"f16.tflite": b"new", "int8.tflite": b"new"}, {"report.json": b"new"}, False
        )
    assert info.value.message == (
        f"outputs already exist at {out}: int8.tflite, report.json; set "
        "spec.output.overwrite: true to replace them, or choose a new spec.output.uri"
    )
    assert fake_gcs.read(f"{out}/int8.tflite") == b"old model"
    assert fake_gcs.read(f"{out}/report.json") == b"old report"
    assert fake_gcs.names(out) == ["out/int8.tflite", "out/report.json"]


def test_publish_overwrite_replaces(gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str) -> None:
    out = f"gs://{bucket}/out"
    gcs.publish(out, {"a.tflite": b"v1"}, {"report.json": b"r1"}, overwrite=False)
    gcs.publish(out, {"a.tflite": b"v2", "b.tflite": b"v2"}, {"report.json": b"r2"}, overwrite=True)
    assert fake_gcs.read(f"{out}/a.tflite") == b"v2"
    assert fake_gcs.read(f"{out}/b.tflite") == b"v2"
    assert fake_gcs.read(f"{out}/report.json") == b"r2"


def test_publish_failed_file_leaves_no_report_and_no_files(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str, tmp_path: Path
) -> None:
    out = f"gs://{bucket}/out"
    files = {f"v{i}.tflite": os.urandom(1000) for i in range(6)}
    files["broken.tflite"] = tmp_path / "converter-never-wrote-this.tflite"  # type: ignore[assignment]
    with pytest.raises(StorageError) as info:
        gcs.publish(out, files, {"report.json": b"{}", "report.html": b""}, overwrite=False)
    assert "converter-never-wrote-this.tflite" in info.value.message
    assert f"{out}/broken.tflite" in info.value.message
    assert fake_gcs.names(out) == []  # uploads that succeeded were rolled back


def test_publish_failed_report_removes_the_files(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str, tmp_path: Path
) -> None:
    out = f"gs://{bucket}/out"
    with pytest.raises(StorageError, match="report-gone"):
        gcs.publish(
            out,
            {"a.tflite": b"a", "b.tflite": b"b"},
            {"report.json": b"{}", "report.html": tmp_path / "report-gone.html"},
            overwrite=False,
        )
    # report.json was written before report.html failed; it and both files are gone again.
    assert fake_gcs.names(out) == []


def test_publish_to_missing_bucket(gcs: GCSStorage) -> None:
    with pytest.raises(StorageError) as info:
        gcs.publish("gs://no-such-bucket-here/out", {"a.tflite": b"a"}, {}, overwrite=False)
    assert "bucket no-such-bucket-here does not exist; create it or fix spec.output.uri" in (
        info.value.message
    )


def _publish_as(
    gcs: GCSStorage, who: str, out: str, start: threading.Barrier, outcomes: dict
) -> None:
    start.wait()
    try:
        gcs.publish(
            out,
            {f"m{i}.tflite": who.encode() * 100 for i in range(4)},
            {"report.json": who.encode()},
            overwrite=False,
        )
        outcomes[who] = None
    except BaseException as exc:
        outcomes[who] = exc


def test_concurrent_publishers_never_mix(gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str) -> None:
    # Two conversions race for one output folder without overwrite: at most one wins, whole;
    # the other gets OutputExistsError (from the existence check or an upload's 412).
    for attempt in range(4):
        out = f"gs://{bucket}/race{attempt}"
        outcomes: dict[str, BaseException | None] = {}
        start = threading.Barrier(2)
        threads = [
            threading.Thread(target=_publish_as, args=(gcs, who, out, start, outcomes))
            for who in ("alice", "bob")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(outcomes) == 2
        winners = [w for w, e in outcomes.items() if e is None]
        assert len(winners) <= 1, outcomes
        for who, exc in outcomes.items():
            if exc is not None:
                assert isinstance(exc, OutputExistsError), (who, exc)
        contents = {n: fake_gcs.read(f"gs://{bucket}/{n}") for n in fake_gcs.names(out)}
        if winners:
            w = winners[0].encode()
            assert contents == {
                **{f"race{attempt}/m{i}.tflite": w * 100 for i in range(4)},
                f"race{attempt}/report.json": w,
            }
        else:
            # Each lost to the other's half-written files and rolled back: nothing is left.
            assert contents == {}


def test_check_absent_and_uri_of(gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str) -> None:
    out = f"gs://{bucket}/out/"
    gcs.check_absent(out, ["a.tflite", "report.json"])
    gcs.check_absent("gs://no-such-bucket-here/out", ["a.tflite"])  # publish reports the bucket
    got = gcs.publish(out, {"a.tflite": b"a"}, {"report.json": b"{}"}, overwrite=False)
    assert got["report.json"] == gcs.uri_of(out, "report.json") == f"gs://{bucket}/out/report.json"
    with pytest.raises(OutputExistsError) as info:
        gcs.check_absent(out, ["a.tflite", "b.tflite", "report.json"])
    assert f"at gs://{bucket}/out: a.tflite, report.json;" in info.value.message


# -- delete_prefix ----------------------------------------------------------------------------


def test_delete_prefix(gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str) -> None:
    out = f"gs://{bucket}/out"
    gcs.publish(out, {"a.tflite": b"a", "b.tflite": b"b"}, {"report.json": b"{}"}, False)
    fake_gcs.upload_bytes(f"gs://{bucket}/outside/keep", b"k")
    fake_gcs.upload_bytes(f"gs://{bucket}/out-sibling/keep", b"k")
    assert gcs.delete_prefix(out, ["a.tflite", "report.json", "never.tflite"]) == 2
    assert fake_gcs.names(out + "/") == ["out/b.tflite"]
    assert gcs.delete_prefix(out) == 1
    assert gcs.delete_prefix(out) == 0
    assert gcs.delete_prefix(out, ["a.tflite"]) == 0
    assert fake_gcs.names(f"gs://{bucket}") == ["out-sibling/keep", "outside/keep"]


def test_delete_prefix_missing_bucket_is_nothing_to_do(gcs: GCSStorage) -> None:
    assert gcs.delete_prefix("gs://no-such-bucket-here/out") == 0
    assert gcs.delete_prefix("gs://no-such-bucket-here/out", ["a.tflite"]) == 0


def test_delete_prefix_refuses_a_whole_bucket(gcs: GCSStorage, bucket: str) -> None:
    with pytest.raises(SpecError, match="refusing to delete every object"):
        gcs.delete_prefix(f"gs://{bucket}")
    with pytest.raises(SpecError):
        gcs.delete_prefix(f"gs://{bucket}/out", ["../other/x"])


# -- error mapping ----------------------------------------------------------------------------


def test_forbidden_names_permission_role_and_workload_identity() -> None:
    # fake-gcs-server has no IAM; this is the exception the client raises for a real 403.
    exc = gexc.Forbidden(
        "conv@proj.iam.gserviceaccount.com does not have storage.objects.get access to the "
        "Google Cloud Storage object. Permission 'storage.objects.get' denied on resource."
    )
    err = map_gcs_error(
        exc,
        loc=parse_uri("gs://models/resnet/saved_model.pb"),
        permission="storage.objects.get",
        doing="downloading",
        field="spec.source.uri",
        source=True,
    )
    assert type(err) is StorageError
    msg = err.message
    assert "permission denied while downloading gs://models/resnet/saved_model.pb" in msg
    assert "needs storage.objects.get on bucket models" in msg
    assert "roles/storage.objectViewer" in msg and "gs://models" in msg
    assert "serviceAccountName" in msg and "Workload Identity" in msg
    assert "conv@proj.iam.gserviceaccount.com" in msg  # the server names the principal
    assert "Forbidden" not in msg  # the message, not the class name


def test_forbidden_on_upload_asks_for_object_creator() -> None:
    err = map_gcs_error(
        gexc.Forbidden("denied"),
        loc=parse_uri("gs://out/run/int8.tflite"),
        permission="storage.objects.create",
        doing="uploading",
        field="spec.output.uri",
    )
    assert "storage.objects.create" in err.message
    assert "roles/storage.objectCreator" in err.message


def test_other_api_errors() -> None:
    loc = parse_uri("gs://out/run")
    kw = {"loc": loc, "permission": "storage.objects.create", "doing": "uploading", "field": "f"}
    assert isinstance(map_gcs_error(gexc.PreconditionFailed("412"), **kw), OutputExistsError)
    unauth = map_gcs_error(gexc.Unauthorized("bad token"), **kw)
    assert "application-default login" in unauth.message and "serviceAccountName" in unauth.message
    nf = map_gcs_error(gexc.NotFound("no bucket"), **kw)
    assert nf.message == "bucket out does not exist; create it or fix f"
    retried = gexc.RetryError("Timeout of 120.0s exceeded", gexc.ServiceUnavailable("overloaded"))
    assert "HTTP 503 overloaded" in map_gcs_error(retried, **kw).message


@pytest.mark.usefixtures("fake_gcs")  # skips/fails like the rest when no binary
def test_unreachable_endpoint_names_host_and_emulator_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A real connection failure: a server that is started and stopped leaves a dead port.
    server = start_server()
    stop_server(server)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    gcs = GCSStorage(retry_timeout=1.0)
    with pytest.raises(StorageError) as info:
        gcs.fetch("gs://models/m.keras", tmp_path / "d", 100)
    msg = info.value.message
    assert f"cannot reach Cloud Storage at {server.url}" in msg
    assert f"STORAGE_EMULATOR_HOST is set to {server.url}" in msg


@pytest.mark.usefixtures("fake_gcs")  # skips/fails like the rest when no binary
def test_server_helper_leaves_no_process() -> None:
    server = start_server()
    assert server.process.poll() is None
    stop_server(server)
    assert server.process.poll() is not None
    assert not server.workdir.exists()
    stop_server(server)  # twice is fine
