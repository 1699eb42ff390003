"""What the spec checks each variant against: target budgets, benchmark and validation."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tflite_operator.api.spec_fields import Uri, WireModel


class Target(WireModel):
    max_model_size_bytes: Annotated[int | None, Field(ge=1)] = None
    max_latency_ms: Annotated[float | None, Field(gt=0, description="p50 latency budget.")] = None
    max_output_error: Annotated[
        float | None, Field(ge=0, description="Budget for max absolute error vs the source.")
    ] = None
    min_top1_agreement: Annotated[
        float | None,
        Field(ge=0, le=1, description="For classifier outputs: share of equal argmax."),
    ] = None
    min_top5_agreement: Annotated[
        float | None,
        Field(
            ge=0,
            le=1,
            description="For classifier outputs with more than 5 classes: share of samples "
            "whose source top-1 class is among the variant's 5 highest scores.",
        ),
    ] = None
    min_snr_db: Annotated[
        float | None,
        Field(
            description="Budget for the worst output's signal-to-noise ratio vs the source, "
            "in dB (20 dB: error power 1% of the output's)."
        ),
    ] = None
    max_kl_divergence: Annotated[
        float | None,
        Field(
            ge=0,
            description="For probability outputs (softmax rows): budget for the mean "
            "KL divergence from the source's distribution, in nats.",
        ),
    ] = None
    max_accuracy_drop: Annotated[
        float | None,
        Field(
            ge=0,
            le=100,
            description="Budget for the drop in top-1 task accuracy vs the source, in "
            "percentage points (1.0: at most 1 point worse); needs a validation.datasetUri "
            "file with a labels array.",
        ),
    ] = None
    allowed_ops: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]] | None,
        Field(
            max_length=256,
            description="Ops the device supports (TFLite builtin names, e.g. CONV_2D); "
            "a variant using any other op does not meet the target.",
        ),
    ] = None
    allow_unverified: Annotated[
        bool,
        Field(
            description="Let a variant this runtime cannot validate or run (e.g. Select TF "
            "ops on the pip LiteRT runtime) meet the target and be selected, judged on what "
            "could be checked (size, ops); its verdict stays `unverified`.",
        ),
    ] = False


class Benchmark(WireModel):
    enabled: bool = True
    runs: Annotated[int, Field(ge=1, le=10000)] = 50
    warmup_runs: Annotated[int, Field(ge=0, le=1000)] = 5
    threads: Annotated[int, Field(ge=1, le=64)] = 2
    max_seconds: Annotated[
        float,
        Field(
            gt=0,
            le=3600,
            description="Time bound of each variant's timed runs (and the source baseline's), "
            "like benchmark_model's max_secs: they stop at `runs` or after this many seconds, "
            "but never before 5 runs; warm-up runs always run. The report says when runs "
            "were cut (timeBounded) and how many were made.",
        ),
    ] = 10.0
    source_baseline: Annotated[
        bool, Field(description="Also time the source model in TensorFlow (speed-up ratio).")
    ] = True


class Validation(WireModel):
    enabled: bool = True
    samples: Annotated[int, Field(ge=1, le=10000)] = 32
    dataset_uri: Annotated[
        Uri | None,
        Field(
            description=".npz/.npy inputs to compare on; omitted means the first variant's "
            "calibration data, else synthetic.",
        ),
    ] = None
    seed: Annotated[int, Field(ge=0)] = 1
