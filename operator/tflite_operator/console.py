"""Progress and results for people (rich, on a terminal) and for machines (log lines)."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from tflite_operator.api.report import Report, VariantReport
from tflite_operator.converter.progress import Progress


class LogProgress(Progress):
    """One line per event on stderr: `plain` for humans reading logs, `json` for collectors.

    Steps of a stage with a known total carry `step`, `total` and an `eta_s` estimate (the
    mean time per step so far times the steps left)."""

    def __init__(self, fmt: str = "plain", stream: TextIO | None = None) -> None:
        self.fmt = fmt
        self._stream = stream
        self._stages: dict[str, tuple[float, int | None, int]] = {}  # start, total, done

    @property
    def stream(self) -> TextIO:
        # Looked up per line: the CLI points sys.stderr elsewhere while TensorFlow runs.
        return self._stream or sys.stderr

    def _emit(self, event: str, stage: str, **fields: object) -> None:
        if self.fmt == "json":
            record = {"ts": round(time.time(), 3), "event": event, "stage": stage, **fields}
            line = json.dumps(record, default=str)
        else:
            extra = " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, ""))
            line = f"[{stage}] {event} {extra}".rstrip()
        print(line, file=self.stream, flush=True)

    def begin(self, stage: str, detail: str = "", total: int | None = None) -> None:
        self._stages[stage] = (time.monotonic(), total, 0)
        self._emit("start", stage, detail=detail, total=total)

    def step(self, stage: str, detail: str = "") -> None:
        start, total, done = self._stages.get(stage, (time.monotonic(), None, 0))
        done += 1
        self._stages[stage] = (start, total, done)
        if total is None:
            self._emit("step", stage, detail=detail)
            return
        eta = eta_seconds(time.monotonic() - start, done, total)
        self._emit("step", stage, step=done, total=total, eta_s=eta, detail=detail)

    def end(self, stage: str, seconds: float, detail: str = "") -> None:
        self._emit("done", stage, seconds=round(seconds, 2), detail=detail)

    def warn(self, message: str) -> None:
        self._emit("warning", "-", message=message)


def eta_seconds(elapsed: float, done: int, total: int) -> float | None:
    """Seconds left at the mean pace so far; None before the first step."""
    if done <= 0 or total <= 0:
        return None
    return round(elapsed / done * max(total - done, 0), 1)


class RichProgress(Progress):
    """A bar per stage on a terminal: steps done of the total, elapsed time and time left."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
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
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.description}", table_column=Column(ratio=1, overflow="ellipsis")),
            console=self.console,
            expand=True,
            transient=False,
            # A step can take a minute (int16x8 on a big model): estimate the pace over the
            # whole stage, not rich's default 30 s window, or the ETA goes blank.
            speed_estimate_period=3600,
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


def _target_cell(report: Report, v: VariantReport) -> str:
    if v.status.value != "Converted":
        text = "failed"
    elif v.target is None:
        text = "-"
    else:
        text = v.target.verdict  # never "meets" for a variant this runtime could not run
    if v.name == report.selected.name:
        text += " (selected)"
    return text


def result_rows(
    report: Report, extra: dict[str, dict[str, str]] | None = None
) -> tuple[list[str], list[list[str]]]:
    """The header and one row per model (the source first): what a user reads at the end.

    `extra` adds columns per variant name (the demo adds held-out accuracy)."""
    extra = extra or {}
    extra_cols = sorted({c for cols in extra.values() for c in cols})
    head = ["variant", "quant", "size", "ratio", "p50 ms", "speed-up", "max err", "target"]
    src = report.source
    rows = [
        [
            "source",
            src.format,
            f"{src.size_bytes:,}",
            "1.0",
            f"{src.latency_ms.p50:.2f}" if src.latency_ms else "-",
            "1.0",
            "0",
            "",
        ]
        + [extra.get("source", {}).get(c, "") for c in extra_cols]
    ]
    for v in report.variants:
        lat = v.benchmark.latency_ms if v.benchmark else None
        speedup = v.benchmark.speedup_vs_source if v.benchmark else None
        rows.append(
            [
                v.name,
                v.quantization,
                f"{v.size_bytes:,}" if v.size_bytes else "-",
                f"{v.compression_ratio:.2f}" if v.compression_ratio else "-",
                f"{lat.p50:.2f}" if lat else ("n/a" if v.benchmark else "-"),
                f"{speedup:.2f}" if speedup else "-",
                f"{v.accuracy.max_abs_error:.3g}" if v.accuracy else "-",
                _target_cell(report, v),
            ]
            + [extra.get(v.name, {}).get(c, "") for c in extra_cols]
        )
    return head + extra_cols, rows


def _selected_line(report: Report) -> str:
    line = f"selected: {report.selected.name or 'none'} ({report.selected.reason})"
    reused = [v for v in report.variants if v.reused_from]
    if reused:
        names = ", ".join(v.name for v in reused)
        line += f"\nreused, not converted: {names} (from {reused[0].reused_from})"
    return line


def results_table(report: Report, extra: dict[str, dict[str, str]] | None = None) -> str:
    """The results as plain text: for logs, pipes and files."""
    head, rows = result_rows(report, extra)
    rows = [head, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(_selected_line(report))
    return "\n".join(line.rstrip() for line in lines)


def print_results(
    report: Report, extra: dict[str, dict[str, str]] | None = None, stream: TextIO | None = None
) -> None:
    """The results table on stdout: a rich table on a terminal, plain text otherwise."""
    stream = stream or sys.stdout
    if not stream.isatty():
        print(results_table(report, extra), file=stream)
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream)
    head, rows = result_rows(report, extra)
    plain = results_table(report, extra)
    if console.width < max(len(line) for line in plain.splitlines()) + 3 * len(head):
        print(plain, file=stream)  # a narrow terminal: rich would cut the cells short
        return
    table = Table(*head, box=box.SIMPLE_HEAVY, title=f"{report.name}: results")
    table.title_justify = "left"
    numeric = {"size", "ratio", "p50 ms", "speed-up", "max err"}
    for column in table.columns:
        column.no_wrap = True
        if column.header in numeric:
            column.justify = "right"
    colour = {"misses": "yellow", "failed": "red", "unverified": "magenta"}
    for row in rows:
        target = row[7]
        cells = list(row)
        for word, c in colour.items():
            if target.startswith(word):
                cells[7] = f"[{c}]{target}[/]"
        table.add_row(*cells, style="bold green" if "(selected)" in target else None)
    console.print(table)
    console.print(_selected_line(report), markup=False, highlight=False)
