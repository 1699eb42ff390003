"""report.html: one self-contained page (inline CSS and SVG, no scripts, nothing fetched)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from tflite_operator.api.report import Report, VariantReport

_BAR_HEIGHT = 22
_LABEL_WIDTH = 120
_CHART_WIDTH = 640


def _bar_chart(
    title: str, rows: list[tuple[str, float | None, bool]], unit: str, fmt: Callable[[float], str]
) -> str:
    """Horizontal bars; rows are (label, value or None when unmeasured, highlighted)."""
    known = [v for _, v, _ in rows if v is not None]
    top = max(known) if known else 1.0
    top = top or 1.0
    bar_space = _CHART_WIDTH - _LABEL_WIDTH - 110
    height = _BAR_HEIGHT * len(rows) + 10
    parts = [
        f"<figure><figcaption>{escape(title)}</figcaption>"
        f'<svg role="img" aria-label="{escape(title)}" width="{_CHART_WIDTH}" '
        f'height="{height}" viewBox="0 0 {_CHART_WIDTH} {height}">'
    ]
    for i, (label, value, highlight) in enumerate(rows):
        y = 5 + i * _BAR_HEIGHT
        parts.append(
            f'<text x="{_LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
        )
        if value is None:
            parts.append(f'<text x="{_LABEL_WIDTH}" y="{y + 15}" class="na">not measured</text>')
            continue
        width = max(1.0, bar_space * value / top)
        cls = "bar sel" if highlight else "bar"
        parts.append(
            f'<rect class="{cls}" x="{_LABEL_WIDTH}" y="{y + 2}" width="{width:.1f}" '
            f'height="{_BAR_HEIGHT - 6}"/>'
            f'<text x="{_LABEL_WIDTH + width + 6:.1f}" y="{y + 15}">{escape(fmt(value))} '
            f"{escape(unit)}</text>"
        )
    parts.append("</svg></figure>")
    return "".join(parts)


def _p50(v: VariantReport) -> float | None:
    if v.benchmark and v.benchmark.latency_ms:
        return v.benchmark.latency_ms.p50
    return None


def _cell(value: object) -> str:
    return "—" if value is None else escape(str(value))


def render_html(report: Report) -> str:
    selected = report.selected.name
    src = report.source
    size_rows: list[tuple[str, float | None, bool]] = [("source", float(src.size_bytes), False)]
    lat_rows: list[tuple[str, float | None, bool]] = [
        ("source (TF)", src.latency_ms.p50 if src.latency_ms else None, False)
    ]
    err_rows: list[tuple[str, float | None, bool]] = []
    for v in report.variants:
        hl = v.name == selected
        size_rows.append((v.name, float(v.size_bytes) if v.size_bytes else None, hl))
        lat_rows.append((v.name, _p50(v), hl))
        err_rows.append((v.name, v.accuracy.max_abs_error if v.accuracy else None, hl))

    table = [
        "<table><thead><tr><th>variant</th><th>quantization</th><th>status</th>"
        "<th>size (B)</th><th>ratio</th><th>I/O types</th><th>p50 ms</th><th>p99 ms</th>"
        "<th>speed-up</th><th>max abs err</th><th>top-1</th><th>target</th>"
        "</tr></thead><tbody>"
    ]
    for v in report.variants:
        lat = v.benchmark.latency_ms if v.benchmark else None
        acc = v.accuracy
        meets = v.target.describe() if v.target else "—"
        io = f"{','.join(v.input_types)} → {','.join(v.output_types)}" if v.input_types else None
        status = v.status.value + (f": {v.error}" if v.error else "")
        row_cls = ' class="sel"' if v.name == selected else ""
        table.append(
            f"<tr{row_cls}><td>{escape(v.name)}</td><td>{escape(v.quantization)}</td>"
            f"<td>{escape(status)}</td><td>{_cell(v.size_bytes)}</td>"
            f"<td>{_cell(v.compression_ratio)}</td><td>{_cell(io)}</td>"
            f"<td>{_cell(round(lat.p50, 3) if lat else None)}</td>"
            f"<td>{_cell(round(lat.p99, 3) if lat else None)}</td>"
            f"<td>{_cell(v.benchmark.speedup_vs_source if v.benchmark else None)}</td>"
            f"<td>{_cell(f'{acc.max_abs_error:.4g}' if acc else None)}</td>"
            f"<td>{_cell(acc.top1_agreement if acc else None)}</td>"
            f"<td>{escape(meets)}</td></tr>"
        )
    table.append("</tbody></table>")

    timings = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings_seconds.items())
    versions = ", ".join(f"{k} {v}" for k, v in report.versions.items())
    charts = "".join(
        [
            _bar_chart("Model size", size_rows, "B", lambda x: f"{x:,.0f}"),
            _bar_chart("p50 latency", lat_rows, "ms", lambda x: f"{x:.2f}"),
            _bar_chart("Max absolute output error vs source", err_rows, "", lambda x: f"{x:.3g}"),
        ]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>TFLite conversion report: {escape(report.name)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}}
table{{border-collapse:collapse;font-size:.9rem}}td,th{{border:1px solid #ccc;padding:.3rem .5rem}}
tr.sel{{background:#e8f4e8}}figure{{margin:1.5rem 0}}figcaption{{font-weight:600}}
svg text{{font-size:12px;fill:#222}}.bar{{fill:#7a9cc6}}.bar.sel{{fill:#3a8a3a}}
.na{{fill:#999;font-style:italic}}code{{background:#f4f4f4;padding:0 .2rem}}
</style></head><body>
<h1>TFLite conversion report: {escape(report.name)}</h1>
<p>Source <code>{escape(src.uri)}</code> ({escape(src.format)}, {src.size_bytes:,} B).
Outputs in <code>{escape(report.output_uri)}</code>.</p>
<p><strong>Selected:</strong> {escape(selected or "none")}: {escape(report.selected.reason)}</p>
{"".join(table)}
{charts}
<p>Stage timings: {escape(timings)}.</p>
<p>Versions: {escape(versions)}. Report schema {escape(report.schema_version)},
created {escape(report.created_at)}.</p>
</body></html>
"""
