"""A tiny trend line drawn on the server: an inline SVG of a few points in time, no JavaScript.

``sparkline`` places points by time across ``[start, end]`` and by value between ``low`` and ``high``
(the 30-day risk on 0..max, NEWS2 on 0..its points), joins them with a polyline and marks the newest
with a dot. The SVG is a labelled image (``role="img"``, ``<title>``): a screen reader hears the label
(what the caller says the line shows, e.g. "from 12 % to 23 %"), not a shape. Colour and stroke come
from presentation attributes and ``currentColor``, never a ``style`` attribute, which the
Content-Security-Policy forbids. Pure: values in, markup out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

WIDTH = 120
HEIGHT = 28
# Room for the stroke and the end dot inside the view box.
_PAD = 3.0


def _x(at: datetime, start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds() or 1.0
    share = min(max((at - start).total_seconds() / span, 0.0), 1.0)
    return _PAD + share * (WIDTH - 2 * _PAD)


def _y(value: float, low: float, high: float) -> float:
    share = 0.5 if high <= low else min(max((value - low) / (high - low), 0.0), 1.0)
    return HEIGHT - _PAD - share * (HEIGHT - 2 * _PAD)  # SVG's y grows downwards


def sparkline(
    points: Sequence[tuple[datetime, float]],
    *,
    start: datetime,
    end: datetime,
    low: float,
    high: float,
    label: str,
) -> Markup:
    """An inline SVG line of ``points`` (time, value), oldest first; empty markup without points."""
    if not points:
        return Markup("")
    coordinates = [(_x(at, start, end), _y(value, low, high)) for at, value in points]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
    last_x, last_y = coordinates[-1]
    return Markup(
        '<svg class="sparkline" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}"'
        ' aria-label="{label}"><title>{label}</title>'
        '<polyline points="{line}" fill="none" stroke="currentColor" stroke-width="1.5"'
        ' stroke-linejoin="round" stroke-linecap="round"/>'
        '<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="currentColor"/></svg>'
    ).format(w=WIDTH, h=HEIGHT, label=escape(label), line=line, cx=last_x, cy=last_y)
