"""Server-rendered SVG charts of one vital sign: readings coloured by triage, the personal baseline band
and the patient's limits. Pure functions: a ``Chart`` in, an escaped SVG string (``Markup``) out.

The page works without JavaScript and under a Content-Security-Policy without inline style, so a chart
is plain SVG with presentation attributes (fill, stroke) and classes of the stylesheet. It scales with
its ``viewBox`` to the width of the page (a tablet's included). Accessibility: the ``<svg>`` is an image
labelled by its ``<title>`` and ``<desc>`` (the caller's summary in words); every point carries a
``<title>`` with its value, time and triage in words; triage is shown by shape as well as colour (green
circle, yellow square, red triangle), never by colour alone. The zones beyond the limits are shaded and
each limit is a dashed line labelled with its value.

Times on the x axis are the caller's time zone (the request's: Europe/Copenhagen), ticks at local
midnight: daily for a week, Mondays for a month, every other Monday beyond. What to plot, the wording
of titles and point texts, baselines and triage are the caller's (``gateway.api.patient_vitals``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from markupsafe import Markup, escape

from models.triage import Level, Limits

# The drawing's own coordinates; the page scales it (CSS width 100 %, height auto).
WIDTH = 760
HEIGHT = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 44, 10, 30  # room for y labels, limit labels, x labels
_FONT = 12
# Shaded zones beyond the limits and the colours of a point per triage level (the page's band colours).
_ZONE = {Level.RED: "#fbe0de", Level.YELLOW: "#fff3c4"}
_LIMIT_INK = {Level.RED: "#b3261e", Level.YELLOW: "#7a5a00"}
_POINT_FILL = {Level.GREEN: "#1a7f37", Level.YELLOW: "#e0a800", Level.RED: "#b3261e"}
_POINT_EDGE = {Level.GREEN: "#0b4f20", Level.YELLOW: "#5c4400", Level.RED: "#6e120d"}
_BAND_FILL = "#cfe0fb"
_BAND_LINE = "#3b6fb6"
_GRID = "#e3e8ee"
_AXIS_INK = "#4a5360"


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """One reading: when, its value (canonical unit), its triage and the words a screen reader says."""

    at: datetime
    value: float
    level: Level
    text: str


@dataclass(frozen=True, slots=True)
class BandPoint:
    """The personal baseline at one reading: its usual value and the band around it."""

    at: datetime
    low: float
    center: float
    high: float


@dataclass(frozen=True, slots=True)
class Chart:
    """What one chart shows; ``key`` makes its element ids unique on the page."""

    key: str
    title: str
    description: str
    start: datetime
    end: datetime
    points: tuple[ChartPoint, ...]
    band: tuple[BandPoint, ...]
    limits: Limits
    time_zone: tzinfo
    number: Callable[[float], str]  # a number as the page's language writes it ("36,5" in Danish)
    min_span: float = 1.0  # the y axis spans at least this much (a steady series is not a flat line)
    y_max: float | None = None  # a value no reading can exceed (SpO2's 100 %)


@dataclass(frozen=True, slots=True)
class _Scale:
    """Maps a value range onto a pixel range (y grows downwards in SVG, so ``y`` flips)."""

    low: float
    high: float
    start: float
    stop: float

    def __call__(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.stop - self.start)


def _nice_step(span: float, ticks: int = 4) -> float:
    """A step of 1, 2 or 5 times a power of ten giving about ``ticks`` intervals over ``span`` (whole
    numbers stay whole: no 2.5)."""
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def _y_domain(chart: Chart) -> tuple[float, float, float]:
    """The value range and its grid step: the readings and the band, at least ``min_span``, widened to
    take in each set limit that lies near them (within one span), padded, widened to whole steps and
    never above ``y_max``. A limit far from every reading is left out, so that a pulse of 70-90 /min is
    not squeezed flat by a red limit at 130 (the page lists every limit in words)."""
    values = [p.value for p in chart.points] + [v for b in chart.band for v in (b.low, b.high)]
    low, high = min(values), max(values)
    if high - low < chart.min_span:
        middle = (low + high) / 2
        low, high = middle - chart.min_span / 2, middle + chart.min_span / 2
    reach = high - low
    near = [value for _, value, _ in _set_limits(chart.limits) if low - reach <= value <= high + reach]
    low, high = min([low, *near]), max([high, *near])
    pad = (high - low) * 0.08
    step = _nice_step(high - low + 2 * pad)
    low, high = math.floor((low - pad) / step) * step, math.ceil((high + pad) / step) * step
    if chart.y_max is not None and max(values) <= chart.y_max < high:
        high = chart.y_max
    return low, high, step


def _local_midnights(start: datetime, end: datetime, zone: tzinfo) -> Iterator[datetime]:
    """Every local midnight in ``[start, end]``, in ``zone`` (23- and 25-hour days included)."""
    local = start.astimezone(zone)
    day = local.date() + timedelta(days=1) if local.time() != datetime.min.time() else local.date()
    while (moment := datetime(day.year, day.month, day.day, tzinfo=zone)) <= end:
        yield moment
        day += timedelta(days=1)


def _x_ticks(start: datetime, end: datetime, zone: tzinfo) -> list[datetime]:
    """Midnights to label: daily up to 8 days, Mondays up to 35, every other Monday beyond."""
    midnights = list(_local_midnights(start, end, zone))
    days = (end - start) / timedelta(days=1)
    if days <= 8:
        return midnights
    mondays = [m for m in midnights if m.weekday() == 0]
    return mondays if days <= 35 else mondays[::2]


def _attrs(**values: object) -> str:
    """SVG attributes, escaped; a trailing underscore is dropped and other underscores become dashes."""
    return " ".join(f'{k.rstrip("_").replace("_", "-")}="{escape(str(v))}"' for k, v in values.items())


def _num(value: float) -> str:
    return f"{value:.1f}"


def _mark(x: float, y: float, level: Level, text: str) -> str:
    """A point's mark with its words: green circle, yellow square, red triangle (shape and colour say
    the same)."""
    colours = _attrs(fill=_POINT_FILL[level], stroke=_POINT_EDGE[level], stroke_width=1)
    title = f"<title>{escape(text)}</title>"
    if level == Level.RED:
        path = f"M{_num(x)} {_num(y - 5.5)}L{_num(x + 5.5)} {_num(y + 4)}L{_num(x - 5.5)} {_num(y + 4)}Z"
        return f'<path d="{path}" {colours}>{title}</path>'
    if level == Level.YELLOW:
        square = _attrs(x=_num(x - 3.8), y=_num(y - 3.8), width=7.6, height=7.6)
        return f"<rect {square} {colours}>{title}</rect>"
    return f"<circle {_attrs(cx=_num(x), cy=_num(y), r=3.6)} {colours}>{title}</circle>"


def _set_limits(limits: Limits) -> list[tuple[Level, float, bool]]:
    """(level, value, is a lower limit) of each set limit."""
    bounds = (
        (Level.RED, limits.red_low, True),
        (Level.YELLOW, limits.yellow_low, True),
        (Level.YELLOW, limits.yellow_high, False),
        (Level.RED, limits.red_high, False),
    )
    return [(level, value, lower) for level, value, lower in bounds if value is not None]


def _zones(chart: Chart, y: _Scale, x0: float, x1: float) -> list[str]:
    """A shaded rectangle beyond each set limit (yellow first, so red lies on top)."""
    top, bottom = y.stop, y.start  # pixel rows of the domain's high and low ends
    parts: list[str] = []
    for level, value, lower in sorted(_set_limits(chart.limits), key=lambda limit: limit[0]):
        row = min(max(y(value), top), bottom)
        first, last = (row, bottom) if lower else (top, row)
        if last > first:
            box = _attrs(x=x0, y=_num(first), width=x1 - x0, height=_num(last - first), fill=_ZONE[level])
            parts.append(f"<rect {box}/>")
    return parts


def _limit_lines(chart: Chart, y: _Scale, x0: float, x1: float) -> list[str]:
    """A dashed line per set limit, its value written in the right margin."""
    parts: list[str] = []
    for level, value, _ in _set_limits(chart.limits):
        if not y.low <= value <= y.high:  # a limit far from every reading (see _y_domain)
            continue
        row, ink = _num(y(value)), _LIMIT_INK[level]
        line = _attrs(x1=x0, x2=x1, y1=row, y2=row, stroke=ink, stroke_width=1, stroke_dasharray="4 3")
        label = _attrs(x=x1 + 4, y=row, fill=ink, font_size=_FONT, dominant_baseline="middle")
        parts.append(f"<line {line}/><text {label}>{escape(chart.number(value))}</text>")
    return parts


def _band_paths(chart: Chart, x: _Scale, y: _Scale) -> list[str]:
    """The baseline band as one filled area and its centre as a dashed line."""
    band = [b for b in chart.band if chart.start <= b.at <= chart.end]
    if not band:
        return []

    def at(b: BandPoint, value: float) -> str:
        return f"{_num(x(b.at.timestamp()))} {_num(y(value))}"

    area = "M" + "L".join([at(b, b.high) for b in band] + [at(b, b.low) for b in reversed(band)]) + "Z"
    centre = "M" + "L".join(at(b, b.center) for b in band)
    area_attrs = _attrs(d=area, fill=_BAND_FILL, fill_opacity=0.7, stroke="none")
    centre_attrs = _attrs(d=centre, fill="none", stroke=_BAND_LINE, stroke_width=1.2, stroke_dasharray="6 3")
    return [f'<path class="chart-band" {area_attrs}/>', f'<path class="chart-baseline" {centre_attrs}/>']


def _axes(chart: Chart, x: _Scale, y: _Scale, step: float) -> list[str]:
    """Horizontal grid lines with value labels, and a tick with its local date at each chosen midnight."""
    parts: list[str] = []
    for i in range(math.floor((y.high - y.low) / step + 1e-9) + 1):
        value = round(y.low + i * step, 6)
        row = _num(y(value))
        grid = _attrs(x1=x.start, x2=x.stop, y1=row, y2=row, stroke=_GRID, stroke_width=1)
        label = _attrs(
            x=x.start - 6,
            y=row,
            fill=_AXIS_INK,
            font_size=_FONT,
            text_anchor="end",
            dominant_baseline="middle",
        )
        parts.append(f"<line {grid}/><text {label}>{escape(chart.number(value))}</text>")
    for tick in _x_ticks(chart.start, chart.end, chart.time_zone):
        column = _num(x(tick.timestamp()))
        grid = _attrs(x1=column, x2=column, y1=y.stop, y2=y.start + 4, stroke=_GRID, stroke_width=1)
        label = _attrs(x=column, y=y.start + 19, fill=_AXIS_INK, font_size=_FONT, text_anchor="middle")
        parts.append(f"<line {grid}/><text {label}>{tick.day}/{tick.month}</text>")
    return parts


def render_chart(chart: Chart) -> Markup:
    """``chart`` as an accessible, self-contained ``<svg>`` (every text escaped)."""
    if not chart.points:
        raise ValueError(f"chart {chart.key!r} has no points to plot")
    y_low, y_high, step = _y_domain(chart)
    x = _Scale(chart.start.timestamp(), chart.end.timestamp(), _LEFT, WIDTH - _RIGHT)
    y = _Scale(y_low, y_high, HEIGHT - _BOTTOM, _TOP)
    title_id, desc_id = f"chart-{chart.key}-title", f"chart-{chart.key}-desc"
    svg = _attrs(
        viewBox=f"0 0 {WIDTH} {HEIGHT}",
        class_="chart",
        role="img",
        aria_labelledby=f"{title_id} {desc_id}",
        font_family="system-ui, sans-serif",
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" {svg}>',
        f'<title id="{escape(title_id)}">{escape(chart.title)}</title>',
        f'<desc id="{escape(desc_id)}">{escape(chart.description)}</desc>',
        *_zones(chart, y, x.start, x.stop),
        *_axes(chart, x, y, step),
        *_band_paths(chart, x, y),
        *_limit_lines(chart, y, x.start, x.stop),
    ]
    placed = [(x(p.at.timestamp()), y(p.value), p) for p in chart.points]
    if len(placed) > 1:
        line = " ".join(f"{_num(px)},{_num(py)}" for px, py, _ in placed)
        parts.append(f"<polyline {_attrs(points=line, fill='none', stroke='#6b7785', stroke_width=1)}/>")
    # Green first and red last, so a red reading is never hidden under a green one.
    for px, py, point in sorted(placed, key=lambda item: item[2].level):
        parts.append(_mark(px, py, point.level, point.text))
    parts.append("</svg>")
    return Markup("".join(parts))
