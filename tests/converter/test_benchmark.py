"""Latency statistics (pure) and real benchmark runs on the small CNN."""

from __future__ import annotations

import numpy as np
import pytest

from tflite_operator.api.spec_variant import Variant
from tflite_operator.converter.benchmark import _worker_failure, benchmark_source, benchmark_tflite
from tflite_operator.converter.convert import convert_variant
from tflite_operator.converter.measurement import MIN_TIMED_RUNS, latency_stats, timed_runs
from tflite_operator.converter.source import load_source


def test_latency_stats_known_numbers():
    stats = latency_stats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert stats.runs == 10
    assert stats.mean == pytest.approx(5.5)
    assert stats.std == pytest.approx(np.sqrt(8.25))  # population std
    assert stats.p50 == pytest.approx(5.5)
    assert stats.p90 == pytest.approx(9.1)  # linear interpolation between ranks
    assert stats.p99 == pytest.approx(9.91)


def test_latency_stats_single_run_and_empty():
    stats = latency_stats([2.5])
    assert (stats.p50, stats.p99, stats.std, stats.runs) == (2.5, 2.5, 0.0, 1)
    with pytest.raises(ValueError, match="at least one run"):
        latency_stats([])


@pytest.mark.parametrize(("quantization", "io_type"), [("none", "float32"), ("int8", "int8")])
def test_benchmark_tflite_sane(convert_cnn, digits, quantization, io_type):
    inputs = {"image": digits[0][:1]}
    report = benchmark_tflite(
        convert_cnn(quantization, io_type).tflite,
        "serving_default",
        inputs,
        runs=30,
        warmup=3,
        threads=2,
    )
    assert report.runnable and report.reason is None
    assert report.threads == 2
    lat = report.latency_ms
    assert lat.runs == 30
    assert 0 < lat.p50 <= lat.p90 <= lat.p99
    assert lat.p50 < 50  # a 38k-weight CNN on an 8x8 image
    assert report.init_ms > 0 and report.first_run_ms > 0
    assert report.peak_memory_bytes is not None and report.peak_memory_bytes >= 0
    assert report.speedup_vs_source is None  # the pipeline fills it


def test_benchmark_flex_model_not_runnable(flex_saved_model):
    source = load_source(flex_saved_model)
    tflite = convert_variant(source, Variant(name="flex", ops="select-tf-ops"), None).tflite
    report = benchmark_tflite(
        tflite, "serving_default", {"x": np.ones((1, 4), np.float32)}, 5, 1, 2
    )
    assert not report.runnable
    assert "Select TF ops (Cumprod)" in report.reason
    assert report.latency_ms is None


def test_benchmark_source(cnn_source, digits):
    stats = benchmark_source(cnn_source, "serving_default", {"image": digits[0][:1]}, 20, 2)
    assert stats.runs == 20
    assert 0 < stats.p50 <= stats.p90 <= stats.p99


def test_in_process_measurement_agrees_on_shape(convert_cnn, digits):
    report = benchmark_tflite(
        convert_cnn("dynamic-range").tflite,
        "serving_default",
        {"image": digits[0][:1]},
        runs=10,
        warmup=1,
        threads=1,
        isolate=False,
    )
    assert report.runnable and report.latency_ms.runs == 10 and report.threads == 1


def test_isolated_peak_memory_covers_the_model(convert_cnn, digits):
    """In a fresh process the growth includes at least the fp32 weights XNNPACK packs."""
    tflite = convert_cnn("none").tflite
    report = benchmark_tflite(tflite, "serving_default", {"image": digits[0][:1]}, 5, 1, 2)
    assert report.peak_memory_bytes > len(tflite)


def test_worker_failure_reasons():
    assert "crashed" in _worker_failure(-11, "") and "SIGSEGV" in _worker_failure(-11, "")
    assert _worker_failure(1, "Traceback...\nValueError: bad input\n") == (
        "the benchmark failed: ValueError: bad input"
    )


class FakeClock:
    """Each run takes `step` seconds of this clock. The run loop's rule is what is tested; real
    time would make the test slow and its outcome depend on the machine's load."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        return self.now

    def run(self) -> None:
        self.now += self.step


def test_timed_runs_stop_at_max_seconds_but_not_before_the_minimum():
    clock = FakeClock(1.24)  # int16x8 ResNet50 on reference kernels
    times, bounded = timed_runs(clock.run, 50, 10.0, clock=clock)
    assert bounded and len(times) == 9  # 9 x 1.24 s is the first past 10 s
    assert times == pytest.approx([1240.0] * 9)

    slow = FakeClock(30.0)
    times, bounded = timed_runs(slow.run, 50, 10.0, clock=slow)
    assert bounded and len(times) == MIN_TIMED_RUNS == 5

    fast = FakeClock(0.01)
    assert timed_runs(fast.run, 50, 10.0, clock=fast) == (pytest.approx([10.0] * 50), False)
    # Reaching the bound on the last run is not a cut: every requested run was made.
    exact = FakeClock(2.0)
    assert timed_runs(exact.run, 5, 10.0, clock=exact)[1] is False
    assert timed_runs(slow.run, 3, 10.0, clock=slow) == (pytest.approx([30000.0] * 3), False)
    assert len(timed_runs(slow.run, 7, None, clock=slow)[0]) == 7  # no bound


def test_benchmark_reports_a_time_bounded_run_and_its_run_count(convert_cnn, digits):
    # Any run takes longer than a nanosecond: the bound cuts at the minimum, on any machine.
    report = benchmark_tflite(
        convert_cnn("none").tflite,
        "serving_default",
        {"image": digits[0][:1]},
        runs=50,
        warmup=1,
        threads=1,
        max_seconds=1e-9,
    )
    assert report.runnable and report.time_bounded
    assert report.latency_ms.runs == MIN_TIMED_RUNS
    assert report.model_dump(by_alias=True)["timeBounded"] is True
    unbounded = benchmark_tflite(
        convert_cnn("none").tflite, "serving_default", {"image": digits[0][:1]}, 8, 1, 1
    )
    assert not unbounded.time_bounded and unbounded.latency_ms.runs == 8
