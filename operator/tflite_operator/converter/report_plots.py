"""Geometry of the report's charts: Pareto fronts, axis scales, point and bar positions.

Pure functions on numbers; the template only draws what these return (inline SVG, no scripts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower is better on both),
    ordered by x. Ties: a point equal to another on both axes is on the front with it."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (ox <= x and oy <= y) and (ox < x or oy < y)
            for j, (ox, oy) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], points[i][1]))


@dataclass(frozen=True)
class Axis:
    """Maps data values onto [start, end] pixels, linear or log10; ticks at round values."""

    lo: float
    hi: float
    start: float
    end: float
    log: bool = False
    unit: float = 1.0  # ticks are round in this unit (1024 for KiB)

    def __call__(self, value: float) -> float:
        lo, hi, v = self.lo, self.hi, value
        if self.log:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(max(value, self.lo))
        if hi == lo:
            return (self.start + self.end) / 2
        return self.start + (v - lo) / (hi - lo) * (self.end - self.start)

    def ticks(self) -> list[float]:
        if self.log:
            first, last = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            return [10.0**e for e in range(first, last + 1) if self.lo <= 10.0**e <= self.hi]
        lo, hi = self.lo / self.unit, self.hi / self.unit
        step = nice_step((hi - lo) / 4)
        first = math.ceil(lo / step) * step
        count = math.floor((hi - first) / step + 1e-9) + 1
        return [round(first + k * step, 12) * self.unit for k in range(max(count, 0))]


def nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw`."""
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw * (1 - 1e-9):
            return m * power
    return 10 * power


def size_unit(largest: float) -> float:
    """The power of 1024 that sizes up to `largest` read best in (B, KiB, MiB, GiB)."""
    unit = 1.0
    while largest >= 1024 * unit and unit < 1024.0**3:
        unit *= 1024
    return unit


def axis_for(values: Sequence[float], start: float, end: float, unit: float = 1.0) -> Axis:
    """An axis holding every value with a margin; log10 when they span more than 20x (errors
    from 1e-8 for fp32 to 1e-2 for int8 are all visible then) and all are positive."""
    lo, hi = min(values), max(values)
    positive = [v for v in values if v > 0]
    if lo >= 0 and positive and max(positive) / min(positive) > 20:
        # An exact 0 (fp32 can match the source bit for bit) sits on the axis' lowest value.
        exp_lo = math.floor(math.log10(min(positive)))
        exp_hi = math.ceil(math.log10(max(positive)))
        return Axis(10.0**exp_lo, 10.0**exp_hi, start, end, log=True)
    span = (hi - lo) or abs(hi) or 1.0
    lo_edge = max(0.0, lo - span * 0.15) if lo >= 0 else lo - span * 0.15
    return Axis(lo_edge, hi + span * 0.15, start, end, unit=unit)


@dataclass
class PlotPoint:
    label: str
    x: float
    y: float
    px: float = 0.0
    py: float = 0.0
    on_front: bool = False
    selected: bool = False
    # Where the label goes (its text anchor point) and which way it reads from there.
    lx: float = 0.0
    ly: float = 0.0
    anchor: str = "start"


@dataclass
class ScatterPlot:
    title: str
    x_label: str
    y_label: str
    width: int
    height: int
    points: list[PlotPoint]
    x_ticks: list[tuple[float, float]] = field(default_factory=list)  # (pixel, value)
    y_ticks: list[tuple[float, float]] = field(default_factory=list)
    front_path: str = ""  # SVG path through the front, as a staircase
    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0
    missing: list[str] = field(default_factory=list)  # variants without both values


def scatter(
    title: str,
    x_label: str,
    y_label: str,
    values: Sequence[tuple[str, float | None, float | None]],
    selected: str | None,
    width: int = 460,
    height: int = 300,
    x_is_size: bool = True,
) -> ScatterPlot:
    """Positions the (label, x, y) points; those missing a value are listed, not drawn."""
    left, right, top, bottom = 70, width - 20, 20, height - 45
    known = [(n, x, y) for n, x, y in values if x is not None and y is not None]
    plot = ScatterPlot(title, x_label, y_label, width, height, [], left=left, right=right)
    plot.top, plot.bottom = top, bottom
    plot.missing = [n for n, x, y in values if x is None or y is None]
    if not known:
        return plot
    xs = [x for _, x, _ in known]
    x_axis = axis_for(xs, left, right, size_unit(max(xs)) if x_is_size else 1.0)
    y_axis = axis_for([y for _, _, y in known], bottom, top)  # SVG y grows downwards
    front = set(pareto_front([(x, y) for _, x, y in known]))
    for i, (name, x, y) in enumerate(known):
        plot.points.append(
            PlotPoint(name, x, y, x_axis(x), y_axis(y), i in front, name == selected)
        )
    plot.x_ticks = [(x_axis(v), v) for v in x_axis.ticks()]
    plot.y_ticks = [(y_axis(v), v) for v in y_axis.ticks()]
    plot.front_path = staircase([p for p in plot.points if p.on_front])
    place_labels(plot.points, (left, top, right, bottom))
    return plot


CHAR_WIDTH = 6.5  # px per character at the template's 11 px font, roughly
LABEL_HEIGHT = 12.0
# Offsets (dx, dy, anchor) tried in turn: right above, right below, left above, left below,
# further up, further down.
_LABEL_SPOTS = (
    (9, -6, "start"),
    (9, 14, "start"),
    (-9, -6, "end"),
    (-9, 14, "end"),
    (9, -20, "start"),
    (9, 28, "start"),
)


def place_labels(points: Sequence[PlotPoint], frame: tuple[float, float, float, float]) -> None:
    """Puts each label where it overlaps no label placed before it nor a dot, inside the
    frame if it can; the selected point's label is placed first, so it is never the one
    pushed aside."""
    left, top, right, bottom = frame
    boxes: list[tuple[float, float, float, float]] = []
    dots = [(p.px - 6, p.py - 6, p.px + 6, p.py + 6) for p in points]
    for p in sorted(points, key=lambda p: (not p.selected, p.px)):
        width = CHAR_WIDTH * len(p.label)
        choice = None
        for dx, dy, anchor in _LABEL_SPOTS:
            x0 = p.px + dx if anchor == "start" else p.px + dx - width
            box = (x0, p.py + dy - LABEL_HEIGHT + 2, x0 + width, p.py + dy + 2)
            inside = left + 2 <= box[0] and box[2] <= right + 20 and top - 18 <= box[1]
            inside = inside and box[3] <= bottom - 2
            clear = not any(_overlap(box, b) for b in boxes + dots)
            if inside and clear:
                choice = (dx, dy, anchor, box)
                break
        if choice is None:  # crowded: the first spot, overlapping
            dx, dy, anchor = _LABEL_SPOTS[0]
            choice = (dx, dy, anchor, (p.px + dx, p.py + dy - 10, p.px + dx + width, p.py + dy))
        dx, dy, p.anchor, box = choice
        p.lx, p.ly = p.px + dx, p.py + dy
        boxes.append(box)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def staircase(front: Sequence[PlotPoint]) -> str:
    """An SVG path joining front points by x: across at the left point's y, then down."""
    ordered = sorted(front, key=lambda p: (p.x, -p.y))
    if not ordered:
        return ""
    parts = [f"M{ordered[0].px:.1f},{ordered[0].py:.1f}"]
    for p in ordered[1:]:
        parts.append(f"H{p.px:.1f}V{p.py:.1f}")
    return "".join(parts)


@dataclass
class Bar:
    label: str
    note: str
    value: float
    y: float
    width: float


def bars(rows: Sequence[tuple[str, str, float]], width: float, row_height: int = 16) -> list[Bar]:
    """Horizontal bars, longest = width, for (label, note, value >= 0) rows in their order."""
    top = max((v for _, _, v in rows), default=0.0) or 1.0
    return [
        Bar(label, note, value, i * row_height, max(1.0, width * value / top))
        for i, (label, note, value) in enumerate(rows)
    ]
