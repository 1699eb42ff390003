"""What a user sees on the terminal: no TensorFlow log lines unless --verbose, ETA, results."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from tflite_operator.console import LogProgress, eta_seconds, print_results
from tflite_operator.tf_logs import TensorFlowLogFilter, is_tensorflow_log

# Lines TensorFlow 2.21, the MLIR converter and LiteRT printed during `tflite-operator convert`
# on this machine (copied from a run, thread ids and times as they were).
TF_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795616154.042768   18305 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors.",
    "E0000 00:00:1795616158.523659   18305 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "W0000 00:00:1795616178.840069   20159 tf_tfl_flatbuffer_helpers.cc:364] Ignored "
    "output_format.",
    "I1125 14:10:59.123456  4242 loader.cc:236] Restoring SavedModel bundle.",
    "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]
OUR_LINES = [
    "[convert] step step=1 total=2 eta_s=3.0 detail=fp32: 13,040 B",
    '{"ts": 1.0, "event": "done", "stage": "fetch"}',
    "error (ConversionFailed): variant 'fp32' (none): the model uses TensorFlow ops ...",
    "Traceback (most recent call last):",
    "F0000 00:00:1795616158.523659   18305 check.cc:1] Check failed: the reason it aborts",
]


def test_tensorflow_lines_are_recognised_and_ours_are_not():
    assert [line for line in TF_LINES if not is_tensorflow_log(line)] == []
    assert [line for line in OUR_LINES if is_tensorflow_log(line)] == []


def test_an_mlir_diagnostic_block_is_dropped_up_to_its_blank_line():
    block = [
        'loc(callsite(fused["Cumprod:", "Cumprod@__inference_serve_6"])): error: '
        "'tf.Cumprod' op is neither a custom op nor a flex op",
        "error: failed while converting: 'main': ",
        "Some ops are not supported by the native TFLite runtime, you can enable TF kernels",
        "TF Select ops: Cumprod",
        "Details:",
        "\ttf.Cumprod(tensor<1x4xf32>, tensor<i32>) -> (tensor<1x4xf32>)",
        "",
    ]
    log_filter = TensorFlowLogFilter()
    kept = [line for line in [*block, *OUR_LINES] if log_filter.keep(line + "\n")]
    assert kept == OUR_LINES


def test_eta_is_the_mean_pace_times_the_steps_left():
    assert eta_seconds(6.0, 2, 5) == 9.0
    assert eta_seconds(6.0, 5, 5) == 0.0
    assert eta_seconds(0.0, 0, 5) is None


def test_plain_log_lines_carry_step_total_and_eta():
    out = io.StringIO()
    progress = LogProgress("plain", out)
    progress.begin("convert", "2 variant(s)", total=2)
    progress.step("convert", "fp32: 100 B")
    progress.step("convert", "int8: 50 B")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[convert] start detail=2 variant(s) total=2"
    assert lines[1].startswith("[convert] step step=1 total=2 eta_s=")
    assert lines[2] == "[convert] step step=2 total=2 eta_s=0.0 detail=int8: 50 B"


def _convert(model, calibration, out, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    args = ["--source", str(model), "--output", str(out), "--variant", "int8"]
    args += ["--calibration", str(calibration), "--runs", "2", "--warmup", "0"]
    args += ["--log-format", "plain", *extra]
    return subprocess.run(
        [sys.executable, "-m", "tflite_operator", "convert", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_tensorflow_logs_only_with_verbose(cnn_saved_model, calibration_npz, tmp_path):
    # int8: the quantizer prints its settings and LiteRT announces XNNPACK, on top of the
    # C++ lines TensorFlow writes at import: TensorFlow has something to say on any machine.
    quiet = _convert(cnn_saved_model, calibration_npz, tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    lines = [line for line in quiet.stderr.splitlines() if line.strip()]
    assert [line for line in lines if not line.startswith("[")] == []
    assert {"[convert] done", "[validate] done", "[benchmark] done"} <= {
        " ".join(line.split()[:2]) for line in lines
    }
    assert "selected: int8" in quiet.stdout

    verbose = _convert(cnn_saved_model, calibration_npz, tmp_path / "verbose", "--verbose")
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    tf_lines = [line for line in verbose.stderr.splitlines() if is_tensorflow_log(line)]
    assert any(line.startswith("fully_quantize:") for line in tf_lines), verbose.stderr[-3000:]
    assert len(tf_lines) >= 2
    assert "[convert] done" in verbose.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_results_are_a_table_plain_in_a_pipe_and_rich_on_a_terminal(local_report, monkeypatch):
    pipe = io.StringIO()
    print_results(local_report, stream=pipe)
    text = pipe.getvalue()
    assert text.splitlines()[0].split()[:3] == ["variant", "quant", "size"]
    assert "meets (selected)" in text and "─" not in text

    monkeypatch.setenv("COLUMNS", "160")
    terminal = _Terminal()
    print_results(local_report, extra={"int8": {"accuracy": "0.9"}}, stream=terminal)
    shown = terminal.getvalue()
    assert "━━━" in shown and "accuracy" in shown and "0.9" in shown  # rich's heavy rule
    assert "meets (selected)" in shown
    assert f"selected: {local_report.selected.name}" in shown

    monkeypatch.setenv("COLUMNS", "60")  # too narrow for every cell: plain text, not cut
    narrow = _Terminal()
    print_results(local_report, stream=narrow)
    assert narrow.getvalue() == text
