"""`tflite-operator convert`: run a TFLiteConversion spec on this machine."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tflite_operator import API_GROUP, API_VERSION, KIND
from tflite_operator.api.errors import ConversionError, SpecError
from tflite_operator.api.manifest import load_manifest, parse_spec
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.commands.common import (
    EXIT_HELP,
    add_log_format_arg,
    add_verbose_arg,
    add_workers_arg,
    report_failure,
    run_pipeline,
)

# name -> (quantization, ioType): the --variant shorthands and --all-variants.
PRESETS: dict[str, tuple[str, str]] = {
    "fp32": ("none", "float32"),
    "fp16": ("float16", "float32"),
    "dynamic": ("dynamic-range", "float32"),
    "int8": ("int8", "int8"),
    "int16x8": ("int16x8", "float32"),
}

MANIFEST_EXAMPLE = f"""\
example manifest (the same file works with kubectl apply):
  apiVersion: {API_GROUP}/{API_VERSION}
  kind: {KIND}
  metadata: {{name: digits}}
  spec:
    source: {{uri: gs://models/digits/saved_model}}
    output: {{uri: gs://models-tflite/digits/}}
    variants:
      - {{name: fp32}}
      - {{name: int8, quantization: int8, ioType: int8}}
    target: {{maxModelSizeBytes: 5000000, maxLatencyMs: 20, maxOutputError: 0.05}}
"""


def variant_arg(text: str) -> dict[str, str]:
    """NAME or NAME:QUANTIZATION[:IOTYPE]; a preset name alone picks its quantization."""
    parts = text.split(":")
    if len(parts) == 1:
        if parts[0] not in PRESETS:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a preset ({', '.join(PRESETS)}); "
                "write NAME:QUANTIZATION[:IOTYPE], e.g. small:int8:uint8"
            )
        quant, io = PRESETS[parts[0]]
        return {"name": parts[0], "quantization": quant, "ioType": io}
    if len(parts) > 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME:QUANTIZATION[:IOTYPE]")
    out = {"name": parts[0], "quantization": parts[1]}
    if len(parts) == 3:
        out["ioType"] = parts[2]
    return out


def input_shape_arg(text: str) -> tuple[str, list[int]]:
    """NAME=D0,D1,... (batch included), one entry of spec.source.inputShapes."""
    name, _, dims = text.partition("=")
    try:
        values = [int(d) for d in dims.split(",")]
    except ValueError:
        values = []
    if not name or not values:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME=D0,D1,... with the batch first, e.g. image=1,224,224,3"
        )
    return name, values


def register(sub: argparse._SubParsersAction) -> None:
    conv = sub.add_parser(
        "convert",
        help="run a TFLiteConversion spec on this machine",
        description="Run a TFLiteConversion spec here: fetch the source (local path or gs://), "
        "convert every variant, validate against the source, benchmark, select, and write "
        "<variant>.tflite, report.json and report.html to the output. Flags override the "
        "manifest's fields; without -f, --source, --output and at least one --variant (or "
        "--all-variants) are required.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MANIFEST_EXAMPLE + "\n" + EXIT_HELP,
    )
    conv.set_defaults(handler=run)
    _source_and_output_args(conv)
    _run_args(conv)
    _target_args(conv)
    conv.add_argument("--name", help="name in the report (default: metadata.name or 'conversion')")
    conv.add_argument(
        "--workdir", metavar="DIR", help="scratch folder for downloads (default: a temp dir)"
    )
    add_log_format_arg(conv)
    add_verbose_arg(conv)
    add_workers_arg(conv)
    conv.add_argument(
        "--print-spec", action="store_true", help="print the effective spec as JSON and exit"
    )


def _source_and_output_args(conv: argparse.ArgumentParser) -> None:
    conv.add_argument("-f", "--manifest", metavar="FILE", help="TFLiteConversion YAML ('-': stdin)")
    conv.add_argument(
        "--source", metavar="URI", help="SavedModel dir or .keras file (spec.source.uri)"
    )
    conv.add_argument("--output", metavar="URI", help="output folder (spec.output.uri)")
    conv.add_argument(
        "--input-shape",
        action="append",
        type=input_shape_arg,
        metavar="NAME=D0,D1,...",
        help="fix an input's dims, batch included (spec.source.inputShapes); repeatable",
    )
    conv.add_argument(
        "--variant",
        action="append",
        type=variant_arg,
        metavar="SPEC",
        help=f"add a variant: a preset ({', '.join(PRESETS)}) or NAME:QUANTIZATION[:IOTYPE] "
        "with QUANTIZATION none|float16|dynamic-range|int8|int16x8 and IOTYPE "
        "float32|int8|uint8|int16; repeatable; replaces the manifest's variants",
    )
    conv.add_argument(
        "--all-variants", action="store_true", help=f"use every preset: {', '.join(PRESETS)}"
    )
    conv.add_argument(
        "--calibration", metavar="URI", help=".npz/.npy representative data for int8/int16x8"
    )
    conv.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    conv.add_argument(
        "--no-reuse",
        action="store_true",
        help="convert every variant, even those unchanged since the previous outputs "
        "(output.reuse: false)",
    )


def _run_args(conv: argparse.ArgumentParser) -> None:
    """How the run goes: benchmark and validation settings (and, later, workers)."""
    conv.add_argument("--runs", type=int, metavar="N", help="benchmark runs (default 50)")
    conv.add_argument("--warmup", type=int, metavar="N", help="warm-up runs (default 5)")
    conv.add_argument("--threads", type=int, metavar="N", help="interpreter threads (default 2)")
    conv.add_argument("--no-benchmark", action="store_true", help="skip latency measurement")
    conv.add_argument("--no-validation", action="store_true", help="skip accuracy comparison")


def _target_args(conv: argparse.ArgumentParser) -> None:
    conv.add_argument("--max-size", type=int, metavar="BYTES", help="target.maxModelSizeBytes")
    conv.add_argument("--max-latency-ms", type=float, metavar="MS", help="target.maxLatencyMs")
    conv.add_argument("--max-error", type=float, metavar="ERR", help="target.maxOutputError")


# flag attribute -> field of spec.benchmark / spec.target it overrides.
_BENCHMARK_FLAGS = (("runs", "runs"), ("warmup", "warmupRuns"), ("threads", "threads"))
_TARGET_FLAGS = (
    ("max_size", "maxModelSizeBytes"),
    ("max_latency_ms", "maxLatencyMs"),
    ("max_error", "maxOutputError"),
)


def effective_spec(args: argparse.Namespace) -> tuple[str, ConversionSpec]:
    """The manifest's spec with the command-line flags laid over it."""
    name = "conversion"
    data: dict[str, Any] = {}
    if args.manifest:
        name, spec = load_manifest(args.manifest)
        data = spec.to_wire()
    if args.source:
        data.setdefault("source", {})["uri"] = args.source
    if args.output:
        data.setdefault("output", {})["uri"] = args.output
    if args.input_shape:
        shapes = data.setdefault("source", {}).setdefault("inputShapes", {})
        shapes.update(dict(args.input_shape))
    if args.all_variants:
        data["variants"] = [variant_arg(n) for n in PRESETS]
    if args.variant:
        data["variants"] = args.variant
    if args.calibration:
        for v in data.get("variants", []):
            if v.get("quantization") in ("int8", "int16x8"):
                v["representativeDataset"] = {"uri": args.calibration}
    if args.overwrite:
        data.setdefault("output", {})["overwrite"] = True
    if args.no_reuse:
        data.setdefault("output", {})["reuse"] = False
    bench = data.setdefault("benchmark", {})
    for flag, field in _BENCHMARK_FLAGS:
        if getattr(args, flag) is not None:
            bench[field] = getattr(args, flag)
    if args.no_benchmark:
        bench["enabled"] = False
    if args.no_validation:
        data.setdefault("validation", {})["enabled"] = False
    target = data.setdefault("target", {})
    for flag, field in _TARGET_FLAGS:
        if getattr(args, flag) is not None:
            target[field] = getattr(args, flag)
    missing = [
        flag
        for flag, present in (
            ("--source (or spec.source.uri)", "uri" in data.get("source", {})),
            ("--output (or spec.output.uri)", "uri" in data.get("output", {})),
            ("--variant/--all-variants (or spec.variants)", bool(data.get("variants"))),
        )
        if not present
    ]
    if missing:
        raise SpecError(f"missing {', '.join(missing)}; pass -f MANIFEST or these flags")
    return args.name or name, parse_spec(data)


def run(args: argparse.Namespace) -> int:
    from tflite_operator.console import print_results

    try:
        name, spec = effective_spec(args)
        if args.print_spec:
            print(json.dumps(spec.to_wire(), indent=2))
            return 0
        outcome = run_pipeline(name, spec, args.workdir, args.log_format, workers=args.workers)
    except ConversionError as err:
        return report_failure(err)
    print_results(outcome.report)
    print(f"report: {outcome.report.report_uri}")
    if outcome.error:
        return report_failure(outcome.error)
    return 0
