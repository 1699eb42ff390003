"""Shared set-up for the benchmarks: MobileNetV2 and ResNet50 SavedModels built in code (no
download)."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def mobilenet_v2_saved_model(directory: Path) -> Path:
    """MobileNetV2 at 224x224 with random weights (`weights=None`): real size, real ops."""
    import tensorflow as tf

    path = directory / "mobilenet_v2"
    if not (path / "saved_model.pb").exists():
        tf.keras.utils.set_random_seed(0)
        model = tf.keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
        model.export(str(path), verbose=False)
    return path


def resnet50_saved_model(directory: Path) -> Path:
    """ResNet50 at 224x224 with random weights (`weights=None`): 25.6M weights, a 207 MB
    SavedModel, the model of issue 10's measurements."""
    import tensorflow as tf

    path = directory / "resnet50"
    if not (path / "saved_model.pb").exists():
        tf.keras.utils.set_random_seed(0)
        tf.keras.applications.ResNet50(weights=None).export(str(path), verbose=False)
    return path


def load_average() -> str:
    """The 1-minute load average: the figures are only as quiet as the machine was."""
    return f"{os.getloadavg()[0]:.1f}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def replace_section(markdown: str, title: str, body: str) -> str:
    """`markdown` with the `## title` section's body replaced (or the section appended); the
    other sections stay as they are, so one benchmark can rewrite its table alone."""
    heading = f"## {title}\n"
    start = markdown.find(heading)
    if start < 0:
        before = f"{markdown.rstrip()}\n\n" if markdown.strip() else ""
        return f"{before}{heading}\n{body.strip()}\n"
    end = markdown.find("\n## ", start + len(heading))
    rest = "" if end < 0 else markdown[end:]
    return f"{markdown[:start]}{heading}\n{body.strip()}\n{rest}"
