"""Parallel conversion: worker count from cgroup values (pure), and real worker processes
converting the small CNN, one of them killed on purpose."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tflite_operator.api.errors import ConversionFailedError, SpecError
from tflite_operator.api.manifest import parse_spec
from tflite_operator.api.spec_variant import Variant
from tflite_operator.converter import pipeline, resources
from tflite_operator.converter.resources import WORKERS_ENV, requested_workers
from tflite_operator.converter.worker_tasks import Check, Task
from tflite_operator.converter.workers import run_tasks

GIB = 1024**3
BIG = 200 * 1024**2  # a ResNet50-sized SavedModel


# --- cgroup values and the worker count (pure) -------------------------------------------------


def test_cgroup_files_parse_in_both_versions(tmp_path: Path):
    assert resources.parse_cpu_max("max 100000\n") is None
    assert resources.parse_cpu_max("150000 100000\n") == 1.5
    assert resources.parse_cfs_quota("-1", "100000") is None
    assert resources.parse_cfs_quota("200000", "100000") == 2.0
    assert resources.parse_memory_limit("max\n") is None
    assert resources.parse_memory_limit("4294967296\n") == 4 * GIB
    assert resources.parse_memory_limit("9223372036854771712\n") is None  # v1's "no limit"

    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("100000 100000\n")
    (v2 / "memory.max").write_text(f"{4 * GIB}\n")
    assert resources.cpu_limit(v2) == 1
    assert resources.memory_limit(v2) == 4 * GIB

    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "memory").mkdir()
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("150000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "memory" / "memory.limit_in_bytes").write_text(f"{8 * GIB}\n")
    # 1.5 CPUs lets two processes progress; never more than the affinity mask allows.
    assert resources.cpu_limit(v1) == min(2, len(os.sched_getaffinity(0)))
    assert resources.memory_limit(v1) == 8 * GIB

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 100 kB\nMemAvailable:    2048 kB\n")
    assert resources.mem_available(meminfo) == 2048 * 1024
    assert resources.memory_limit(tmp_path / "none") is None


def plan(**kw) -> resources.WorkerPlan:
    args = dict(
        jobs=5,
        cpus=2,
        memory_bytes=None,
        parent_bytes=GIB,
        per_worker_bytes=resources.worker_estimate(BIG),
        source_bytes=BIG,
    )
    return resources.plan_workers(**(args | kw))


def test_worker_count_is_bounded_by_cpus_memory_and_variants():
    assert resources.worker_estimate(BIG) == pytest.approx(1.99 * GIB, rel=0.01)
    assert plan(memory_bytes=24 * GIB).count == 2  # the CPUs bound it
    assert plan(cpus=16, memory_bytes=24 * GIB).count == 5  # one per variant
    # The default converter pod, 4 GiB: the parent holds 1 GiB, one ~2 GiB worker would fit
    # but two would not, so it converts in-process.
    four = plan(cpus=16, memory_bytes=4 * GIB)
    assert four.count == 1 and "bounded by memory" in four.reason
    assert plan(cpus=16, memory_bytes=8 * GIB).count == 3
    assert plan(cpus=16, memory_bytes=GIB // 2).count == 1  # never zero
    assert plan(jobs=1, memory_bytes=24 * GIB).count == 1
    assert plan(source_bytes=150_000, memory_bytes=24 * GIB).count == 1  # small model
    # An explicit count wins over memory and model size, capped by the variants only.
    assert plan(memory_bytes=GIB, requested=2, source_bytes=1).count == 2
    assert plan(requested=9).count == 5


def test_worker_override_from_flag_or_environment():
    assert requested_workers(None, {}) is None
    assert requested_workers(None, {"TFLITE_CONVERT_WORKERS": "3"}) == 3
    assert requested_workers(1, {"TFLITE_CONVERT_WORKERS": "3"}) == 1  # the flag wins
    for bad in ("0", "two", "-1"):
        with pytest.raises(SpecError, match="TFLITE_CONVERT_WORKERS is '"):
            requested_workers(None, {"TFLITE_CONVERT_WORKERS": bad})
    with pytest.raises(SpecError, match="--workers / TFLITE_CONVERT_WORKERS is 0"):
        requested_workers(0, {})


# --- real worker processes ---------------------------------------------------------------------


def tasks_for(calibration, validation_samples, check: bool) -> list[Task]:
    ck = Check({"serving_default": validation_samples}, 0.1, 1) if check else None
    return [
        Task(0, Variant(name="fp32"), None, ck),
        Task(
            1,
            Variant(name="int8", quantization="int8", io_type="int8"),
            {"serving_default": calibration},
            ck,
        ),
    ]


def test_two_workers_give_the_same_models_and_figures_as_one(
    cnn_source, calibration, validation_samples
):
    here = run_tasks(cnn_source, tasks_for(calibration, validation_samples, True), 1)
    pids: set[int] = set()
    parallel = run_tasks(
        cnn_source,
        tasks_for(calibration, validation_samples, True),
        2,
        on_dispatch=lambda task, pid: pids.add(pid),
    )
    assert len(pids) == 2 and os.getpid() not in pids  # really two other processes
    for index in (0, 1):
        a, b = here[index], parallel[index]
        assert a.error is None and b.error is None
        assert a.converted.tflite == b.converted.tflite
        assert a.converted.ops == b.converted.ops
        assert a.converted.input_types == b.converted.input_types
        assert a.checks == b.checks  # the same AccuracyReport, measured in the worker
        assert b.peak_rss_bytes > 300 * 1024**2  # a worker holds TensorFlow
    assert here[1].converted.input_types == ["int8"]


def test_a_killed_worker_fails_its_variant_with_the_cause_and_the_others_convert(
    cnn_source, calibration, validation_samples
):
    def kill_int8(task: Task, pid: int) -> None:
        if task.variant.name == "int8":
            os.kill(pid, signal.SIGKILL)  # as the OOM killer does

    finished: list[int] = []
    results = run_tasks(
        cnn_source,
        tasks_for(calibration, validation_samples, False),
        2,
        lambda r: finished.append(r.index),
        on_dispatch=kill_int8,
    )
    assert sorted(finished) == [0, 1]  # progress heard of both: nothing hung
    assert results[0].error is None and results[0].converted is not None
    err = results[1].error
    assert isinstance(err, ConversionFailedError)
    assert err.message.startswith(
        "variant 'int8' (int8): the conversion worker process was killed by SIGKILL while "
        "converting or validating it: most likely the kernel's OOM killer"
    )
    assert "OOM killer" in err.message and "TFLITE_CONVERT_WORKERS=1" in err.message
    assert "spec.job.resources.limits.memory" in err.message


def test_pipeline_with_workers_reports_what_it_reports_in_one_process(
    cnn_saved_model, calibration_npz, tmp_path
):
    def report(workers_: int):
        spec = parse_spec(
            {
                "source": {"uri": str(cnn_saved_model)},
                "output": {"uri": str(tmp_path / f"out{workers_}")},
                "variants": [
                    {"name": "fp32"},
                    {"name": "dynamic", "quantization": "dynamic-range"},
                ],
                "validation": {"samples": 8, "datasetUri": str(calibration_npz)},
                "benchmark": {"enabled": False},
            }
        )
        return pipeline.run("w", spec, tmp_path / f"work{workers_}", worker_count=workers_)

    one, two = report(1), report(2)
    for a, b in zip(one.report.variants, two.report.variants, strict=True):
        assert (a.name, a.status, a.size_bytes, a.error) == (
            b.name,
            b.status,
            b.size_bytes,
            b.error,
        )
        assert a.accuracy == b.accuracy
    assert one.tflite == two.tflite
    assert one.error is None and two.error is None
    assert "convert" in two.report.timings_seconds


def test_requested_workers_reach_the_pool(monkeypatch, cnn_source):
    monkeypatch.setenv(WORKERS_ENV, "2")
    assert resources.plan(cnn_source.size_bytes, 5, requested_workers(None)).count == 2
    monkeypatch.delenv(WORKERS_ENV)
    # Automatic: the 150 kB CNN converts faster than a worker starts.
    assert resources.plan(cnn_source.size_bytes, 5, requested_workers(None)).count == 1


def test_a_script_without_a_main_guard_still_gets_working_workers(cnn_saved_model, tmp_path):
    # spawn re-runs the parent's main script in each worker unless told otherwise: a script
    # without `if __name__ == "__main__":` would then run again there and kill the worker.
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from tflite_operator.api.spec_variant import Variant\n"
        "from tflite_operator.converter.source import load_source\n"
        "from tflite_operator.converter.worker_tasks import Task\n"
        "from tflite_operator.converter.workers import run_tasks\n"
        f"model = load_source(__import__('pathlib').Path({str(cnn_saved_model)!r}))\n"
        "tasks = [Task(0, Variant(name='a'), None), "
        "Task(1, Variant(name='b', quantization='float16'), None)]\n"
        "results = run_tasks(model, tasks, 2)\n"
        "print(sorted((i, r.error is None) for i, r in results.items()))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[(0, True), (1, True)]"
