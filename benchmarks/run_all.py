"""Run every benchmark and, with --write, rewrite docs/benchmarks.md with the tables."""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = [
    ("Pipeline overhead", "pipeline_overhead.py"),
    ("TFLite vs source latency", "latency_ratio.py"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", metavar="FILE", help="markdown file to (re)write")
    args = parser.parse_args()
    sections = [
        "# Benchmarks\n",
        f"Made by `make benchmarks` on {datetime.now(UTC):%Y-%m-%d}, "
        f"{platform.machine()}, {platform.processor() or 'cpu'}, Python "
        f"{platform.python_version()}. Ratios are measured in the same run, not against "
        "numbers from another machine. The latency table is why selection uses measured "
        "latency: dynamic-range models run their hybrid kernels slower than fp32 under XNNPACK "
        "on x86, though they are the smallest.\n",
    ]
    for title, script in BENCHMARKS:
        print(f"== {title} ({script})", flush=True)
        out = subprocess.run(
            [sys.executable, str(HERE / script)], check=True, capture_output=True, text=True
        ).stdout
        print(out, flush=True)
        table = "\n".join(line for line in out.splitlines() if not line.startswith("{"))
        sections.append(f"## {title}\n\n`python benchmarks/{script}`\n\n{table.strip()}\n")
    if args.write:
        Path(args.write).write_text("\n".join(sections))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
