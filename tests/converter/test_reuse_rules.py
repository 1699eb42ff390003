"""The pure rules of reuse across generations: fingerprints, whose outputs, which bytes."""

from __future__ import annotations

import hashlib

import pytest

from tflite_operator.api.manifest import parse_spec
from tflite_operator.api.report import VariantReport, VariantStatus
from tflite_operator.api.report_metrics import ConversionFingerprint
from tflite_operator.converter.reuse_rules import (
    RECHECKED_FIELDS,
    bytes_problem,
    conversion_fingerprint,
    previous_report_problem,
    reusable_problem,
    reused_report,
)
from tflite_operator.storage.ownership import GENERATION_KEY, RUN_KEY, UID_KEY, ObjectInfo, Owner

SOURCE = {"saved_model.pb": "1700000000000001", "variables/variables.index": "1700000000000002"}
CAL = "gs://bkt/calib.npz"
DATA = {CAL: {"calib.npz": "1700000000000003"}}
CONVERTER = "tflite-operator 0.1.0, tensorflow 2.21.0"


def spec(**changes):
    base = {
        "source": {"uri": "gs://bkt/model"},
        "output": {"uri": "gs://bkt/out"},
        "variants": [
            {"name": "fp32"},
            {"name": "int8", "quantization": "int8", "representativeDataset": {"uri": CAL}},
            {"name": "int16", "quantization": "int16x8"},
        ],
    }
    for key, value in changes.items():
        base[key] = value
    return parse_spec(base)


def fingerprints(s=None, source=SOURCE, data=DATA, converter=CONVERTER):
    s = s or spec()
    return {v.name: conversion_fingerprint(s, v, source, data, converter) for v in s.variants}


def test_fingerprint_is_stable_and_names_the_part_that_changed():
    base = fingerprints()
    assert fingerprints() == base
    assert base["fp32"].data == "none"  # nothing but the source goes into fp32

    new_object = fingerprints(source={**SOURCE, "saved_model.pb": "1700000000000009"})
    assert all(new_object[n].changed_since(base[n]) == ["source"] for n in base)

    new_calibration = fingerprints(data={CAL: {"calib.npz": "1700000000000009"}})
    assert new_calibration["int8"].changed_since(base["int8"]) == ["data"]
    # Synthetic calibration (no uri) and float variants do not read the file.
    assert new_calibration["int16"] == base["int16"] and new_calibration["fp32"] == base["fp32"]

    new_tf = fingerprints(converter="tflite-operator 0.1.0, tensorflow 2.22.0")
    assert all(new_tf[n].changed_since(base[n]) == ["converter"] for n in base)

    renamed_signatures = fingerprints(
        spec(source={"uri": "gs://bkt/model", "signatureKeys": ["x"]})
    )
    assert renamed_signatures["fp32"].changed_since(base["fp32"]) == ["source"]


def test_fingerprint_ignores_what_does_not_shape_the_model():
    base = fingerprints()
    other = spec(
        source={"uri": "gs://bkt/model", "maxBytes": 1234},
        output={"uri": "gs://bkt/elsewhere", "overwrite": True},
        benchmark={"runs": 3},
        validation={"samples": 4},
        target={"maxOutputError": 0.5},
    )
    assert fingerprints(other) == base


OWNED_A = ObjectInfo(7, {UID_KEY: "uid-a", GENERATION_KEY: "1", RUN_KEY: "r1"})
CLI = ObjectInfo(8, {RUN_KEY: "r2"})
LOCAL = ObjectInfo(0)


@pytest.mark.parametrize(
    ("info", "owner", "reusable"),
    [
        (OWNED_A, Owner("uid-a", 2), True),  # same resource, a later generation
        (OWNED_A, Owner("uid-a", 1), True),  # a retry of the same generation
        (OWNED_A, Owner("uid-b", 2), False),  # another resource sharing the output folder
        (OWNED_A, None, False),  # a CLI run never takes a resource's outputs
        (CLI, None, True),
        (CLI, Owner("uid-a", 2), False),  # nor a resource a CLI run's
        (LOCAL, None, True),
        (LOCAL, Owner("uid-a", 2), False),  # untagged: cannot be this resource's
    ],
)
def test_only_the_same_resource_or_cli_reuses(info, owner, reusable):
    assert (previous_report_problem(info, owner) is None) == reusable


def earlier(tflite: bytes, fingerprint: ConversionFingerprint) -> VariantReport:
    return VariantReport(
        name="fp32",
        quantization="none",
        status=VariantStatus.CONVERTED,
        size_bytes=len(tflite),
        sha256=hashlib.sha256(tflite).hexdigest(),
        fingerprint=fingerprint,
        uri="gs://bkt/out/fp32.tflite",
        convert_seconds=1.5,
        input_types=["float32"],
        error="x",
    )


def test_reusable_needs_equal_fingerprint_and_the_reports_own_object():
    fp = fingerprints()["fp32"]
    prev = earlier(b"model", fp)
    same_run = ObjectInfo(9, {RUN_KEY: "r1"})
    assert reusable_problem(fp, prev, same_run, OWNED_A) is None
    assert "written by another run" in reusable_problem(
        fp, prev, ObjectInfo(9, {RUN_KEY: "r9"}), OWNED_A
    )
    assert reusable_problem(fp, prev, None, OWNED_A) == "its previous .tflite is gone"
    assert reusable_problem(fp, None, same_run, OWNED_A) is not None
    unstamped = prev.model_copy(update={"fingerprint": None})
    assert "no fingerprint" in reusable_problem(fp, unstamped, same_run, OWNED_A)
    changed = fingerprints(converter="other")["fp32"]
    assert reusable_problem(changed, prev, same_run, OWNED_A) == "converter changed"


def test_bytes_must_be_the_ones_the_report_describes():
    prev = earlier(b"model", fingerprints()["fp32"])
    assert bytes_problem(prev, b"model") is None
    assert "4 B where the previous report says 5 B" in bytes_problem(prev, b"mode")
    assert "SHA-256" in bytes_problem(prev, b"MODEL")  # same size, other bytes


def test_reused_report_keeps_conversion_facts_and_clears_the_checks():
    prev = earlier(b"model", fingerprints()["fp32"])
    rep = reused_report(prev, "gs://bkt/out/report.json#7")
    assert rep.reused_from == "gs://bkt/out/report.json#7"
    assert rep.convert_seconds is None
    assert rep.input_types == ["float32"] and rep.sha256 == prev.sha256
    assert all(getattr(rep, f) in (None, []) for f in RECHECKED_FIELDS)
    assert prev.uri is not None  # the previous report's object is left as it was
