"""Which fixes convert a Keras 3 LSTM, measured through the pipeline (the figures that
converter/known_failures.py quotes in its TensorList message).

A small LSTM (10 steps x 4 features, 64 units) built in code: as a SavedModel and as a .keras
file, with and without unroll=True, each variant converted, validated against TensorFlow and
benchmarked as `tflite-operator convert` would. Prints a markdown table. Run it with this
worktree's operator/ on PYTHONPATH (the venv's editable install may point at another checkout).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import markdown_table

from tflite_operator.api.errors import ConversionError
from tflite_operator.api.manifest import parse_spec
from tflite_operator.converter import pipeline

STEPS, FEATURES, UNITS = 10, 4, 64


def build(directory: Path, unroll: bool) -> tuple[Path, Path]:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((STEPS, FEATURES), name="seq")
    hidden = keras.layers.LSTM(UNITS, unroll=unroll)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="y")(hidden))
    stem = "unrolled" if unroll else "lstm"
    model.export(str(directory / stem), verbose=False)
    model.save(directory / f"{stem}.keras")
    return directory / stem, directory / f"{stem}.keras"


def run(source: Path, ops: str, shapes: dict | None, work: Path) -> list[list[str]]:
    variants = [
        {"name": "fp32", "ops": ops},
        {"name": "dynamic", "quantization": "dynamic-range", "ops": ops},
        {"name": "int8", "quantization": "int8", "ops": ops},
    ]
    spec = {
        "source": {"uri": str(source), **({"inputShapes": shapes} if shapes else {})},
        "output": {"uri": str(work / "out" / source.name / ops), "overwrite": True},
        "variants": variants,
        "benchmark": {"runs": 30, "warmupRuns": 3, "threads": 1},
        "validation": {"samples": 8},
    }
    try:
        outcome = pipeline.run("lstm", parse_spec(spec), work / "work")
    except ConversionError as err:
        return [["-", f"no: {err.message[:60]}", "", "", ""]]
    rows = []
    for v in outcome.report.variants:
        bench = v.benchmark
        runs = bench is not None and bench.latency_ms is not None
        rows.append([
            v.name,
            f"{v.size_bytes:,} B" if v.size_bytes else f"no: {why(v.error or '')}",
            "yes" if runs else ("no (Flex)" if v.size_bytes else ""),
            f"{bench.latency_ms.p50:.3f}" if runs else "",
            f"{v.accuracy.max_abs_error:.2g}" if v.accuracy else "",
        ])  # fmt: skip
    return rows


def why(error: str) -> str:
    """The known failure a message reports, in a few words (the message itself is long)."""
    if "crashes TensorFlow's calibrator" in error:
        return "refused, the calibrator would crash"
    if "TensorList of dynamic shape" in error:
        return "TensorList of dynamic shape"
    return error[:60]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        saved, keras_file = build(work, unroll=False)
        unrolled, _ = build(work, unroll=True)
        shapes = {"seq": [1, STEPS, FEATURES]}
        cases = [
            ("SavedModel, builtins", saved, "builtins", None),
            ("SavedModel + inputShapes (batch 1)", saved, "builtins", shapes),
            (".keras + inputShapes (batch 1)", keras_file, "builtins", shapes),
            ("unroll=True, SavedModel", unrolled, "builtins", None),
            ("SavedModel, select-tf-ops", saved, "select-tf-ops", None),
        ]
        rows = []
        for label, source, ops, case_shapes in cases:
            print(f"{label}...", file=sys.stderr, flush=True)
            rows += [[label, *row] for row in run(source, ops, case_shapes, work)]
    header = ["fix", "variant", "converts: size", "runs here", "p50 ms", "max abs err"]
    print(f"Keras 3 LSTM, {STEPS} steps x {FEATURES} features, {UNITS} units; 30 runs, 1 thread.\n")
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
