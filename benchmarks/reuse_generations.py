"""Reuse across generations: MobileNetV2, generation 1 converts fp32, fp16 and dynamic-range;
generation 2 adds an int8 variant. Generation 2 runs twice into copies of generation 1's
outputs: with output.reuse (the default) and without, in the same run. Validation and
benchmark are off, so the table shows the conversion work that reuse saves.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from common import markdown_table, mobilenet_v2_saved_model

GEN1 = [
    {"name": "fp32"},
    {"name": "fp16", "quantization": "float16"},
    {"name": "dynamic", "quantization": "dynamic-range"},
]
GEN2 = [*GEN1, {"name": "int8", "quantization": "int8", "representativeDataset": {"samples": 8}}]


def run(model: Path, out: Path, work: Path, variants: list[dict], reuse: bool):
    from tflite_operator.api.manifest import parse_spec
    from tflite_operator.converter import pipeline

    spec = parse_spec(
        {
            "source": {"uri": str(model)},
            "output": {"uri": str(out), "overwrite": True, "reuse": reuse},
            "variants": variants,
            "benchmark": {"enabled": False},
            "validation": {"enabled": False},
        }
    )
    start = time.perf_counter()
    outcome = pipeline.run("reuse", spec, work)
    wall = time.perf_counter() - start
    reused = [v.name for v in outcome.report.variants if v.reused_from]
    return wall, outcome.report.timings_seconds.get("convert", 0.0), reused


def main() -> str:
    argparse.ArgumentParser(description=__doc__).parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model = mobilenet_v2_saved_model(tmp_path)
        gen1 = tmp_path / "gen1"
        wall, conv, _ = run(model, gen1, tmp_path / "w1", GEN1, reuse=True)
        rows.append(["generation 1 (3 variants)", f"{wall:.1f}", f"{conv:.1f}", "-"])
        for reuse in (False, True):
            out = tmp_path / f"gen2-{reuse}"
            shutil.copytree(gen1, out)
            wall, conv, reused = run(model, out, tmp_path / f"w2-{reuse}", GEN2, reuse)
            label = f"generation 2 (+int8), reuse {'on' if reuse else 'off'}"
            rows.append([label, f"{wall:.1f}", f"{conv:.1f}", ", ".join(reused) or "-"])
    return markdown_table(["MobileNetV2", "wall s", "convert stage s", "reused"], rows)


if __name__ == "__main__":
    print(main())
