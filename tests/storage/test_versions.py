"""Storage.versions(): what identifies a source's bytes now, on local disk and on gs://.

Reuse across generations (converter/reuse.py) trusts these: a rewrite must change them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gcs_server import FakeGCS
from tflite_operator.storage import storage_for


def test_local_versions_of_a_tree_a_file_and_nothing(tmp_path: Path) -> None:
    store = storage_for(str(tmp_path))
    (tmp_path / "sm" / "variables").mkdir(parents=True)
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"pb")
    (tmp_path / "sm" / "variables" / "variables.index").write_bytes(b"index")
    tree = store.versions(str(tmp_path / "sm"))
    assert sorted(tree) == ["saved_model.pb", "variables/variables.index"]
    assert tree["saved_model.pb"].startswith("2:")
    assert list(store.versions(str(tmp_path / "sm" / "saved_model.pb"))) == ["saved_model.pb"]
    assert store.versions(str(tmp_path / "missing")) == {}

    # The same bytes written again: the mtime moves, so the version does.
    pb = tmp_path / "sm" / "saved_model.pb"
    st = pb.stat()
    os.utime(pb, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    again = store.versions(str(tmp_path / "sm"))
    assert again["saved_model.pb"] != tree["saved_model.pb"]
    assert again["variables/variables.index"] == tree["variables/variables.index"]


@pytest.mark.gcs
def test_gcs_versions_follow_object_generations(fake_gcs: FakeGCS, bucket: str) -> None:
    store = storage_for(f"gs://{bucket}")
    fake_gcs.upload_bytes(f"gs://{bucket}/sm/", b"")  # a Console folder placeholder
    fake_gcs.upload_bytes(f"gs://{bucket}/sm/saved_model.pb", b"pb")
    fake_gcs.upload_bytes(f"gs://{bucket}/sm/variables/variables.index", b"index")
    fake_gcs.upload_bytes(f"gs://{bucket}/m.keras", b"keras")
    tree = store.versions(f"gs://{bucket}/sm")
    assert sorted(tree) == ["saved_model.pb", "variables/variables.index"]
    assert list(store.versions(f"gs://{bucket}/m.keras")) == ["m.keras"]
    assert store.versions(f"gs://{bucket}/nothing-here") == {}
    assert store.versions("gs://no-such-bucket-for-versions/sm") == {}

    fake_gcs.upload_bytes(f"gs://{bucket}/sm/saved_model.pb", b"pb")  # same bytes, new object
    again = store.versions(f"gs://{bucket}/sm")
    assert again["saved_model.pb"] != tree["saved_model.pb"]
    assert again["variables/variables.index"] == tree["variables/variables.index"]
