"""Convert variants in parallel worker processes, and validate each as soon as it is converted.

Why processes: one TFLite conversion keeps about one core busy (the MLIR passes and the
calibration are mostly single-threaded), so five variants in a row leave a second core idle.
Why spawn, not fork: TensorFlow's thread pools and locks do not survive a fork of a process that
has used them. Each worker opens the source from the local SavedModel once (lazily, as the
parent does) and converts the variants it is given one at a time; calibration and validation
samples travel as numpy arrays.

The pool is small and hand-made rather than a ProcessPoolExecutor: the executor cannot say
which task a dead worker held (the OOM killer's SIGKILL breaks the whole executor), and here a
dead worker must become a failed variant that names the cause, while the others go on.

Validation rides along: a worker that converted a variant compares it with the source right
away, so int16x8's slow reference kernels validate while other variants still convert.
Benchmarks do not: they stay in the parent, one at a time, after every worker has exited, so no
other process competes for the cores while latency is measured.

How many workers: resources.plan (cores, cgroup memory), overridden by --workers or
TFLITE_CONVERT_WORKERS; 1 converts in this process, as before workers existed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import sys
import types
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from tflite_operator.api.errors import ConversionError, ConversionFailedError
from tflite_operator.api.report_metrics import SignatureInfo
from tflite_operator.api.spec_variant import Quantization, Variant
from tflite_operator.converter import resources
from tflite_operator.converter.source import SourceModel
from tflite_operator.converter.worker_tasks import Result, Task, execute

# Longest first, so the slow variants do not start last and leave a core idle at the end:
# calibration runs the model ~100 times, and int16x8 then validates on reference kernels.
_COST = {Quantization.INT16X8: 3, Quantization.INT8: 2}


@dataclass(frozen=True)
class _SourceRef:
    """What a worker needs to reopen the source: paths and signatures, no TensorFlow object."""

    path: Path
    format: str
    signatures: list[SignatureInfo]
    size_bytes: int
    export_dir: Path

    def open(self) -> SourceModel:
        return SourceModel(
            path=self.path,
            format=self.format,
            signatures=self.signatures,
            size_bytes=self.size_bytes,
            export_dir=self.export_dir,
        )


def run_tasks(
    model: SourceModel,
    tasks: list[Task],
    workers: int,
    on_result: Callable[[Result], None] = lambda r: None,
    *,
    on_dispatch: Callable[[Task, int], None] = lambda t, pid: None,
) -> dict[int, Result]:
    """Every task's result by index; on_result is called as each finishes (for progress).

    workers <= 1 runs in this process. on_dispatch(task, worker pid) is called when a task is
    handed to a worker process (progress, and the tests that kill a worker on purpose).
    """
    results: dict[int, Result] = {}

    def finish(result: Result) -> None:
        results[result.index] = result
        on_result(result)

    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            finish(execute(model, task))
        return results

    ref = _SourceRef(model.path, model.format, model.signatures, model.size_bytes, model.export_dir)
    pending = deque(sorted(tasks, key=lambda t: -_COST.get(t.variant.quantization, 1)))
    ctx = multiprocessing.get_context("spawn")
    pool: list[_Worker] = []
    try:
        pool = [_Worker.start(ctx, ref) for _ in range(min(workers, len(tasks)))]
        while pending or any(w.task for w in pool):
            for worker in pool:
                if worker.task is None and pending:
                    worker.give(pending.popleft())
                    on_dispatch(worker.task, worker.pid)
            busy = [w for w in pool if w.task is not None]
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    task = worker.task
                    result = worker.collect()
                    if result is None:  # died holding a task: that variant fails, others go on
                        assert task is not None
                        pool.remove(worker)
                        worker.stop()
                        message = death_message(task.variant, worker.process.exitcode)
                        finish(Result(index=task.index, error=ConversionFailedError(message)))
                        if not pool and pending:
                            pool.append(_Worker.start(ctx, ref))
                    else:
                        finish(result)
    except BaseException:
        # SIGTERM (TerminatedError) or Ctrl-C: the pod's grace period has no time to wait for
        # conversions to finish.
        for worker in pool:
            worker.process.kill()
        raise
    finally:
        for worker in pool:
            worker.stop()
    return results


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    task: Task | None = None

    @classmethod
    def start(cls, ctx: multiprocessing.context.SpawnContext, ref: _SourceRef) -> _Worker:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(child, ref), daemon=True)
        with _main_hidden():
            process.start()
        child.close()
        return cls(process=process, conn=parent)

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def give(self, task: Task) -> None:
        self.task = task
        # A worker that died (at start-up) breaks the pipe; its sentinel then reports it.
        with contextlib.suppress(OSError):
            self.conn.send(task)

    def collect(self) -> Result | None:
        """The finished task's result, or None when the worker died before sending one."""
        self.task = None
        try:
            # A result sent just before an exit is still in the pipe: read it first.
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        self.process.join(timeout=5)
        return None

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # already dead
            self.conn.send(None)
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Start a worker without the parent's __main__ module.

    spawn re-runs the parent's main script in the child, so that objects defined there can be
    unpickled; a script calling pipeline.run without an `if __name__ == "__main__":` guard would
    then run again in every worker and kill it. A worker needs only this package, so it is
    shown an empty __main__ while spawn takes its notes (start() reads it synchronously).
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def death_message(variant: Variant, exitcode: int | None) -> str:
    """Why a worker died holding this variant, and what to change."""
    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with code {exitcode}"
    if exitcode == -signal.SIGKILL:
        limit = resources.memory_limit()
        memory = f"{limit / 1024**3:.1f} GiB" if limit else "the machine's memory"
        cause = (
            f"most likely the kernel's OOM killer (the converter's memory limit is {memory}); "
            f"raise spec.job.resources.limits.memory, or convert one variant at a time with "
            f"{resources.WORKERS_FIELD}=1"
        )
    elif how.startswith("was killed"):
        cause = (
            "the TensorFlow converter crashed on this model; other quantizations may convert, "
            f"and {resources.WORKERS_FIELD}=1 reproduces it in one process for a bug report"
        )
    else:
        cause = "its error is in the log above (stderr)"
    return (
        f"variant {variant.name!r} ({variant.quantization}): the conversion worker process "
        f"{how} while converting or validating it: {cause}"
    )


def _serve(conn: Connection, ref: _SourceRef) -> None:
    """A worker's life: open the source once, then run tasks until told to stop (None)."""
    from tflite_operator.converter.measurement import resident_memory

    # Ctrl-C reaches the whole process group: the parent handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    model = ref.open()
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent went away
            return
        if task is None:
            return
        try:
            result = execute(model, task)
        except Exception as err:  # not a ConversionError: a bug, reported on the variant
            result = Result(
                index=task.index,
                error=ConversionError(
                    f"variant {task.variant.name!r}: internal error in the conversion worker: "
                    f"{type(err).__name__}: {err}"
                ),
            )
        rss = resident_memory()
        result.peak_rss_bytes = rss[1] if rss else None
        conn.send(result)
