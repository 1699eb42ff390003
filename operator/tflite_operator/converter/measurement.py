"""The measuring primitives of benchmark.py: the timing loop, latency statistics, and the
process's resident memory (Linux /proc). Pure Python and numpy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tflite_operator.api.report_metrics import LatencyStats

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


def reset_peak_memory() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not permitted."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


MIN_TIMED_RUNS = 5


def timed_runs(
    fn: Callable[[], object],
    runs: int,
    max_seconds: float | None,
    *,
    min_runs: int = MIN_TIMED_RUNS,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[float], bool]:
    """(per-run latencies in ms, whether max_seconds cut the runs short of `runs`)."""
    times: list[float] = []
    start = clock()
    while len(times) < runs:
        before = clock()
        fn()
        after = clock()
        times.append((after - before) * 1000.0)
        over = max_seconds is not None and after - start >= max_seconds
        if over and len(times) >= min_runs and len(times) < runs:
            return times, True
    return times, False


def time_ms(fn: Callable[[], object], count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return times
