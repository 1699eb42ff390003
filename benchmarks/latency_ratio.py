"""(b) TFLite vs source latency per variant: MobileNetV2 converted to each variant and
benchmarked by the pipeline, against the SavedModel in TensorFlow on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import markdown_table, mobilenet_v2_saved_model


def main() -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calibration-samples", type=int, default=20)
    args = parser.parse_args()

    from tflite_operator.api.manifest import parse_spec
    from tflite_operator.converter import pipeline

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model = mobilenet_v2_saved_model(tmp_path)
        calib = {"samples": args.calibration_samples}
        spec = parse_spec(
            {
                "source": {"uri": str(model)},
                "output": {"uri": str(tmp_path / "out")},
                "variants": [
                    {"name": "fp32"},
                    {"name": "fp16", "quantization": "float16"},
                    {"name": "dynamic", "quantization": "dynamic-range"},
                    {"name": "int8", "quantization": "int8", "representativeDataset": calib},
                ],
                "benchmark": {"runs": args.runs, "warmupRuns": 5, "threads": args.threads},
                "validation": {"enabled": False},
            }
        )
        report = pipeline.run("latency", spec, tmp_path).report
    src = report.source.latency_ms
    rows = [
        [
            "source (TensorFlow)",
            f"{report.source.size_bytes / 1e6:.1f}",
            f"{src.p50:.2f}" if src else "-",
            "1.00",
        ]
    ]
    for v in report.variants:
        lat = v.benchmark.latency_ms if v.benchmark else None
        rows.append(
            [
                v.name,
                f"{(v.size_bytes or 0) / 1e6:.1f}",
                f"{lat.p50:.2f}" if lat else "n/a",
                f"{v.benchmark.speedup_vs_source:.2f}"
                if v.benchmark and v.benchmark.speedup_vs_source
                else "-",
            ]
        )
    table = markdown_table(["MobileNetV2 224x224", "size MB", "p50 ms", "speed-up vs source"], rows)
    text = (
        f"{table}\n\n{args.runs} runs, {args.threads} threads; source latency is the "
        "SavedModel's serving function in TensorFlow on the same input.\n"
    )
    print(text)
    print(json.dumps(report.timings_seconds))
    return text


if __name__ == "__main__":
    main()
