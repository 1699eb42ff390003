"""report.html: the Jinja2 template on a real run's report, and the charts' geometry."""

from __future__ import annotations

import re

import pytest

from tflite_operator.api.report import Report, VariantStatus
from tflite_operator.converter.report_html import (
    format_ms,
    format_percent,
    format_size,
    plots,
    render_html,
)
from tflite_operator.converter.report_plots import (
    CHAR_WIDTH,
    LABEL_HEIGHT,
    Axis,
    axis_for,
    bars,
    nice_step,
    pareto_front,
    scatter,
    size_unit,
)

# -- geometry ----------------------------------------------------------------------------------


def test_pareto_front_keeps_what_nothing_beats_on_both_axes():
    # (size, error): c is beaten by b (smaller and better), d ties a exactly.
    points = [(10.0, 0.5), (20.0, 0.1), (30.0, 0.2), (10.0, 0.5), (40.0, 0.01)]
    assert pareto_front(points) == [0, 3, 1, 4]
    assert pareto_front([(1.0, 1.0)]) == [0]
    assert pareto_front([]) == []
    # Same size, one more accurate: the other is dominated.
    assert pareto_front([(5.0, 0.3), (5.0, 0.2)]) == [1]


def test_linear_axis_maps_the_ends_and_ticks_at_round_values():
    axis = Axis(0.0, 10.0, 100.0, 300.0)
    assert axis(0.0) == 100.0 and axis(10.0) == 300.0 and axis(5.0) == 200.0
    assert axis.ticks() == [0.0, 5.0, 10.0]
    flipped = Axis(0.0, 10.0, 250.0, 20.0)  # SVG's y axis grows downwards
    assert flipped(10.0) == 20.0


def test_log_axis_for_errors_spanning_orders_of_magnitude():
    axis = axis_for([7e-9, 2.5e-3], 0.0, 600.0)
    assert axis.log and axis.lo == 1e-9 and axis.hi == 1e-2
    assert axis(1e-9) == 0.0 and axis(1e-2) == pytest.approx(600.0)
    assert axis(1e-5) == pytest.approx(600.0 * 4 / 7)
    assert axis.ticks()[0] == 1e-9 and axis.ticks()[-1] == pytest.approx(1e-2)
    assert not axis_for([4.0, 5.0], 0.0, 1.0).log
    with_zero = axis_for([0.0, 1e-6, 1e-2], 0.0, 400.0)  # an exact match on a log axis
    assert with_zero.log and with_zero(0.0) == 0.0 and with_zero.lo == 1e-6


def test_size_axis_ticks_are_round_in_kib():
    axis = axis_for([5_728.0, 13_040.0], 0.0, 400.0, size_unit(13_040.0))
    assert size_unit(13_040.0) == 1024.0 and size_unit(500.0) == 1.0
    assert size_unit(3 * 1024**2) == 1024.0**2
    assert all(t % 1024 == 0 for t in axis.ticks()), axis.ticks()
    assert nice_step(0.3) == 0.5 and nice_step(7.0) == 10.0 and nice_step(2.0) == 2.0


def test_scatter_marks_the_front_and_the_selected_point_and_lists_the_unmeasured():
    plot = scatter(
        "t",
        "size",
        "err",
        [("a", 100.0, 0.5), ("b", 200.0, 0.1), ("c", 300.0, 0.3), ("flex", 150.0, None)],
        selected="b",
    )
    by = {p.label: p for p in plot.points}
    assert {n for n, p in by.items() if p.on_front} == {"a", "b"}
    assert by["b"].selected and not by["a"].selected
    assert plot.missing == ["flex"]
    assert plot.left <= by["a"].px < by["b"].px < by["c"].px <= plot.right
    assert by["b"].py > by["a"].py  # lower error is drawn lower
    assert plot.front_path.startswith(f"M{by['a'].px:.1f},{by['a'].py:.1f}H{by['b'].px:.1f}")


def test_labels_of_crowded_points_do_not_overlap_and_stay_right_of_the_axis():
    # Sizes and errors as in a real all-variants run: dynamic, int8 and int16x8 crowd.
    values = [
        ("fp32", 13_040.0, 7.45e-9),
        ("fp16", 8_312.0, 2.08e-5),
        ("dynamic", 5_544.0, 5.73e-4),
        ("int8", 5_728.0, 2.54e-3),
        ("int16x8", 6_352.0, 5.94e-4),
    ]
    plot = scatter("t", "size", "err", values, selected="dynamic")

    def box(p):
        width = CHAR_WIDTH * len(p.label)
        x0 = p.lx if p.anchor == "start" else p.lx - width
        return (x0, p.ly - LABEL_HEIGHT + 2, x0 + width, p.ly + 2)

    boxes = [box(p) for p in plot.points]
    for i, a in enumerate(boxes):
        assert a[0] > plot.left, plot.points[i].label
        for b in boxes[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def test_bars_scale_to_the_largest_and_keep_the_order():
    rows = bars([("conv", "CONV_2D", 2.0), ("dense", "", 0.5), ("zero", "", 0.0)], 300.0)
    assert [b.label for b in rows] == ["conv", "dense", "zero"]
    assert rows[0].width == 300.0 and rows[1].width == 75.0 and rows[2].width == 1.0
    assert [b.y for b in rows] == [0, 16, 32]


def test_numbers_for_people():
    assert format_size(13_040) == "12.7 KiB" and format_size(None) == "—"
    assert format_ms(38.04321) == "38.04 ms" and format_ms(0.004671) == "0.0047 ms"
    assert format_ms(1234.5) == "1,234.50 ms"
    assert format_percent(0.96875) == "96.9 %"


# -- the template on a real run's report -------------------------------------------------------


def _svgs(html: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", html, re.S)


def test_real_report_has_two_scatter_plots_with_the_front_and_the_selection(local_report):
    html = render_html(local_report)
    selected = local_report.selected.name
    assert selected
    scatter_svgs = [s for s in _svgs(html) if 'aria-label="Size vs' in s]
    assert len(scatter_svgs) == 2
    converted = [v for v in local_report.variants if v.status == VariantStatus.CONVERTED]
    for svg, (plot, _, _) in zip(scatter_svgs, plots(local_report), strict=True):
        assert svg.count("<circle") == len(plot.points) == len(converted)
        # The front drawn is the front of the report's own numbers.
        expected = pareto_front([(p.x, p.y) for p in plot.points])
        on_front = {plot.points[i].label for i in expected}
        drawn = set(re.findall(r"<title>([\w-]+): [^<]*\(Pareto front\)", svg))
        assert drawn == on_front and drawn
        assert 'class="front-line"' in svg
        # Exactly one highlighted point, and it is the selected variant.
        assert len(re.findall(r'class="pt[^"]* sel"', svg)) == 1
        assert re.search(rf"<title>{selected}: [^<]*\(selected\)</title>", svg)
    assert f'<tr class="sel" id="variant-{selected}">' in html
    assert html.count('<tr class="sel"') == 1
    assert "<script" not in html


def test_autoescape_of_names_and_error_texts_from_the_run(local_report):
    report = local_report.model_copy(deep=True)
    hostile = "<script>alert('x')</script>"
    report.variants[0].error = f"converter said: {hostile}"
    report.variants[1].name = f"v{hostile}"
    report.name = f"digits {hostile}"
    html = render_html(report)
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert html.count("&lt;script&gt;") >= 4  # title, heading, variant name (x2+), error


def test_per_layer_errors_settings_and_accuracy_control_when_the_report_has_them(local_report):
    data = local_report.model_dump()
    int8 = next(v for v in data["variants"] if v["name"] == "int8")
    int8["layer_errors"] = [
        {"tensor": "sequential/conv2d/Relu;<b>", "op": "CONV_2D", "rmse_over_scale": 0.9},
        {"tensor": "sequential/dense/MatMul", "op": "FULLY_CONNECTED", "rmse_over_scale": 0.3},
    ]
    int8["converter_settings"] = {
        "optimizations": "[DEFAULT]",
        "inference_input_type": "int8",
        "denylisted_nodes": "sequential/conv2d/Relu",
    }
    int8["accuracy_control"] = {
        "float_layers": ["sequential/conv2d/Relu"],
        "budget": "maxOutputError 0.05",
        "error_before": 0.2,
        "error_after": 0.01,
        "size_cost_bytes": 2048,
        "met": True,
        "steps": 1,
    }
    int8["accuracy"]["task_accuracy"] = 0.9267
    int8["accuracy"]["min_snr_db"] = 31.25
    html = render_html(Report.model_validate(data))
    assert "<th>task accuracy</th>" in html and "<th>SNR dB</th>" in html
    assert '<td class="n">92.7 %</td>' in html and '<td class="n">31.2</td>' in html
    layer_svg = next(s for s in _svgs(html) if "per-layer error of int8" in s)
    assert layer_svg.count('class="bar"') == 2
    assert "sequential/conv2d/Relu;&lt;b&gt;" in layer_svg and "(CONV_2D)" in layer_svg
    widths = [float(w) for w in re.findall(r'class="bar"[^>]*width="([\d.]+)"', layer_svg)]
    assert widths[0] == pytest.approx(3 * widths[1])
    assert "<th>inference_input_type</th><td><code>int8</code></td>" in html
    assert "Budget met (maxOutputError 0.05) after 1 step(s)" in html
    assert "error 0.2 → 0.01; cost 2.0 KiB." in html
    # A real run without accuracyControl: no layer chart, but every converted variant's
    # settings (the converter fills them for each variant).
    plain = render_html(local_report)
    assert "per-layer error" not in plain
    assert plain.count("<h3>Converter settings</h3>") == len(local_report.variants)
