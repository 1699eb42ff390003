"""`tflite-operator`: convert on this machine, run inside a converter Job, or run the operator.

Each command lives in tflite_operator.commands (its flags and its handler); this module
assembles the parser and runs the chosen handler with TensorFlow's own logs hidden or shown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tflite_operator import __version__
from tflite_operator.commands import convert, demo, inspect, job
from tflite_operator.commands.common import EXIT_HELP
from tflite_operator.tf_logs import tensorflow_logs

COMMANDS = (convert, job, inspect)


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
    for command in COMMANDS:
        command.register(sub)
    # Listed for --help only: main() hands `operator ...` to the operator before parsing.
    op = sub.add_parser(
        "operator",
        help="run the Kubernetes operator",
        add_help=False,
        description="Run the operator; `tflite-operator operator --help` lists its options.",
    )
    op.add_argument("args", nargs=argparse.REMAINDER)
    demo.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["operator"]:
        from tflite_operator.controller.main import main as operator_main

        return operator_main(argv[1:])
    args = build_parser().parse_args(argv)
    with tensorflow_logs(args.verbose):
        return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
