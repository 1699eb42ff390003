"""report.html: one self-contained page (inline CSS and SVG, no scripts, nothing fetched).

Rendered from templates/report.html.j2 by Jinja2 with autoescape on: every value from the
report (variant names, error texts from the converter) is escaped by the engine, not by hand.
The template reads fields other parts of the report schema add over time defensively
(`{% if v.layer_errors %}`): a missing attribute is simply undefined.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from jinja2 import ChainableUndefined, Environment, PackageLoader, Undefined, select_autoescape

from tflite_operator.api.report import Report, VariantReport, VariantStatus
from tflite_operator.api.units import human_size
from tflite_operator.converter.report_plots import ScatterPlot, bars, scatter

TEMPLATE = "report.html.j2"
LAYER_CHART_WIDTH = 360


def _missing(value: object) -> bool:
    # Undefined: a field this version of the report schema does not have.
    return value is None or isinstance(value, Undefined)


def format_ms(value: float | None) -> str:
    """Milliseconds for people: two decimals, or two significant digits under 0.1 ms."""
    if _missing(value):
        return "—"
    if value == 0 or abs(value) >= 0.1:
        return f"{value:,.2f} ms"
    return f"{value:.2g} ms"


def format_size(value: int | float | None) -> str:
    return "—" if _missing(value) else human_size(int(value))


def format_percent(fraction: float | None) -> str:
    """0.9734 -> '97.3 %'."""
    return "—" if _missing(fraction) else f"{fraction * 100:.1f} %"


def format_number(value: float | None, digits: int = 3) -> str:
    """Significant digits, for errors and ratios that span orders of magnitude."""
    if _missing(value):
        return "—"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return f"{value:.{digits}g}"


def format_axis(value: float, kind: str) -> str:
    if kind == "size":
        return format_size(value)
    if kind == "ms":
        return format_ms(value).removesuffix(" ms")
    return format_number(value, 2)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tflite_operator.converter", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        # A field another branch of the schema has not added yet reads as undefined, however
        # deep the lookup (v.accuracy_control.float_layers), instead of failing the report.
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ms=format_ms,
        size=format_size,
        pct=format_percent,
        num=format_number,
        axis=format_axis,
    )
    return env


def _p50(v: VariantReport) -> float | None:
    lat = v.benchmark.latency_ms if v.benchmark else None
    return lat.p50 if lat else None


def plots(report: Report) -> list[tuple[ScatterPlot, str, str]]:
    """Size vs error and size vs latency, with the kinds of each axis (for tick labels)."""
    converted = [v for v in report.variants if v.status == VariantStatus.CONVERTED]
    selected = report.selected.name
    size_err = [
        (v.name, v.size_bytes, v.accuracy.max_abs_error if v.accuracy else None) for v in converted
    ]
    size_lat = [(v.name, v.size_bytes, _p50(v)) for v in converted]
    return [
        (
            scatter("Size vs error", "size", "max abs error vs source", size_err, selected),
            "size",
            "num",
        ),
        (scatter("Size vs latency", "size", "p50 latency (ms)", size_lat, selected), "size", "ms"),
    ]


def layer_charts(report: Report) -> dict[str, list[Any]]:
    """Per quantized variant with per-layer errors: its bars, worst first as reported."""
    charts = {}
    for v in report.variants:
        errors = getattr(v, "layer_errors", None) or []
        rows = [(e.tensor, e.op or "", e.rmse_over_scale) for e in errors]
        if rows:
            charts[v.name] = bars(rows, LAYER_CHART_WIDTH)
    return charts


def render_html(report: Report) -> str:
    template = _environment().get_template(TEMPLATE)
    variants = report.variants
    # Columns for metrics some runs have (labelled data, classifier outputs): shown when any
    # variant has a value.
    extra_metrics = [
        (key, label, fmt)
        for key, label, fmt in (
            ("task_accuracy", "task accuracy", "pct"),
            ("accuracy_drop_points", "drop (points)", "num"),
            ("min_snr_db", "SNR dB", "num"),
            ("max_kl_divergence", "KL", "num"),
            ("top5_agreement", "top-5", "pct"),
        )
        if any(getattr(v.accuracy, key, None) is not None for v in variants if v.accuracy)
    ]
    return template.render(
        report=report,
        src=report.source,
        selected=report.selected.name,
        plots=plots(report),
        layer_charts=layer_charts(report),
        layer_chart_width=LAYER_CHART_WIDTH,
        extra_metrics=extra_metrics,
    )
