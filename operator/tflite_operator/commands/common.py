"""What several commands share: exit-code help, progress display, the pipeline in a scratch dir.

demo.py imports from here too, so nothing here imports a command module (no import cycle).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tflite_operator.api.errors import EXIT_CODES, ConversionError
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.converter.progress import Progress

if TYPE_CHECKING:
    from tflite_operator.converter import pipeline
    from tflite_operator.storage.ownership import Owner

EXIT_HELP = "exit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


def add_log_format_arg(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument(
        "--log-format",
        choices=["auto", "rich", "plain", "json"],
        default=default,
        help="progress display: rich on a terminal, plain or json log lines otherwise "
        f"(default {default}: rich when stderr is a terminal)",
    )


def add_verbose_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show TensorFlow's and LiteRT's own log lines and warnings (hidden by default; "
        "TF_CPP_MIN_LOG_LEVEL=0 or 1 in the environment shows them too)",
    )


def add_workers_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes converting variants at once (default: $TFLITE_CONVERT_WORKERS, else "
        "as many as the CPUs and the memory limit allow; 1 converts in this process)",
    )


def make_progress(fmt: str) -> Progress:
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

    progress = make_progress(log_format)
    display = progress if hasattr(progress, "__enter__") else nullcontext()
    with tempfile.TemporaryDirectory(prefix="tflite-operator-", dir=workdir) as tmp, display:
        return pipeline.run(name, spec, Path(tmp), progress, owner, worker_count=workers)
