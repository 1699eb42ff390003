"""Run the benchmarks and, with --write, rewrite their sections of docs/benchmarks.md.

By default the quick ones run; `--only scale` runs the operator-at-scale benchmark (tens of
minutes, a control plane per size), `--only variants` ResNet50's five variants sequential vs
parallel (about ten minutes). Sections of benchmarks that did not run are kept.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from common import replace_section

HERE = Path(__file__).parent
# key -> (section title, script, runs by default)
BENCHMARKS = {
    "pipeline": ("Pipeline overhead", "pipeline_overhead.py", True),
    "latency": ("TFLite vs source latency", "latency_ratio.py", True),
    "reuse": ("Reuse across generations", "reuse_generations.py", False),
    "scale": ("Operator at scale", "operator_scale.py", False),
    "recurrent": ("Recurrent layers: which fixes convert", "recurrent_fixes.py", False),
    "variants": ("All variants, sequential vs parallel", "all_variants.py", False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", metavar="FILE", help="markdown file to (re)write")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(BENCHMARKS),
        help="run these (default: " + " ".join(k for k, b in BENCHMARKS.items() if b[2]) + ")",
    )
    args = parser.parse_args()
    keys = args.only or [k for k, b in BENCHMARKS.items() if b[2]]
    path = Path(args.write) if args.write else None
    text = path.read_text() if path and path.exists() else ""
    header = "\n".join([
        "# Benchmarks\n",
        f"Made by `make benchmarks` on {datetime.now(UTC):%Y-%m-%d}, "
        f"{platform.machine()}, {platform.processor() or 'cpu'}, Python "
        f"{platform.python_version()}. Ratios are measured in the same run, not against "
        "numbers from another machine. The latency table is why selection uses measured "
        "latency: dynamic-range models run their hybrid kernels slower than fp32 under XNNPACK "
        "on x86, though they are the smallest.\n",
    ])  # fmt: skip
    if args.only is None or not text:
        # The header describes the quick benchmarks: it is rewritten when they run.
        first = text.find("\n## ")
        text = header + ("" if first < 0 else text[first:])
    for key in keys:
        title, script, _ = BENCHMARKS[key]
        print(f"== {title} ({script})", flush=True)
        # stderr passes through: the long benchmarks report their progress there.
        out = subprocess.run(
            [sys.executable, str(HERE / script)], check=True, stdout=subprocess.PIPE, text=True
        ).stdout
        print(out, flush=True)
        table = "\n".join(line for line in out.splitlines() if not line.startswith("{"))
        if not table.lstrip().startswith("`python benchmarks/"):  # else it names its own command
            table = f"`python benchmarks/{script}`\n\n{table.strip()}"
        text = replace_section(text, title, table)
    if path:
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
