"""A patient's readings as a simple line plot in server-rendered SVG (no script, so a TV browser draws it).

One plot per measurement: time along the bottom (the window's first, middle and last day written out),
the values up the side (the lowest and highest written), one thick line per series (blood pressure has
two: the upper and the lower number) with a dot per point. A window with more points than
:data:`MAX_POINTS` is thinned to the mean of equal slices of time, so an emulated device that measures
every few seconds still gives a readable line. Pure: values in, markup out; every text is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Final

#: Points per line at most: more cannot be told apart on a tablet.
MAX_POINTS: Final = 120
WIDTH, HEIGHT = 900, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 90, 30, 20, 50
# High-contrast line colours that stay apart for the common colour blindnesses (Okabe-Ito blue, vermilion).
_COLOURS: Final = ("#0046ad", "#b33a00")

Point = tuple[datetime, float]


def thin(points: Sequence[Point], start: datetime, end: datetime, limit: int = MAX_POINTS) -> list[Point]:
    """``points`` (oldest first) as at most ``limit``: the mean of each of ``limit`` equal slices."""
    if len(points) <= limit:
        return list(points)
    span = (end - start).total_seconds() or 1.0
    slices: dict[int, list[Point]] = {}
    for at, value in points:
        index = min(limit - 1, max(0, int((at - start).total_seconds() / span * limit)))
        slices.setdefault(index, []).append((at, value))
    out = []
    for index in sorted(slices):
        group = slices[index]
        middle = group[len(group) // 2][0]
        out.append((middle, sum(v for _, v in group) / len(group)))
    return out


def line_plot(
    series: Mapping[str, Sequence[Point]],
    start: datetime,
    end: datetime,
    *,
    title: str,
    label: Callable[[datetime], str],
    number: Callable[[float], str] = lambda v: f"{v:g}",
) -> str:
    """An SVG of ``series`` (name -> points, oldest first) between ``start`` and ``end``; ``label``
    writes a date on the time axis. ``title`` is the plot's accessible name."""
    thinned = {name: thin(points, start, end) for name, points in series.items() if points}
    values = [v for points in thinned.values() for _, v in points]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.1 or max(abs(high) * 0.05, 1.0)
    bottom, top = low - pad, high + pad
    span = (end - start).total_seconds() or 1.0
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def x(at: datetime) -> float:
        return _LEFT + (at - start).total_seconds() / span * plot_w

    def y(value: float) -> float:
        return _TOP + (top - value) / (top - bottom) * plot_h

    parts = [
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="#ffffff" stroke="#000000"'
        ' stroke-width="2"/>',
    ]
    for value in (low, high):
        parts.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}"'
            ' stroke="#767676" stroke-width="1" stroke-dasharray="6 6"/>'
            f'<text x="{_LEFT - 10}" y="{y(value) + 8:.1f}" text-anchor="end" font-size="24"'
            f' fill="#000000">{escape(number(value))}</text>'
        )
    middle = start + (end - start) / 2
    for at, anchor in ((start, "start"), (middle, "middle"), (end, "end")):
        parts.append(
            f'<text x="{x(at):.1f}" y="{HEIGHT - 14}" text-anchor="{anchor}" font-size="24"'
            f' fill="#000000">{escape(label(at))}</text>'
        )
    for n, (name, points) in enumerate(thinned.items()):
        colour = _COLOURS[n % len(_COLOURS)]
        coords = " ".join(f"{x(at):.1f},{y(v):.1f}" for at, v in points)
        parts.append(
            f'<polyline class="series" data-series="{escape(name)}" points="{coords}" fill="none"'
            f' stroke="{colour}" stroke-width="5" stroke-linejoin="round" stroke-linecap="round"/>'
        )
        parts.extend(f'<circle cx="{x(at):.1f}" cy="{y(v):.1f}" r="6" fill="{colour}"/>' for at, v in points)
    parts.append("</svg>")
    return "".join(parts)
