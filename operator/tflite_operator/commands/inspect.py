"""`tflite-operator inspect`: a model's signatures, inputs and outputs."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tflite_operator.api.errors import ConversionError
from tflite_operator.commands.common import add_verbose_arg, report_failure


def register(sub: argparse._SubParsersAction) -> None:
    insp = sub.add_parser(
        "inspect",
        help="list a model's signatures, inputs and outputs",
        description="Print the signatures of a SavedModel or .keras file (local or gs://).",
    )
    insp.set_defaults(handler=run)
    insp.add_argument("source", metavar="URI")
    insp.add_argument("--format", default="auto", choices=["auto", "saved_model", "keras"])
    add_verbose_arg(insp)


def run(args: argparse.Namespace) -> int:
    from tflite_operator.converter.input_shapes import field_example, unknown_dims
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
                if kind == "input " and unknown_dims(t):
                    print(f"         unknown dims: set spec.source.inputShapes: {field_example(t)}")
    return 0
