from __future__ import annotations

from pathlib import Path

import pytest

from tflite_operator.api.errors import SpecError
from tflite_operator.storage import (
    Location,
    bucket_name_problem,
    child,
    content_type_for,
    display,
    parse_uri,
    relative_name_problem,
)


@pytest.mark.parametrize(
    ("uri", "bucket", "key"),
    [
        ("gs://models/resnet/1", "models", "resnet/1"),
        ("gs://models/resnet/1/", "models", "resnet/1"),
        ("gs://models", "models", ""),
        ("gs://models/", "models", ""),
        ("GS://models/m.keras", "models", "m.keras"),
        ("gs://my.bucket_name-1/a b/c.npz", "my.bucket_name-1", "a b/c.npz"),
    ],
)
def test_parse_gs(uri: str, bucket: str, key: str) -> None:
    loc = parse_uri(uri)
    assert (loc.scheme, loc.bucket, loc.key, loc.path) == ("gs", bucket, key, None)
    assert loc.is_gcs


def test_gs_display_prefix_and_name() -> None:
    loc = parse_uri("gs://models/resnet/1/")
    assert str(loc) == display(loc) == "gs://models/resnet/1"
    assert loc.prefix == "resnet/1/"
    assert loc.name == "1"
    root = parse_uri("gs://models")
    assert (str(root), root.prefix, root.name) == ("gs://models", "", "models")


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("/data/models/m.keras", "/data/models/m.keras"),
        ("./models", "models"),
        ("../models/x", "../models/x"),
        ("models/x", "models/x"),
        ("file:///data/m", "/data/m"),
        ("file://localhost/data/m", "/data/m"),
        ("file:///data/with%20space", "/data/with space"),
    ],
)
def test_parse_local(uri: str, path: str) -> None:
    loc = parse_uri(uri)
    assert (loc.scheme, loc.bucket, loc.key) == ("file", "", "")
    assert loc.path == Path(path)
    assert loc.local_path == Path(path)
    assert str(loc) == str(Path(path))


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gs://Models/x", "invalid bucket name 'Models'"),
        ("gs://ab/x", "3 to 63 characters"),
        ("gs://" + "a" * 64 + "/x", "at most 63 characters unless it contains dots"),
        ("gs://a..b/x", "must not contain '..'"),
        ("gs://-ab/x", "start and end with a letter or digit"),
        ("gs://192.168.1.1/x", "IP address"),
        ("gs://goog-models/x", "'goog'"),
        ("gs://my-google-models/x", "'google'"),
        ("gs://b_b/../etc", "'.' or '..' segment"),
        ("gs://bbb/a/../b", "'.' or '..' segment"),
        ("gs://bbb/./a", "'.' or '..' segment"),
        ("gs://bbb//a", "is absolute"),
        ("gs://bbb/a//b", "empty segment"),
        ("gs://bbb/a/b//", "empty segment"),
        ("gs://bbb/a\nb", "control character"),
        ("s3://bucket/x", "unsupported URI scheme 's3'"),
        ("https://storage.googleapis.com/b/x", "unsupported URI scheme 'https'"),
        ("file://models/x", "needs an absolute path"),
        ("file:///a?b", "percent-encode"),
        ("", "empty URI"),
    ],
)
def test_parse_rejects_with_reason_and_fix(uri: str, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_uri(uri)
    assert expected in info.value.message
    # Every message tells what to do, not only what is wrong.
    assert any(w in info.value.message for w in ("fix", "use", "give", "write", "remove", "encode"))


def test_bucket_name_rules() -> None:
    assert bucket_name_problem("tflite-models") is None
    assert bucket_name_problem("a.b.example.com") is None
    assert bucket_name_problem("a" * 63) is None
    assert bucket_name_problem(".".join(["a" * 63] * 3)) is None
    assert bucket_name_problem("a" * 64 + ".b") is not None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("model.tflite", None),
        ("variables/variables.index", None),
        ("..x/y..", None),
        ("", "is empty"),
        ("../x", "'.' or '..' segment"),
        ("a/../../x", "'.' or '..' segment"),
        ("a/./b", "'.' or '..' segment"),
        ("/etc/passwd", "is absolute"),
        ("a//b", "empty segment"),
        ("dir/", "empty segment"),
        ("a\x00b", "control character"),
        ("x" * 1025, "longer than 1024 bytes"),
    ],
)
def test_relative_name_problem(name: str, problem: str | None) -> None:
    got = relative_name_problem(name)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got


def test_child_joins() -> None:
    assert str(child(parse_uri("gs://out/run/1"), "int8.tflite")) == "gs://out/run/1/int8.tflite"
    assert str(child(parse_uri("gs://out"), "report.json")) == "gs://out/report.json"
    assert child(parse_uri("gs://out/a"), "b/c").key == "a/b/c"
    assert child(parse_uri("/tmp/out"), "report.json") == Location(
        scheme="file", path=Path("/tmp/out/report.json")
    )


@pytest.mark.parametrize("name", ["../escape", "/abs", "a//b", "", "."])
def test_child_refuses_escapes(name: str) -> None:
    for base in ("gs://out/run", "/tmp/out"):
        with pytest.raises(SpecError, match="use a plain relative name"):
            child(parse_uri(base), name)


def test_child_refuses_overlong_object_name() -> None:
    with pytest.raises(SpecError, match="longer than 1024 bytes"):
        child(parse_uri("gs://out/" + "a" * 1000), "b" * 30)


def test_content_types() -> None:
    assert content_type_for("int8.tflite") == "application/octet-stream"
    assert content_type_for("report.json") == "application/json"
    assert content_type_for("report.html").startswith("text/html")
    assert content_type_for("README") == "application/octet-stream"
