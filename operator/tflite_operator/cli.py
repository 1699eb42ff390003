"""`tflite-operator`: convert on this machine, run inside a converter Job, or run the operator."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflite_operator import API_GROUP, API_VERSION, KIND, __version__
from tflite_operator.api.errors import EXIT_CODES, ConversionError, SpecError, TerminatedError
from tflite_operator.api.job_contract import (
    DELETE_OUTPUTS_ARG,
    GENERATION_ENV,
    NAME_ENV,
    SPEC_ENV,
    TERMINATION_LOG,
    TERMINATION_LOG_ENV,
    UID_ENV,
)
from tflite_operator.api.manifest import load_manifest, parse_spec
from tflite_operator.api.report import Summary, summarize
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.converter.progress import Progress

if TYPE_CHECKING:
    from tflite_operator.converter import pipeline
    from tflite_operator.storage.ownership import Owner


# name -> (quantization, ioType): the --variant shorthands and --all-variants.
PRESETS: dict[str, tuple[str, str]] = {
    "fp32": ("none", "float32"),
    "fp16": ("float16", "float32"),
    "dynamic": ("dynamic-range", "float32"),
    "int8": ("int8", "int8"),
    "int16x8": ("int16x8", "float32"),
}

EXIT_HELP = "exit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())

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


def _variant_arg(text: str) -> dict[str, str]:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tflite-operator",
        description="Convert TensorFlow SavedModels to TensorFlow Lite variants, validate and "
        "benchmark them; or run the Kubernetes operator that does it in converter Jobs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXIT_HELP,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    conv.add_argument("-f", "--manifest", metavar="FILE", help="TFLiteConversion YAML ('-': stdin)")
    conv.add_argument(
        "--source", metavar="URI", help="SavedModel dir or .keras file (spec.source.uri)"
    )
    conv.add_argument("--output", metavar="URI", help="output folder (spec.output.uri)")
    conv.add_argument(
        "--variant",
        action="append",
        type=_variant_arg,
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
    conv.add_argument("--runs", type=int, metavar="N", help="benchmark runs (default 50)")
    conv.add_argument("--warmup", type=int, metavar="N", help="warm-up runs (default 5)")
    conv.add_argument("--threads", type=int, metavar="N", help="interpreter threads (default 2)")
    conv.add_argument("--no-benchmark", action="store_true", help="skip latency measurement")
    conv.add_argument("--no-validation", action="store_true", help="skip accuracy comparison")
    conv.add_argument("--max-size", type=int, metavar="BYTES", help="target.maxModelSizeBytes")
    conv.add_argument("--max-latency-ms", type=float, metavar="MS", help="target.maxLatencyMs")
    conv.add_argument("--max-error", type=float, metavar="ERR", help="target.maxOutputError")
    conv.add_argument("--name", help="name in the report (default: metadata.name or 'conversion')")
    conv.add_argument(
        "--workdir", metavar="DIR", help="scratch folder for downloads (default: a temp dir)"
    )
    _log_format_arg(conv)
    _workers_arg(conv)
    conv.add_argument(
        "--print-spec", action="store_true", help="print the effective spec as JSON and exit"
    )

    job = sub.add_parser(
        "job",
        help="run inside a converter Job (spec from the environment)",
        description=f"Run the spec in ${SPEC_ENV} (JSON) named ${NAME_ENV}, log JSON lines and "
        f"write a compact summary to ${TERMINATION_LOG_ENV} (default "
        f"{TERMINATION_LOG}) for the operator. Scratch space is $TMPDIR.",
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    job.add_argument(
        DELETE_OUTPUTS_ARG,
        action="store_true",
        help="instead of converting, delete the spec's outputs (<variant>.tflite, report.json, "
        f"report.html) that the resource ${UID_ENV} wrote; on gs:// another resource's objects "
        "at the same URI are kept, and missing files count as deleted. The operator runs this "
        "when a resource with spec.output.deleteOnResourceDeletion is deleted.",
    )
    _log_format_arg(job, default="json")
    _workers_arg(job)

    insp = sub.add_parser(
        "inspect",
        help="list a model's signatures, inputs and outputs",
        description="Print the signatures of a SavedModel or .keras file (local or gs://).",
    )
    insp.add_argument("source", metavar="URI")
    insp.add_argument("--format", default="auto", choices=["auto", "saved_model", "keras"])

    op = sub.add_parser(
        "operator",
        help="run the Kubernetes operator",
        add_help=False,
        description="Run the operator; `tflite-operator operator --help` lists its options.",
    )
    op.add_argument("args", nargs=argparse.REMAINDER)

    demo = sub.add_parser(
        "demo",
        help="train a small digits CNN and convert it to every variant",
        description="Train a small CNN on scikit-learn's digits for a few seconds, save it as "
        "a SavedModel, convert it to every variant, and print size, latency and held-out "
        "accuracy per variant next to the source model.",
    )
    demo.add_argument("--out", default="demo-output", help="folder for the model and outputs")
    demo.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    _log_format_arg(demo)
    return parser


def _log_format_arg(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument(
        "--log-format",
        choices=["auto", "rich", "plain", "json"],
        default=default,
        help="progress display: rich on a terminal, plain or json log lines otherwise "
        f"(default {default}: rich when stderr is a terminal)",
    )


def _workers_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes converting variants at once (default: $TFLITE_CONVERT_WORKERS, else "
        "as many as the CPUs and the memory limit allow; 1 converts in this process)",
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
    if args.all_variants:
        data["variants"] = [_variant_arg(n) for n in PRESETS]
    if args.variant:
        data["variants"] = args.variant
    if args.calibration:
        for v in data.get("variants", []):
            if v.get("quantization") in ("int8", "int16x8"):
                v["representativeDataset"] = {"uri": args.calibration}
    if args.overwrite:
        data.setdefault("output", {})["overwrite"] = True
    bench = data.setdefault("benchmark", {})
    for flag, field in (("runs", "runs"), ("warmup", "warmupRuns"), ("threads", "threads")):
        if getattr(args, flag) is not None:
            bench[field] = getattr(args, flag)
    if args.no_benchmark:
        bench["enabled"] = False
    if args.no_validation:
        data.setdefault("validation", {})["enabled"] = False
    target = data.setdefault("target", {})
    for flag, field in (
        ("max_size", "maxModelSizeBytes"),
        ("max_latency_ms", "maxLatencyMs"),
        ("max_error", "maxOutputError"),
    ):
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


def _progress(fmt: str) -> Progress:
    from tflite_operator.console import LogProgress, RichProgress

    if fmt == "rich" or (fmt == "auto" and sys.stderr.isatty()):
        return RichProgress()
    return LogProgress("json" if fmt == "json" else "plain")


def report_failure(err: ConversionError) -> int:
    print(f"error ({err.reason}): {err.message}", file=sys.stderr)
    return err.exit_code


def run_pipeline(
    name: str,
    spec: ConversionSpec,
    workdir: str | None,
    log_format: str,
    owner: Owner | None = None,
    workers: int | None = None,
) -> pipeline.Outcome:
    """The converter pipeline in a scratch folder, with progress shown as log_format asks."""
    from contextlib import nullcontext

    from tflite_operator.converter import pipeline

    progress = _progress(log_format)
    display = progress if hasattr(progress, "__enter__") else nullcontext()
    with tempfile.TemporaryDirectory(prefix="tflite-operator-", dir=workdir) as tmp, display:
        return pipeline.run(name, spec, Path(tmp), progress, owner, worker_count=workers)


def cmd_convert(args: argparse.Namespace) -> int:
    from tflite_operator.console import results_table

    try:
        name, spec = effective_spec(args)
        if args.print_spec:
            print(json.dumps(spec.to_wire(), indent=2))
            return 0
        outcome = run_pipeline(name, spec, args.workdir, args.log_format, workers=args.workers)
    except ConversionError as err:
        return report_failure(err)
    print(results_table(outcome.report))
    print(f"report: {outcome.report.report_uri}")
    if outcome.error:
        return report_failure(outcome.error)
    return 0


def _terminated(signum: int, frame: object) -> None:
    raise TerminatedError("the pod was stopped (SIGTERM: deadline reached or Job deleted)")


def cmd_job(args: argparse.Namespace) -> int:
    """In a converter pod: every ending, good or bad, leaves a summary for the operator."""
    log_path = Path(os.environ.get(TERMINATION_LOG_ENV, TERMINATION_LOG))
    # Kubernetes stops a pod with SIGTERM (deadline, deletion): turn it into an exception so
    # publish rolls back what it wrote instead of leaving a .tflite without its report.
    signal.signal(signal.SIGTERM, _terminated)
    name = os.environ.get(NAME_ENV, "conversion")
    summary: Summary
    try:
        raw = os.environ.get(SPEC_ENV)
        if not raw:
            raise SpecError(f"${SPEC_ENV} is empty; the operator passes the spec as JSON there")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as err:
            raise SpecError(f"${SPEC_ENV} is not JSON: {err}") from None
        spec = parse_spec(data)
        owner = _owner_from_env()
        code = 0
        if args.delete_outputs:
            summary = _delete_outputs(spec, owner)
        else:
            outcome = run_pipeline(name, spec, None, args.log_format, owner, args.workers)
            summary = summarize(outcome.report)
            if outcome.error:
                # "Reason: message", as for failures before the report: the operator reads
                # the reason off the front.
                summary.error = f"{outcome.error.reason}: {outcome.error.message}"[:1500]
                code = outcome.error.exit_code
    except ConversionError as err:
        summary = Summary(ok=False, error=f"{err.reason}: {err.message}"[:1500])
        code = err.exit_code
    except Exception as err:  # the operator must still learn why the pod died
        summary = Summary(ok=False, error=f"InternalError: {type(err).__name__}: {err}"[:1500])
        code = 1
        import traceback

        traceback.print_exc()
    summary.exit_code = code
    try:
        log_path.write_text(summary.to_termination_message())
    except OSError as err:
        print(f"warning: cannot write termination message to {log_path}: {err}", file=sys.stderr)
    print(json.dumps({"event": "summary", **summary.to_wire()}), file=sys.stderr)
    return code


def _owner_from_env() -> Owner | None:
    """The resource this Job runs for; None when the operator did not say (older operators)."""
    from tflite_operator.storage.ownership import Owner

    uid = os.environ.get(UID_ENV, "")
    generation = os.environ.get(GENERATION_ENV, "")
    if not uid:
        return None
    try:
        return Owner(uid=uid, generation=int(generation))
    except ValueError:
        raise SpecError(
            f"${GENERATION_ENV} is {generation!r}, not a number; the operator sets it to the "
            "resource's metadata.generation"
        ) from None


def _delete_outputs(spec: ConversionSpec, owner: Owner | None) -> Summary:
    """Delete what this resource wrote at spec.output.uri, and nothing of anyone else's."""
    from tflite_operator.converter.pipeline import output_names
    from tflite_operator.storage import storage_for

    uri = spec.output.uri
    uid = owner.uid if owner else ""
    deleted, kept = storage_for(uri).delete_owned(uri, output_names(spec), uid)
    print(
        json.dumps({"event": "deleted", "uri": uri, "objects": len(deleted), "names": deleted}),
        file=sys.stderr,
    )
    if kept:
        # Another resource's outputs (it shares spec.output.uri) or rewritten since: theirs.
        print(
            json.dumps({"event": "kept", "uri": uri, "names": kept, "reason": "not ours"}),
            file=sys.stderr,
        )
    return Summary(ok=True)


def cmd_inspect(args: argparse.Namespace) -> int:
    from tflite_operator.converter.source import load_source
    from tflite_operator.storage import storage_for

    try:
        with tempfile.TemporaryDirectory(prefix="tflite-operator-") as tmp:
            local = storage_for(args.source).fetch(args.source, Path(tmp) / "source", 4 * 1024**3)
            model = load_source(local, args.format, signature_keys=())
    except ConversionError as err:
        return report_failure(err)
    print(f"{args.source}: {model.format}, {model.size_bytes:,} B")
    for sig in model.signatures:
        print(f"signature {sig.key}")
        for kind, tensors in (("input ", sig.inputs), ("output", sig.outputs)):
            for t in tensors:
                print(f"  {kind} {t.name}: {t.dtype} {t.shape}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["operator"]:
        from tflite_operator.controller.main import main as operator_main

        return operator_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "convert":
        return cmd_convert(args)
    if args.command == "job":
        return cmd_job(args)
    if args.command == "inspect":
        return cmd_inspect(args)
    if args.command == "demo":
        from tflite_operator.demo import run_demo

        return run_demo(Path(args.out), args.epochs, args.log_format)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
