"""(a) Pipeline overhead: one fp32 variant of MobileNetV2 through the whole pipeline
(validation and benchmark off) against a bare TFLiteConverter.from_saved_model().convert()
plus a file write, alternating in the same run. Target: ratio at most 1.10.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import markdown_table, median, mobilenet_v2_saved_model

TARGET_RATIO = 1.10


def bare(saved_model: Path, out: Path) -> float:
    import tensorflow as tf

    start = time.perf_counter()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    (out / "bare.tflite").write_bytes(converter.convert())
    return time.perf_counter() - start


def pipeline(saved_model: Path, out: Path, workdir: Path) -> float:
    from tflite_operator.api.manifest import parse_spec
    from tflite_operator.converter import pipeline as conv_pipeline

    spec = parse_spec(
        {
            "source": {"uri": str(saved_model)},
            # reuse off: every repeat must convert, not copy the previous repeat's model.
            "output": {"uri": str(out / "pipeline"), "overwrite": True, "reuse": False},
            "variants": [{"name": "fp32"}],
            "benchmark": {"enabled": False},
            "validation": {"enabled": False},
        }
    )
    start = time.perf_counter()
    conv_pipeline.run("overhead", spec, workdir)
    return time.perf_counter() - start


def main() -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model = mobilenet_v2_saved_model(tmp_path)
        # One untimed run of each pays the one-off TensorFlow start-up costs.
        bare(model, tmp_path)
        pipeline(model, tmp_path, tmp_path)
        bare_s, pipe_s = [], []
        for i in range(args.repeats):
            # Alternate the order so drift in machine load hits both sides alike.
            if i % 2:
                pipe_s.append(pipeline(model, tmp_path, tmp_path))
                bare_s.append(bare(model, tmp_path))
            else:
                bare_s.append(bare(model, tmp_path))
                pipe_s.append(pipeline(model, tmp_path, tmp_path))
    ratio = median(pipe_s) / median(bare_s)
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    table = markdown_table(
        ["MobileNetV2 fp32", "median s", "runs (s)"],
        [
            [
                "bare TFLiteConverter + write",
                f"{median(bare_s):.2f}",
                ", ".join(f"{s:.2f}" for s in bare_s),
            ],
            [
                "tflite-operator pipeline",
                f"{median(pipe_s):.2f}",
                ", ".join(f"{s:.2f}" for s in pipe_s),
            ],
        ],
    )
    text = (
        f"{table}\n\nratio pipeline/bare: **{ratio:.3f}** ({verdict} the target {TARGET_RATIO})\n"
    )
    print(text)
    return text


if __name__ == "__main__":
    main()
