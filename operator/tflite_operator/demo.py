"""`make demo`: a real conversion on this machine, no cluster, nothing downloaded.

Trains a small CNN on scikit-learn's bundled digits (so accuracy means something), exports it
as a SavedModel, runs the same pipeline a converter Job runs with every variant, and adds
held-out accuracy per variant to the results table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tflite_operator.api.errors import ConversionError
from tflite_operator.api.manifest import parse_spec

DEMO_SEED = 7


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise SystemExit(
            "the demo needs scikit-learn: pip install 'tflite-operator[dev]' (make demo does)"
        ) from None
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]  # (n, 8, 8, 1) in [0, 1]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=DEMO_SEED, stratify=y
    )
    return x_train, x_test, y_train, y_test


def train_digits_model(export_dir: Path, epochs: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Train, export a SavedModel, and return (x_test, y_test, source accuracy)."""
    import tensorflow as tf

    x_train, x_test, y_train, y_test = _digits()
    tf.keras.utils.set_random_seed(DEMO_SEED)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(8, 8, 1), name="image"),
            tf.keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            tf.keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            tf.keras.layers.MaxPooling2D(),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(128, activation="relu"),
            tf.keras.layers.Dense(10, activation="softmax", name="probabilities"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    model.export(str(export_dir), verbose=False)
    return x_test, y_test, float(accuracy)


def held_out_accuracy(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    from tflite_operator.converter.validate import run_tflite

    outputs = run_tflite(tflite, "serving_default", [{"image": xi[None]} for xi in x])
    predictions = np.array([int(np.argmax(next(iter(o.values())))) for o in outputs])
    return float(np.mean(predictions == y))


def run_demo(out: Path, epochs: int, log_format: str) -> int:
    from tflite_operator.commands.common import report_failure, run_pipeline
    from tflite_operator.console import print_results

    out = out.resolve()
    model_dir = out / "digits_saved_model"
    outputs = out / "tflite"
    out.mkdir(parents=True, exist_ok=True)
    print(f"training a digits CNN for {epochs} epochs (scikit-learn's bundled data set)...")
    if model_dir.exists():
        import shutil

        shutil.rmtree(model_dir)
    x_test, y_test, source_accuracy = train_digits_model(model_dir, epochs)
    x_train = _digits()[0]
    calibration = out / "calibration.npz"
    np.savez(calibration, image=x_train[:200])
    held_out = out / "held_out.npz"
    np.savez(held_out, image=x_test)
    print(f"source model: held-out accuracy {source_accuracy:.4f}; converting...")

    spec = parse_spec(
        {
            "source": {"uri": str(model_dir)},
            "output": {"uri": str(outputs), "overwrite": True},
            "variants": [
                {"name": "fp32"},
                {"name": "fp16", "quantization": "float16"},
                {"name": "dynamic", "quantization": "dynamic-range"},
                {
                    "name": "int8",
                    "quantization": "int8",
                    "ioType": "int8",
                    "representativeDataset": {"uri": str(calibration), "samples": 200},
                },
                {
                    "name": "int16x8",
                    "quantization": "int16x8",
                    "representativeDataset": {"uri": str(calibration), "samples": 200},
                },
            ],
            "target": {"maxModelSizeBytes": 200_000, "maxLatencyMs": 5, "maxOutputError": 0.1},
            "benchmark": {"runs": 200, "warmupRuns": 20, "threads": 2},
            "validation": {"datasetUri": str(held_out), "samples": 200},
        }
    )
    try:
        outcome = run_pipeline("digits-demo", spec, None, log_format)
    except ConversionError as err:
        return report_failure(err)
    accuracy = {"source": {"accuracy": f"{source_accuracy:.4f}"}}
    for name, tflite in outcome.tflite.items():
        accuracy[name] = {"accuracy": f"{held_out_accuracy(tflite, x_test, y_test):.4f}"}
    print()
    print_results(outcome.report, extra=accuracy)
    print(f"\nreport: {outcome.report.report_uri} (and report.html beside it)")
    print(f"accuracy is on {len(y_test)} held-out digits; latency is p50 over 200 runs")
    if outcome.error:
        return report_failure(outcome.error)
    return 0


if __name__ == "__main__":
    sys.exit(run_demo(Path("demo-output"), 15, "auto"))
