"""Latency and memory of a converted model (LiteRT), and the source model's latency (TensorFlow).

Isolation: by default a converted model is measured in a fresh child Python process that loads
only numpy and ai_edge_litert. TensorFlow's thread pools and heap in the parent do not disturb
the timings, the memory figure starts from a clean heap, and a runtime crash on a bad model
(a segfault in a kernel) becomes runnable=False instead of killing the whole pipeline.

What is timed: one call from Python with inputs already in memory, measured with
time.perf_counter. For TFLite that is the signature runner's call (copy inputs in, invoke,
copy outputs out); for the source it is the signature's concrete function. Both include a
little Python overhead (tens of microseconds), the same kind on both sides, which matters only
for tiny models.

Threads: the TFLite interpreter uses `threads` (spec.benchmark.threads). TensorFlow's thread
pools are sized once per process, at first use, to all cores, and cannot be changed afterwards;
so the source baseline is TensorFlow as it runs by default on this machine, and the speed-up
compares deployments, not kernels at equal thread counts.

Time bound: the timed runs stop at `runs` or once they have taken `max_seconds`
(spec.benchmark.maxSeconds, like benchmark_model's --max_secs), whichever comes first, but never
before MIN_TIMED_RUNS runs: a few runs still give a median. The warm-up runs and the first run
are not bounded (they are few, and cutting them would leave the timed runs cold), so a variant
costs at most about (1 + warmupRuns + MIN_TIMED_RUNS) runs' time or maxSeconds plus its warm-up.
A cut run is reported with `time_bounded` and the number of runs it made in `latency_ms.runs`.

Memory: `peak_memory_bytes` is the growth of the measuring process's peak resident set (Linux
VmHWM) from just before the interpreter is built to the end of the timed runs: the model's
pages the runtime touched (it is loaded from a file, as on a device), the tensor arena, the
XNNPACK packed weights and scratch buffers, at their peak, plus the runtime's one-time set-up
when it builds its first interpreter (about 2.5 MB measured here with ai-edge-litert 2.3; a
constant across variants, so differences between variants are the models' own). The peak mark
is reset first (/proc/self/clear_refs) so the imports' own peak does not hide it; where that is
not allowed the figure is the growth of the current resident set (no peak). It is None off
Linux. Measured in-process (isolate=False) it undercounts, as the interpreter can reuse memory
the process freed earlier.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tflite_operator.api.report_metrics import BenchmarkReport, LatencyStats
from tflite_operator.converter.litert_runner import feed, open_runner
from tflite_operator.converter.measurement import (
    latency_stats,
    reset_peak_memory,
    resident_memory,
    time_ms,
    timed_runs,
)
from tflite_operator.converter.ops import NotRunnableError, not_runnable_reason, op_summary
from tflite_operator.converter.source import SourceModel, first_line, import_tensorflow

__all__ = [
    "NotRunnableError",
    "benchmark_source",
    "benchmark_tflite",
]

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding tflite_operator/


def benchmark_tflite(
    tflite: bytes,
    signature_key: str,
    inputs: Mapping[str, np.ndarray],
    runs: int,
    warmup: int,
    threads: int,
    *,
    max_seconds: float | None = None,
    isolate: bool = True,
    timeout: float | None = None,
) -> BenchmarkReport:
    """Init time, first-run time, latency over `runs` (or max_seconds) after `warmup`, and peak
    memory growth.

    inputs: one float-domain sample (as from data.py); integer-typed inputs are quantized.
    A model this runtime cannot run (Select TF ops), or that crashes it, gives runnable=False
    with the reason. isolate=False measures in this process (see the module docstring).
    """
    reason = not_runnable_reason(op_summary(tflite))
    if reason:
        return BenchmarkReport(runnable=False, reason=reason, threads=threads)
    if not isolate:
        return _measure_here(
            tflite, None, signature_key, inputs, runs, warmup, threads, max_seconds
        )
    with tempfile.TemporaryDirectory(prefix="tflite-operator-bench-") as tmp:
        work = Path(tmp)
        (work / "model.tflite").write_bytes(tflite)
        np.savez(work / "inputs.npz", **{k: np.asarray(v) for k, v in inputs.items()})
        request = {
            "signature_key": signature_key,
            "runs": runs,
            "warmup": warmup,
            "max_seconds": max_seconds,
        }
        (work / "request.json").write_text(json.dumps({**request, "threads": threads}))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p
        )
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _WORKER, str(work)],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return BenchmarkReport(
                runnable=False,
                reason=f"the benchmark did not finish within {timeout:g} s; lower "
                f"spec.benchmark.runs",
                threads=threads,
            )
        result = work / "result.json"
        if proc.returncode == 0 and result.is_file():
            return BenchmarkReport.model_validate_json(result.read_text())
        return BenchmarkReport(
            runnable=False, reason=_worker_failure(proc.returncode, proc.stderr), threads=threads
        )


def _worker_failure(returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the LiteRT runtime crashed running this model ({name}); it cannot run here"
    lines = [line for line in stderr.splitlines() if line.strip()]
    return f"the benchmark failed: {lines[-1] if lines else f'exit code {returncode}'}"


# Runs in the child: imports nothing heavier than numpy and ai_edge_litert.
_WORKER = (
    "import sys; from tflite_operator.converter.benchmark import _worker; _worker(sys.argv[1])"
)


def _worker(directory: str) -> None:
    work = Path(directory)
    request = json.loads((work / "request.json").read_text())
    with np.load(work / "inputs.npz", allow_pickle=False) as data:
        inputs = {k: data[k] for k in data.files}
    report = _measure_here(
        None,
        work / "model.tflite",
        request["signature_key"],
        inputs,
        request["runs"],
        request["warmup"],
        request["threads"],
        request.get("max_seconds"),
    )
    (work / "result.json").write_text(report.model_dump_json())


def _measure_here(
    tflite: bytes | None,
    model_path: Path | None,
    signature_key: str,
    inputs: Mapping[str, np.ndarray],
    runs: int,
    warmup: int,
    threads: int,
    max_seconds: float | None = None,
) -> BenchmarkReport:
    """The measurement itself, in this process, from model bytes or a model file."""
    # Loaded before the baseline, so the runtime's shared library is not counted as the model's.
    import ai_edge_litert.interpreter  # noqa: F401

    peak_reset = reset_peak_memory()
    before = resident_memory()
    start = time.perf_counter()
    try:
        _, runner = open_runner(tflite, signature_key, threads, model_path=model_path)
    except NotRunnableError as e:
        return BenchmarkReport(runnable=False, reason=e.reason, threads=threads)
    init_ms = (time.perf_counter() - start) * 1000.0
    fed = feed(runner, inputs)

    def run() -> None:
        runner(**fed)

    try:
        # The first invoke pays for lazy work (XNNPACK weight packing, arena growth): reported
        # apart so it does not skew the steady-state percentiles.
        first_run_ms = time_ms(run, 1)[0]
        time_ms(run, warmup)
        latencies, time_bounded = timed_runs(run, runs, max_seconds)
    except (RuntimeError, ValueError) as e:
        return BenchmarkReport(
            runnable=False,
            reason=f"the LiteRT runtime failed running the model: {first_line(e)}",
            threads=threads,
        )
    after = resident_memory()

    peak_memory = None
    if before is not None and after is not None:
        grown = (after[1] if peak_reset else after[0]) - before[0]
        peak_memory = max(grown, 0)
    return BenchmarkReport(
        runnable=True,
        threads=threads,
        init_ms=init_ms,
        first_run_ms=first_run_ms,
        latency_ms=latency_stats(latencies),
        peak_memory_bytes=peak_memory,
        time_bounded=time_bounded,
    )


def benchmark_source(
    source: SourceModel,
    signature_key: str,
    inputs: Mapping[str, np.ndarray],
    runs: int,
    warmup: int,
    max_seconds: float | None = None,
) -> LatencyStats:
    """The source model's latency in TensorFlow, on the same inputs, with TF's own threads,
    bounded by max_seconds like a variant's (its `runs` says how many it made).

    At least one warm-up call is made whatever `warmup` says: the first call of a loaded
    concrete function builds its kernels and would dominate the statistics.
    """
    tf = import_tensorflow()
    fn = source.function(signature_key)
    tensors = {name: tf.constant(value) for name, value in inputs.items()}

    def run() -> None:
        fn(**tensors)

    time_ms(run, max(warmup, 1))
    return latency_stats(timed_runs(run, runs, max_seconds)[0])
