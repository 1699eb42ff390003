"""Latency and memory of a converted model (LiteRT), and the source model's latency (TensorFlow).

What is timed: one call from Python with inputs already in memory, measured with
time.perf_counter. For TFLite that is the signature runner's call (copy inputs in, invoke,
copy outputs out); for the source it is the signature's concrete function. Both include a
little Python overhead (tens of microseconds), the same kind on both sides, which matters only
for tiny models.

Threads: the TFLite interpreter uses `threads` (spec.benchmark.threads). TensorFlow's thread
pools are sized once per process, at first use, to all cores, and cannot be changed afterwards;
so the source baseline is TensorFlow as it runs by default on this machine, and the speed-up
compares deployments, not kernels at equal thread counts.

Memory: `peak_memory_bytes` is the growth of this process's peak resident set (Linux VmHWM)
from just before the interpreter is built to the end of the timed runs: the model buffer, the
tensor arena, the XNNPACK packed weights and scratch buffers, at their peak. The peak mark is
reset first (/proc/self/clear_refs) so earlier work in the process does not hide it; where that
is not allowed the figure is the growth of the current resident set instead (no peak). Memory
freed earlier in the process and reused by the interpreter is not counted, so the figure can
be an undercount, never an overcount of what the interpreter itself touched.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tflite_operator.api.report import BenchmarkReport, LatencyStats
from tflite_operator.converter.ops import NotRunnableError, not_runnable_reason, op_summary
from tflite_operator.converter.source import SourceModel, import_tensorflow
from tflite_operator.converter.validate import feed, open_runner

__all__ = [
    "NotRunnableError",
    "benchmark_source",
    "benchmark_tflite",
    "latency_stats",
    "resident_memory",
]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def latency_stats(samples_ms: Sequence[float]) -> LatencyStats:
    """Mean, population standard deviation and percentiles (linear interpolation between the
    closest ranks, numpy's default) of per-run latencies in milliseconds.
    """
    values = np.asarray(list(samples_ms), dtype=np.float64)
    if values.size == 0:
        raise ValueError("latency_stats needs at least one run")
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return LatencyStats(
        mean=float(values.mean()),
        std=float(values.std()),
        p50=float(p50),
        p90=float(p90),
        p99=float(p99),
        runs=int(values.size),
    )


def resident_memory() -> tuple[int, int] | None:
    """(current RSS, peak RSS) in bytes from /proc/self/status, or None off Linux."""
    try:
        fields = dict(
            line.split(":", 1) for line in _STATUS.read_text().splitlines() if ":" in line
        )
        return _kib(fields["VmRSS"]), _kib(fields["VmHWM"])
    except (OSError, KeyError, ValueError):
        return None


def _kib(value: str) -> int:
    return int(value.strip().split()[0]) * 1024


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not permitted."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _time_ms(fn: object, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def benchmark_tflite(
    tflite: bytes,
    signature_key: str,
    inputs: Mapping[str, np.ndarray],
    runs: int,
    warmup: int,
    threads: int,
) -> BenchmarkReport:
    """Init time, first-run time, latency over `runs` after `warmup`, and peak memory growth.

    inputs: one float-domain sample (as from data.py); integer-typed inputs are quantized.
    A model this runtime cannot run (Select TF ops) gives runnable=False with the reason.
    """
    reason = not_runnable_reason(op_summary(tflite))
    if reason:
        return BenchmarkReport(runnable=False, reason=reason, threads=threads)

    peak_reset = _reset_peak()
    before = resident_memory()
    start = time.perf_counter()
    try:
        _, runner = open_runner(tflite, signature_key, threads)
    except NotRunnableError as e:
        return BenchmarkReport(runnable=False, reason=e.reason, threads=threads)
    init_ms = (time.perf_counter() - start) * 1000.0
    fed = feed(runner, inputs)

    def run() -> None:
        runner(**fed)

    # The first invoke pays for lazy work (XNNPACK weight packing, arena growth): reported
    # apart so it does not skew the steady-state percentiles.
    first_run_ms = _time_ms(run, 1)[0]
    _time_ms(run, warmup)
    latencies = _time_ms(run, runs)
    after = resident_memory()

    peak_memory = None
    if before is not None and after is not None:
        # With the peak reset, VmHWM is the peak since then; otherwise only the RSS growth.
        grown = (after[1] if peak_reset else after[0]) - before[0]
        peak_memory = max(grown, 0)
    return BenchmarkReport(
        runnable=True,
        threads=threads,
        init_ms=init_ms,
        first_run_ms=first_run_ms,
        latency_ms=latency_stats(latencies),
        peak_memory_bytes=peak_memory,
    )


def benchmark_source(
    source: SourceModel,
    signature_key: str,
    inputs: Mapping[str, np.ndarray],
    runs: int,
    warmup: int,
) -> LatencyStats:
    """The source model's latency in TensorFlow, on the same inputs, with TF's own threads.

    At least one warm-up call is made whatever `warmup` says: the first call of a loaded
    concrete function builds its kernels and would dominate the statistics.
    """
    tf = import_tensorflow()
    fn = source.function(signature_key)
    tensors = {name: tf.constant(value) for name, value in inputs.items()}

    def run() -> None:
        fn(**tensors)

    _time_ms(run, max(warmup, 1))
    return latency_stats(_time_ms(run, runs))
