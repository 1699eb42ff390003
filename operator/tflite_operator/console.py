"""Progress and results for people (rich, on a terminal) and for machines (log lines)."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from tflite_operator.api.report import Report
from tflite_operator.converter.progress import Progress


class LogProgress(Progress):
    """One line per event on stderr: `plain` for humans reading logs, `json` for collectors."""

    def __init__(self, fmt: str = "plain", stream: TextIO | None = None) -> None:
        self.fmt = fmt
        self.stream = stream or sys.stderr

    def _emit(self, event: str, stage: str, **fields: object) -> None:
        if self.fmt == "json":
            record = {"ts": round(time.time(), 3), "event": event, "stage": stage, **fields}
            line = json.dumps(record, default=str)
        else:
            extra = " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, ""))
            line = f"[{stage}] {event} {extra}".rstrip()
        print(line, file=self.stream, flush=True)

    def begin(self, stage: str, detail: str = "", total: int | None = None) -> None:
        self._emit("start", stage, detail=detail, total=total)

    def step(self, stage: str, detail: str = "") -> None:
        self._emit("step", stage, detail=detail)

    def end(self, stage: str, seconds: float, detail: str = "") -> None:
        self._emit("done", stage, seconds=round(seconds, 2), detail=detail)

    def warn(self, message: str) -> None:
        self._emit("warning", "-", message=message)


class RichProgress(Progress):
    """A spinner or bar per stage on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichBar
        from rich.table import Column

        self.console = Console(stderr=True)
        self.bar = RichBar(
            SpinnerColumn(),
            TextColumn(
                "[bold]{task.fields[stage]}", table_column=Column(min_width=9, no_wrap=True)
            ),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}", table_column=Column(ratio=1, overflow="ellipsis")),
            console=self.console,
            expand=True,
            transient=False,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def begin(self, stage: str, detail: str = "", total: int | None = None) -> None:
        self.tasks[stage] = self.bar.add_task(detail, total=total, stage=stage)

    def step(self, stage: str, detail: str = "") -> None:
        self.bar.update(self.tasks[stage], advance=1, description=detail)

    def end(self, stage: str, seconds: float, detail: str = "") -> None:
        task = self.tasks[stage]
        total = self.bar.tasks[task].total
        self.bar.update(task, total=total or 1, completed=total or 1)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {message}")


def results_table(report: Report, extra: dict[str, dict[str, str]] | None = None) -> str:
    """A plain-text table of the variants: what a user reads at the end of a run.

    `extra` adds columns per variant name (the demo adds held-out accuracy).
    """
    extra = extra or {}
    extra_cols = sorted({c for cols in extra.values() for c in cols})
    head = ["variant", "quant", "size", "ratio", "p50 ms", "speed-up", "max err", "target"]
    head += extra_cols
    rows = [head]
    src = report.source
    src_row = [
        "source",
        src.format,
        f"{src.size_bytes:,}",
        "1.0",
        f"{src.latency_ms.p50:.2f}" if src.latency_ms else "-",
        "1.0",
        "0",
        "",
    ] + [extra.get("source", {}).get(c, "") for c in extra_cols]
    rows.append(src_row)
    for v in report.variants:
        lat = v.benchmark.latency_ms if v.benchmark else None
        if v.status.value != "Converted":
            target = "failed"
        elif v.target is None:
            target = "-"
        else:
            target = v.target.verdict  # never "meets" for a variant this runtime could not run
        if v.name == report.selected.name:
            target += " (selected)"
        p50 = f"{lat.p50:.2f}" if lat else ("n/a" if v.benchmark else "-")
        rows.append(
            [
                v.name,
                v.quantization,
                f"{v.size_bytes:,}" if v.size_bytes else "-",
                f"{v.compression_ratio:.2f}" if v.compression_ratio else "-",
                p50,
                f"{v.benchmark.speedup_vs_source:.2f}"
                if v.benchmark and v.benchmark.speedup_vs_source
                else "-",
                f"{v.accuracy.max_abs_error:.3g}" if v.accuracy else "-",
                target,
            ]
            + [extra.get(v.name, {}).get(c, "") for c in extra_cols]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"selected: {report.selected.name or 'none'} ({report.selected.reason})")
    return "\n".join(line.rstrip() for line in lines)
