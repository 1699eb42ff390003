"""`tflite-operator demo`: the command's flags; the demo itself is tflite_operator.demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from tflite_operator.commands.common import add_log_format_arg, add_verbose_arg


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="train a small digits CNN and convert it to every variant",
        description="Train a small CNN on scikit-learn's digits for a few seconds, save it as "
        "a SavedModel, convert it to every variant, and print size, latency and held-out "
        "accuracy per variant next to the source model.",
    )
    demo.set_defaults(handler=run)
    demo.add_argument("--out", default="demo-output", help="folder for the model and outputs")
    demo.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    add_log_format_arg(demo)
    add_verbose_arg(demo)


def run(args: argparse.Namespace) -> int:
    from tflite_operator.demo import run_demo

    return run_demo(Path(args.out), args.epochs, args.log_format)
