"""When a variant may be copied from the previous outputs instead of converted: pure rules.

A variant's .tflite is a function of the source's bytes, the options that shape the source
model (signatures, format, input shapes), the variant's spec, its calibration data and the
converter's version. conversion_fingerprint() hashes each of these from what identifies them
(object versions, not bytes), so a new generation can tell which variants it would convert
to the same model. converter/reuse.py does the I/O around these rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tflite_operator.api.report import Report, VariantReport, VariantStatus
from tflite_operator.api.report_metrics import ConversionFingerprint
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.api.spec_variant import NEEDS_REPRESENTATIVE_DATA, Variant
from tflite_operator.storage.ownership import ObjectInfo, Owner

# Relative object name -> version (storage's versions()), per URI the conversion reads.
Versions = Mapping[str, str]

# Report fields that describe the checks after conversion; a reused variant gets them anew.
RECHECKED_FIELDS = ("accuracy", "benchmark", "signature_checks", "target", "uri", "error")


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def conversion_fingerprint(
    spec: ConversionSpec,
    variant: Variant,
    source_versions: Versions,
    data_versions: Mapping[str, Versions],
    converter: str,
) -> ConversionFingerprint:
    """data_versions: versions() of every dataset URI the variants name."""
    source = spec.source.to_wire()
    source.pop("maxBytes", None)  # a download limit, not an input of the conversion
    data: dict[str, Any] = {}
    if variant.quantization in NEEDS_REPRESENTATIVE_DATA:
        cal = variant.calibration
        data["calibration"] = cal.to_wire()
        if cal.uri is not None:
            data["calibrationObjects"] = dict(data_versions.get(cal.uri, {}))
    wire = variant.to_wire()
    if "accuracyControl" in wire:
        # Accuracy control converts until the error budget holds on the validation data, so
        # the budget and that data shape the model too.
        val = spec.validation
        data["target"] = spec.target.to_wire()
        data["validation"] = val.to_wire()
        if val.dataset_uri is not None:
            data["validationObjects"] = dict(data_versions.get(val.dataset_uri, {}))
    return ConversionFingerprint(
        source=_digest({"spec": source, "objects": dict(source_versions)}),
        variant=_digest(wire),
        data=_digest(data) if data else "none",
        converter=converter,
    )


def dataset_uris(spec: ConversionSpec) -> dict[str, str]:
    """URI -> spec field of the datasets a fingerprint may name (calibration; validation
    for accuracy control)."""
    uris: dict[str, str] = {}
    for index, v in enumerate(spec.variants):
        if v.quantization in NEEDS_REPRESENTATIVE_DATA and v.calibration.uri is not None:
            uris.setdefault(v.calibration.uri, f"spec.variants[{index}].representativeDataset.uri")
    if spec.validation.dataset_uri is not None:
        uris.setdefault(spec.validation.dataset_uri, "spec.validation.datasetUri")
    return uris


def previous_report_problem(info: ObjectInfo, owner: Owner | None) -> str | None:
    """Why the report.json at the output may not be reused by this run, or None.

    One resource never takes another's outputs as its own: a resource reuses only what its
    own uid wrote (any generation), and a CLI run (no owner) only what another CLI run wrote.
    Local files carry no tags (storage/local.py), so there only CLI runs reuse.
    """
    if owner is None:
        if info.uid is not None:
            return f"it was written by the resource with uid {info.uid}, not by a CLI run"
        return None
    if info.uid != owner.uid:
        by = f"the resource with uid {info.uid}" if info.uid else "a CLI run (or is untagged)"
        return f"it was written by {by}, not by this resource ({owner.uid})"
    return None


@dataclass
class PreviousOutputs:
    """The previous run's report at spec.output.uri, accepted for reuse."""

    report: Report
    report_info: ObjectInfo
    # "<report URI>#<generation>" (local: the path): what reused variants name as reusedFrom.
    reused_from: str
    # <variant>.tflite -> the object found there; read pinned to exactly this generation.
    objects: dict[str, ObjectInfo] = field(default_factory=dict)

    def variant(self, name: str) -> VariantReport | None:
        for rep in self.report.variants:
            if rep.name == name and rep.status == VariantStatus.CONVERTED:
                return rep
        return None


def reusable_problem(
    fingerprint: ConversionFingerprint,
    earlier: VariantReport | None,
    obj: ObjectInfo | None,
    report_info: ObjectInfo,
) -> str | None:
    """Why the previous .tflite of a variant cannot stand in for converting it, or None."""
    if earlier is None:
        return "new, or not converted by the previous run"
    if earlier.fingerprint is None or earlier.sha256 is None or earlier.size_bytes is None:
        return "the previous report has no fingerprint for it"
    if changed := fingerprint.changed_since(earlier.fingerprint):
        return f"{', '.join(changed)} changed"
    if obj is None:
        return "its previous .tflite is gone"
    if obj.run != report_info.run:
        # GCS tags every object of one publish with its run token (ownership.py); another
        # token means the file was replaced after that report was written.
        return "its previous .tflite was written by another run than the previous report"
    return None


def bytes_problem(earlier: VariantReport, tflite: bytes) -> str | None:
    """Why the bytes read back are not the ones the previous report describes, or None."""
    if len(tflite) != earlier.size_bytes:
        return f"it holds {len(tflite):,} B where the previous report says {earlier.size_bytes:,} B"
    if hashlib.sha256(tflite).hexdigest() != earlier.sha256:
        return "its SHA-256 differs from the previous report's"
    return None


def reused_report(earlier: VariantReport, reused_from: str) -> VariantReport:
    """The previous variant's conversion facts, with the checks after conversion cleared."""
    rep = earlier.model_copy(deep=True)
    for name in RECHECKED_FIELDS:
        setattr(rep, name, VariantReport.model_fields[name].get_default(call_default_factory=True))
    rep.convert_seconds = None
    rep.reused_from = reused_from
    return rep


@dataclass
class ReusePlan:
    """What reuse.look_back found; RunState.reuse holds it for the convert stage."""

    fingerprints: dict[str, ConversionFingerprint] = field(default_factory=dict)
    previous: PreviousOutputs | None = None
