"""The status of a TFLiteConversion: the wire model, next to the spec (api/spec.py).

It is also the CRD's status schema (controller/crd.py), so the operator cannot write a field
the apiserver would prune without a test noticing; the operator writes it only as this model
dumped by alias (controller/render.py).

Conditions follow the kstatus convention that `kubectl wait --for=condition=Ready`, Flux and
Argo CD understand: `Ready` (True when done), `Reconciling` (True while work is in progress),
`Stalled` (True when it cannot progress without a change from the user). Two specific ones
say what a user asks next: did every variant convert (`Converted`), and does any variant fit
the device (`TargetMet`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Phase(StrEnum):
    QUEUED = "Queued"
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


TERMINAL_PHASES = (Phase.SUCCEEDED, Phase.FAILED)

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
CONVERTED = "Converted"
TARGET_MET = "TargetMet"

DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class _Status(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Condition(_Status):
    type: Annotated[str, Field(min_length=1, max_length=316)]
    status: Literal["True", "False", "Unknown"]
    reason: Annotated[str, Field(min_length=1, max_length=1024)]
    message: Annotated[str, Field(max_length=32768)] = ""
    last_transition_time: DateTime
    observed_generation: Annotated[int | None, Field(ge=0)] = None


class VariantResult(_Status):
    name: str
    ok: bool
    uri: str | None = None
    size_bytes: int | None = None
    size: Annotated[str | None, Field(description="sizeBytes for humans, e.g. 1.2 MiB")] = None
    compression_ratio: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    speedup: Annotated[float | None, Field(description="source p50 / variant p50")] = None
    max_abs_error: float | None = None
    top1_agreement: float | None = None
    meets_target: Annotated[
        bool | None,
        Field(
            description="May be selected: meets the target, or is unverified and "
            "spec.target.allowUnverified accepts that (see verdict)."
        ),
    ] = None
    verdict: Annotated[
        Literal["meets", "misses", "unverified"] | None,
        Field(
            description="unverified: this runtime could not validate or run the variant "
            "(e.g. Select TF ops), so its target was not checked; the note says why."
        ),
    ] = None
    note: str | None = None


class SelectedVariant(_Status):
    name: str | None = None
    reason: str | None = None
    uri: str | None = None
    size_bytes: int | None = None
    size: str | None = None
    p50_ms: float | None = None


def _doc(text: str) -> Any:
    return Field(description=text)


class ConversionStatus(_Status):
    observed_generation: Annotated[
        int | None, _doc("The metadata.generation this status describes.")
    ] = None
    phase: Annotated[Phase | None, _doc("Queued, Pending, Running, Succeeded or Failed.")] = None
    conditions: Annotated[
        list[Condition], _doc("Ready, Reconciling, Stalled (kstatus); Converted, TargetMet.")
    ] = []
    job_name: Annotated[str | None, _doc("The converter Job of this generation.")] = None
    start_time: Annotated[DateTime | None, _doc("When the converter Job started.")] = None
    completion_time: Annotated[DateTime | None, _doc("When the converter Job ended.")] = None
    source_size_bytes: Annotated[int | None, _doc("Size of the source model.")] = None
    source_p50_ms: Annotated[
        float | None, _doc("Median latency of the source model in TensorFlow, ms.")
    ] = None
    variants: Annotated[
        list[VariantResult] | None,
        _doc(
            "One entry per spec.variants item, in that order (the Converted condition says "
            "when some were left out to fit the pod's termination message)."
        ),
    ] = None
    variants_omitted: Annotated[
        int | None,
        _doc("Variants left out of `variants` (too many for the summary); see reportUri."),
    ] = None
    selected: Annotated[
        SelectedVariant | None, _doc("The variant to ship, or no name and the reason.")
    ] = None
    report_uri: Annotated[str | None, _doc("report.json with every figure.")] = None


# Fields owned by others that a status rewrite must not clear: Kopf keeps its state in `kopf`.
FOREIGN_STATUS_FIELDS = ("kopf",)
