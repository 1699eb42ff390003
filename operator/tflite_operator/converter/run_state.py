"""What one converter run knows so far: the object the pipeline's stages read and fill in.

Each stage (converter/stages.py) takes a RunState and sets the fields it produces, so the
order of the stages is the only thing pipeline.run has to say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tflite_operator.api.errors import ConversionError
from tflite_operator.api.report import Report, Selection, VariantReport, VariantStatus
from tflite_operator.api.report_metrics import (
    AccuracyReport,
    DataReport,
    LatencyStats,
    SignatureInfo,
)
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.api.spec_variant import Variant
from tflite_operator.converter import data, worker_tasks
from tflite_operator.converter.progress import Progress, StageClock
from tflite_operator.converter.reuse_rules import ReusePlan
from tflite_operator.converter.source import SourceModel
from tflite_operator.converter.validate import Reference
from tflite_operator.storage import Storage, storage_for
from tflite_operator.storage.ownership import Owner

# (dataset URI or None for synthetic, sample count, seed, signature key)
SamplesKey = tuple[str | None, int, int, str]
T = TypeVar("T")


def produced(value: T | None, stage: str) -> T:
    """A field an earlier stage sets; None means the stages run out of order (a bug here)."""
    if value is None:
        raise RuntimeError(f"the {stage} stage has not run")
    return value


@dataclass
class RunState:
    name: str
    spec: ConversionSpec
    workdir: Path
    progress: Progress
    clock: StageClock
    out_store: Storage
    owner: Owner | None = None
    # Fingerprints and the previous outputs (converter/reuse.py), before the source is fetched.
    reuse: ReusePlan | None = None
    local_source: Path | None = None
    model: SourceModel | None = None
    # One report per spec.variants item, in that order, once the convert stage ran.
    variants: list[VariantReport] = field(default_factory=list)
    tflite: dict[str, bytes] = field(default_factory=dict)
    first_error: ConversionError | None = None
    validation_data: DataReport | None = None
    source_latency: LatencyStats | None = None
    source_note: str | None = None
    # Top-1 accuracy on the labelled validation dataset (primary signature), when labelled.
    source_task_accuracy: float | None = None
    # The source's outputs on the validation samples, per signature: run once, compared with
    # every variant (validation, and each accuracy-control attempt).
    references: dict[str, Reference] = field(default_factory=dict)
    selected: Selection | None = None
    report: Report | None = None
    # Conversion processes asked for (--workers; None: $TFLITE_CONVERT_WORKERS or automatic),
    # and what each variant's conversion gave, by variant name (with the accuracy its worker
    # measured, if it validated it).
    worker_count: int | None = None
    worker_results: dict[str, worker_tasks.Result] = field(default_factory=dict)
    # Fetched or generated inputs, shared by calibration, validation and benchmark.
    samples_cache: dict[SamplesKey, data.Samples] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        name: str,
        spec: ConversionSpec,
        workdir: Path,
        progress: Progress | None = None,
        owner: Owner | None = None,
        worker_count: int | None = None,
    ) -> RunState:
        progress = progress or Progress()
        return cls(
            name=name,
            spec=spec,
            workdir=workdir,
            progress=progress,
            clock=StageClock(progress),
            out_store=storage_for(spec.output.uri),
            owner=owner,
            worker_count=worker_count,
        )

    @property
    def source_model(self) -> SourceModel:
        return produced(self.model, "inspect")

    @property
    def primary_signature(self) -> SignatureInfo:
        """The first chosen signature: the one a device calls; the report leads with it."""
        return self.source_model.signatures[0]

    def converted(self) -> list[tuple[Variant, VariantReport]]:
        """(spec, report) of each variant that converted, in spec order."""
        return [
            (s, r)
            for s, r in zip(self.spec.variants, self.variants, strict=True)
            if r.status == VariantStatus.CONVERTED
        ]

    def checked(self, variant: str, signature_key: str) -> AccuracyReport | None:
        """The accuracy a conversion worker measured (None: validate here), re-raising what
        validating it raised there."""
        result = self.worker_results.get(variant)
        return result.checked(signature_key) if result is not None else None

    def samples_for(
        self, uri: str | None, count: int, seed: int, signature: SignatureInfo, field: str
    ) -> data.Samples:
        """Inputs for one signature: a dataset file, or seeded synthetic data when no URI."""
        key = (uri, count, seed, signature.key)
        if key not in self.samples_cache:
            if uri is None:
                self.samples_cache[key] = data.synthetic_samples(signature, count, seed)
            else:
                dest = self.workdir / "data" / str(len(self.samples_cache))
                local = storage_for(uri).fetch(uri, dest, self.spec.source.max_bytes, field=field)
                self.samples_cache[key] = data.load_samples(local, signature, count, uri)
        return self.samples_cache[key]
