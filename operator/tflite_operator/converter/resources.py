"""What this process may use: CPUs and memory as the container's cgroup sees them, and how
many conversion workers fit in them.

A converter pod's limits are its cgroup's: `os.cpu_count()` and /proc/meminfo describe the
node, not the pod, so a worker count taken from them gets a 4 GiB pod OOM-killed on a 64-core
node. Both cgroup versions are read (v2 `cpu.max`/`memory.max`, v1 `cpu.cfs_quota_us` and
`memory.limit_in_bytes`), at the mount root, which is the container's own cgroup under
Kubernetes (cgroup namespaces on v2, the container's hierarchy bind-mounted on v1).

The parsing and the worker count are pure functions of the values read, tested with given
cgroup values; the readers around them only read files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tflite_operator.api.errors import SpecError

WORKERS_ENV = "TFLITE_CONVERT_WORKERS"
WORKERS_FIELD = f"--workers / {WORKERS_ENV}"
CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMINFO = Path("/proc/meminfo")
# cgroup v1 says "no limit" with a page-rounded LONG_MAX (9223372036854771712); anything this
# large is no limit.
_NO_LIMIT = 1 << 62

# A conversion worker's peak resident set: a fresh Python process with TensorFlow imported
# (0.62 GB measured here with TF 2.21), plus the converter's copies of the model (the loaded
# SavedModel, the MLIR module, the flatbuffer being built, calibration's float model with its
# statistics ops) and validation's loaded source and interpreter. ResNet50, a 207 MB SavedModel,
# converted alone in a fresh process: 1.62 GB peak for fp32, 1.88 GB for int8 with 100
# calibration samples, i.e. up to 6x the SavedModel; 7x leaves room for validation.
# benchmarks/all_variants.py reports the workers' measured peaks.
WORKER_BASE_BYTES = 640 * 1024**2
WORKER_BYTES_PER_SOURCE_BYTE = 7.0
# Below this a variant converts in seconds, and a worker's start-up (a fresh Python importing
# TensorFlow, ~5 s on a busy 2-core machine) costs more than the parallelism saves.
MIN_PARALLEL_SOURCE_BYTES = 8 * 1024**2
# Left free besides the parent and the workers: the benchmark's child process, page cache for
# the model files, and error in the estimate.
HEADROOM_FRACTION = 0.10


@dataclass(frozen=True)
class WorkerPlan:
    count: int
    reason: str  # why this many, for the log and the benchmark table


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 `cpu.max` ("max 100000" or "150000 100000") -> CPUs allowed, None if no quota."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    period = float(parts[1]) if len(parts) > 1 else 100000.0
    return float(parts[0]) / period if period > 0 else None


def parse_cfs_quota(quota: str, period: str) -> float | None:
    """cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` -> CPUs allowed; -1 is no quota."""
    q, p = int(quota.strip()), int(period.strip())
    return q / p if q > 0 and p > 0 else None


def parse_memory_limit(text: str) -> int | None:
    """`memory.max` (v2, "max" = none) or `memory.limit_in_bytes` (v1, huge = none)."""
    text = text.strip()
    if not text or text == "max":
        return None
    value = int(text)
    return None if value >= _NO_LIMIT else value


def parse_mem_available(meminfo: str) -> int | None:
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cpu_limit(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may use: its affinity mask, lowered by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = None
    if (text := _read(root / "cpu.max")) is not None:
        quota = parse_cpu_max(text)
    else:
        for d in ("cpu", "cpu,cpuacct"):
            q, p = _read(root / d / "cpu.cfs_quota_us"), _read(root / d / "cpu.cfs_period_us")
            if q is not None and p is not None:
                quota = parse_cfs_quota(q, p)
                break
    if quota is not None:
        # A quota of 1.5 CPUs lets two processes progress; rounding down would idle half a core.
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(cpus, 1)


def memory_limit(root: Path = CGROUP_ROOT) -> int | None:
    """The cgroup's memory limit in bytes, None when it has none (v2 first, then v1)."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        if (text := _read(path)) is not None:
            return parse_memory_limit(text)
    return None


def mem_available(meminfo: Path = MEMINFO) -> int | None:
    """Memory the kernel could hand out now without swapping (no cgroup limit to go by)."""
    text = _read(meminfo)
    return parse_mem_available(text) if text is not None else None


def worker_estimate(source_bytes: int) -> int:
    """Peak resident bytes of one conversion worker for a source model of this size."""
    return int(WORKER_BASE_BYTES + WORKER_BYTES_PER_SOURCE_BYTE * source_bytes)


def plan_workers(
    *,
    jobs: int,
    cpus: int,
    memory_bytes: int | None,
    parent_bytes: int,
    per_worker_bytes: int,
    source_bytes: int,
    requested: int | None = None,
) -> WorkerPlan:
    """How many worker processes convert `jobs` variants.

    requested (--workers / TFLITE_CONVERT_WORKERS) wins over the automatic count, capped only
    by the number of variants. Otherwise: at most one per CPU, and as many as fit in the
    memory left after the parent process (which keeps TensorFlow and the source model loaded)
    and a headroom; no workers for a small model. 1 means convert in this process, as without
    workers: a single worker would only add a second TensorFlow to the memory.
    """
    if requested is not None:
        return WorkerPlan(max(1, min(requested, jobs)), f"{requested} requested")
    if jobs <= 1:
        return WorkerPlan(1, "one variant")
    if source_bytes < MIN_PARALLEL_SOURCE_BYTES:
        return WorkerPlan(1, "a small model converts faster than a worker starts")
    by_cpu = max(1, cpus)
    if memory_bytes is None:
        by_memory, memory_text = by_cpu, "memory unknown"
    else:
        free = memory_bytes * (1 - HEADROOM_FRACTION) - parent_bytes
        by_memory = max(1, int(free // max(per_worker_bytes, 1)))
        memory_text = (
            f"{_gib(memory_bytes)} memory, {_gib(parent_bytes)} in use, "
            f"~{_gib(per_worker_bytes)} a worker"
        )
    count = min(jobs, by_cpu, by_memory)
    bound = "variants" if count == jobs else "CPUs" if count == by_cpu else "memory"
    return WorkerPlan(count, f"bounded by {bound}: {by_cpu} CPU(s), {memory_text}")


def requested_workers(flag: int | None, environ: Mapping[str, str] = os.environ) -> int | None:
    """The override: the CLI flag, else the environment variable, else None (automatic)."""
    if flag is not None:
        value: object = flag
    elif (text := environ.get(WORKERS_ENV, "").strip()) != "":
        value = text
    else:
        return None
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if count < 1:
        raise SpecError(f"{WORKERS_FIELD} is {value!r}; give a whole number of processes, >= 1")
    return count


def plan(source_bytes: int, jobs: int, requested: int | None) -> WorkerPlan:
    """The worker count for this machine or pod, from what the cgroup allows."""
    from tflite_operator.converter.measurement import resident_memory

    memory, rss = memory_limit(), resident_memory()
    parent = rss[0] if rss else 0
    if memory is None:
        # No limit: what the machine has free now, which this process's memory is not part of.
        memory, parent = mem_available(), 0
    return plan_workers(
        jobs=jobs,
        cpus=cpu_limit(),
        memory_bytes=memory,
        parent_bytes=parent,
        per_worker_bytes=worker_estimate(source_bytes),
        source_bytes=source_bytes,
        requested=requested,
    )


def _gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB"
