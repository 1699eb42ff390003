"""Reuse across generations: copy unchanged variants from the previous outputs, convert the rest.

Two steps of the pipeline:
- look_back (a stage before fetch): fingerprint every variant (reuse_rules.py) from the
  versions of the source and dataset objects, listed *before* anything is downloaded: if an
  object changes in between, the fingerprint names the older version, so a later run converts
  again rather than trusting a model made from other bytes. Then find the previous report at
  spec.output.uri and accept it only if this resource (or, for a CLI run, a CLI run) wrote it.
- take_previous (called by the convert stage): read each unchanged variant's .tflite, pinned
  to the generation found, check its size and SHA-256 against the previous report, and hand
  it over as converted. Only conversion is skipped: validation, benchmark and the target
  verdict run on the copied bytes like on any other variant.
record() stamps each converted variant with its fingerprint and SHA-256 for the next run.
"""

from __future__ import annotations

import hashlib

from pydantic import ValidationError

from tflite_operator import __version__
from tflite_operator.api.errors import ConversionError
from tflite_operator.api.report import REPORT_JSON, REPORT_SCHEMA_VERSION, Report, VariantReport
from tflite_operator.converter.reuse_rules import (
    PreviousOutputs,
    ReusePlan,
    bytes_problem,
    conversion_fingerprint,
    dataset_uris,
    previous_report_problem,
    reusable_problem,
    reused_report,
)
from tflite_operator.converter.run_state import RunState
from tflite_operator.storage import storage_for


def converter_version() -> str:
    import tensorflow as tf

    return f"tflite-operator {__version__}, tensorflow {tf.__version__}"


def look_back(state: RunState) -> None:
    state.reuse = ReusePlan()
    spec = state.spec
    try:
        source_versions = storage_for(spec.source.uri).versions(spec.source.uri)
        data_versions = {
            uri: storage_for(uri).versions(uri, field=field)
            for uri, field in dataset_uris(spec).items()
        }
    except ConversionError as err:
        # fetch (or the dataset read) meets the same problem and fails with it; say it there.
        state.progress.warn(f"cannot tell which variants are unchanged: {err.message}")
        return
    if not source_versions:
        return  # no source: fetch fails with the message that names spec.source.uri
    version = converter_version()
    state.reuse.fingerprints = {
        v.name: conversion_fingerprint(spec, v, source_versions, data_versions, version)
        for v in spec.variants
    }
    if spec.output.reuse:
        state.reuse.previous = _previous_outputs(state)


def _previous_outputs(state: RunState) -> PreviousOutputs | None:
    out, store = state.spec.output.uri, state.out_store
    info = store.stat(out, [REPORT_JSON]).get(REPORT_JSON)
    if info is None:
        return None
    uri = store.uri_of(out, REPORT_JSON)
    if problem := previous_report_problem(info, state.owner):
        state.progress.warn(f"not reusing variants from {uri}: {problem}")
        return None
    try:
        report = Report.model_validate_json(store.read_bytes(uri, info))
    except (ConversionError, ValidationError, ValueError) as err:
        state.progress.warn(f"not reusing variants from {uri}: cannot read it ({err})")
        return None
    if report.schema_version != REPORT_SCHEMA_VERSION:
        return None
    reused_from = f"{uri}#{info.generation}" if info.generation else uri
    names = [f"{v.name}.tflite" for v in state.spec.variants]
    return PreviousOutputs(report, info, reused_from, objects=store.stat(out, names))


def take_previous(state: RunState) -> dict[str, VariantReport]:
    """The variants copied from the previous outputs, by name; their bytes go to state.tflite."""
    plan, taken = state.reuse, {}
    if plan is None or plan.previous is None:
        return taken
    prev = plan.previous
    for name, fingerprint in plan.fingerprints.items():
        earlier = prev.variant(name)
        obj = prev.objects.get(f"{name}.tflite")
        if reusable_problem(fingerprint, earlier, obj, prev.report_info) is not None:
            continue  # converted as usual; nothing to say about an ordinary change
        assert earlier is not None and obj is not None  # reusable_problem checked both
        uri = state.out_store.uri_of(state.spec.output.uri, f"{name}.tflite")
        try:
            tflite = state.out_store.read_bytes(uri, obj)
        except ConversionError as err:
            state.progress.warn(f"{name}: not reused, converting it again: {err.message}")
            continue
        if problem := bytes_problem(earlier, tflite):
            state.progress.warn(f"{name}: not reused, converting it again: {uri} {problem}")
            continue
        taken[name] = reused_report(earlier, prev.reused_from)
        state.tflite[name] = tflite
        state.progress.step("convert", f"{name}: reused {len(tflite):,} B from {prev.reused_from}")
    return taken


def record(state: RunState) -> None:
    """Stamp each converted variant with what the next generation compares against."""
    fingerprints = state.reuse.fingerprints if state.reuse else {}
    for rep in state.variants:
        tflite = state.tflite.get(rep.name)
        if tflite is None or rep.name not in fingerprints:
            continue
        rep.fingerprint = fingerprints[rep.name]
        rep.sha256 = hashlib.sha256(tflite).hexdigest()
