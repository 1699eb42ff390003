"""Keep TensorFlow's and LiteRT's own log lines off the terminal unless asked for (`--verbose`).

TF_CPP_MIN_LOG_LEVEL is not enough with TensorFlow 2.21: its C++ libraries log through absl
before absl is initialised ("All log messages before absl::InitializeLog() is called are
written to STDERR"), whatever the level; the converter prints MLIR diagnostics and the
quantizer printf()s straight to the stderr file descriptor; the LiteRT runtime logs
"INFO: Created TensorFlow Lite XNNPACK delegate". So the command's file descriptor 2 is
pointed at a pipe, and a filter in a process of its own (it must not need this process's GIL,
which a C++ call may hold while it writes) drops those lines and passes everything else on.
Python's own sys.stderr keeps writing to the terminal directly, so progress bars still see it.

Runnable as a script (`python -I tf_logs.py`: the filter process); stdlib imports only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import BinaryIO, TextIO

# absl/glog prefix: severity, MMDD, time, thread id, file:line]. F (fatal) lines stay: they
# say why the process is about to abort.
_GLOG_LINE = re.compile(r"^[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+:\d+\] ")
# LiteRT's and absl's plain prefixes, and the MLIR quantizer's printf of its settings.
_PREFIXES = ("INFO: ", "WARNING: ", "VERBOSE: ", "fully_quantize: ")
# An MLIR diagnostic: the converter's failure text, which the pipeline already turns into a
# message naming the spec field; its block runs to the next blank line.
_DIAGNOSTIC_START = re.compile(r"^(loc\(|<unknown>:\d+:|error: failed while converting)")
_MAX_DIAGNOSTIC_LINES = 200

# Libraries whose Python warnings (deprecations, Keras hints) are not for a CLI user.
_WARNING_MODULES = r"(tensorflow|tf_keras|keras|absl|ai_edge_litert|google\.protobuf|h5py)(\.|$)"
_LOGGERS = ("tensorflow", "absl", "keras", "h5py")


class TensorFlowLogFilter:
    """Decides line by line what reaches the terminal; keeps state across an MLIR block."""

    def __init__(self) -> None:
        self._in_diagnostic = 0

    def keep(self, line: str) -> bool:
        text = line.rstrip("\r\n")
        if self._in_diagnostic:
            self._in_diagnostic = 0 if not text.strip() else self._in_diagnostic + 1
            if self._in_diagnostic > _MAX_DIAGNOSTIC_LINES:
                self._in_diagnostic = 0
            return False
        if _DIAGNOSTIC_START.match(text):
            self._in_diagnostic = 1
            return False
        return not (_GLOG_LINE.match(text) or text.startswith(_PREFIXES))


def is_tensorflow_log(line: str) -> bool:
    """One line on its own (no block state): TensorFlow's or LiteRT's, not ours."""
    return not TensorFlowLogFilter().keep(line)


def verbose_requested(flag: bool) -> bool:
    """--verbose, or TF_CPP_MIN_LOG_LEVEL=0/1 set by whoever debugs a converter pod."""
    return flag or os.environ.get("TF_CPP_MIN_LOG_LEVEL") in ("0", "1")


@contextlib.contextmanager
def tensorflow_logs(verbose: bool) -> Iterator[None]:
    """Around a command: TensorFlow's own output shown (verbose) or hidden. Set up before
    TensorFlow is imported: the C++ log level is read once, at import."""
    if verbose_requested(verbose):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), _filtered_stderr_fd():
            warnings.filterwarnings("ignore", module=_WARNING_MODULES)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _backed_by_fd2(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False  # a test's capture object, say: it is not the descriptor


@contextlib.contextmanager
def _filtered_stderr_fd() -> Iterator[None]:
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    real = os.dup(2)
    read, write = os.pipe()
    try:
        # -I: stdlib only, no PYTHONPATH or site dirs needed to run this file.
        proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__)], stdin=read, stdout=real
        )
    except OSError:
        os.close(read)
        os.close(write)
        os.close(real)
        yield  # no filter process: the lines show, the command still runs
        return
    os.close(read)
    os.dup2(write, 2)
    os.close(write)
    saved = sys.stderr
    rebound = None
    if _backed_by_fd2(saved):
        # Closed in the finally below, after the command.
        rebound = open(  # noqa: SIM115
            real, "w", encoding=saved.encoding, errors=saved.errors, buffering=1, closefd=False
        )
        sys.stderr = rebound
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        sys.stderr = saved
        if rebound is not None:
            rebound.close()
        os.dup2(real, 2)  # closes this process's end of the pipe: the filter sees EOF
        os.close(real)
        with contextlib.suppress(subprocess.TimeoutExpired):
            # The filter ends when every writer has closed the pipe; a child process still
            # running (a multiprocessing forkserver lives until this process exits) holds
            # it open, and then the filter ends with that child: do not wait for it long.
            proc.wait(timeout=2)


def filter_stream(src: BinaryIO, dst: BinaryIO) -> None:
    log_filter = TensorFlowLogFilter()
    for raw in src:
        if log_filter.keep(raw.decode("utf-8", "replace")):
            dst.write(raw)
            dst.flush()


if __name__ == "__main__":
    import signal

    # Ctrl-C reaches the whole process group: the command handles it, and this filter must
    # outlive it to pass on the last lines; it ends when the pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        filter_stream(sys.stdin.buffer, sys.stdout.buffer)
