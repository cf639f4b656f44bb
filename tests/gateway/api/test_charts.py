"""``gateway.api.charts``: one vital sign as an accessible, escaped SVG with triage shapes, the baseline
band, the limits, and date ticks at local midnights in the caller's time zone. Pure: no app, no database."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.api.charts import HEIGHT, WIDTH, BandPoint, Chart, ChartPoint, render_chart
from models.triage import Level, Limits

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
SVG = "{http://www.w3.org/2000/svg}"
END = datetime(2026, 1, 16, 20, 0, tzinfo=UTC)
SPO2_LIMITS = Limits(92, 96)  # SpO2's NEWS2 edges: red below 92, yellow below 96


def _chart(
    points: list[tuple[datetime, float, Level]],
    *,
    days: int = 7,
    limits: Limits = SPO2_LIMITS,
    band: tuple[BandPoint, ...] = (),
    title: str = "SpO₂, last 7 days",
    number: object = None,
    y_max: float | None = 100,
) -> Chart:
    return Chart(
        key="spo2",
        title=title,
        description="3 readings",
        start=END - timedelta(days=days),
        end=END,
        points=tuple(
            ChartPoint(at, value, level, f"{value:g} % at {at:%H:%M}") for at, value, level in points
        ),
        band=band,
        limits=limits,
        time_zone=COPENHAGEN,
        number=number or (lambda v: f"{v:g}"),  # type: ignore[arg-type]
        y_max=y_max,
    )


def _svg(chart: Chart) -> ET.Element:
    return ET.fromstring(str(render_chart(chart)))


def _x_labels(root: ET.Element) -> list[tuple[float, str]]:
    """(x, text) of the date labels under the plot."""
    return [
        (float(t.get("x", "0")), t.text or "")
        for t in root.iter(f"{SVG}text")
        if t.get("text-anchor") == "middle"
    ]


def _y_labels(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]


POINTS = [
    (END - timedelta(days=3), 97.0, Level.GREEN),
    (END - timedelta(days=2), 95.0, Level.YELLOW),
    (END - timedelta(days=1), 90.0, Level.RED),
]


def test_the_svg_is_an_image_labelled_by_its_title_and_description() -> None:
    root = _svg(_chart(POINTS))
    assert root.get("viewBox") == f"0 0 {WIDTH} {HEIGHT}" and root.get("role") == "img"
    assert root.get("aria-labelledby") == "chart-spo2-title chart-spo2-desc"
    assert root.find(f"{SVG}title").text == "SpO₂, last 7 days"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "3 readings"  # type: ignore[union-attr]


def test_each_reading_has_the_shape_of_its_triage_and_words_and_red_is_drawn_last() -> None:
    root = _svg(_chart(POINTS))
    marks = [
        (el.tag.removeprefix(SVG), el.find(f"{SVG}title").text)
        for el in root
        if el.find(f"{SVG}title") is not None
    ]
    readings = [mark for mark in marks if mark[0] != "title"]
    assert readings == [("circle", "97 % at 20:00"), ("rect", "95 % at 20:00"), ("path", "90 % at 20:00")]


def test_text_is_escaped_everywhere() -> None:
    hostile = "<script>alert(1)</script>&"
    chart = _chart([(END - timedelta(hours=1), 95, Level.GREEN)], title=hostile)
    chart = replace(chart, description=hostile)
    svg = str(render_chart(chart))
    assert "<script>" not in svg and svg.count("&lt;script&gt;alert(1)&lt;/script&gt;&amp;") == 2
    ET.fromstring(svg)  # still well-formed


def test_the_limits_are_dashed_lines_labelled_with_their_values_over_shaded_zones() -> None:
    root = _svg(_chart(POINTS))
    dashed = [line for line in root.iter(f"{SVG}line") if line.get("stroke-dasharray") == "4 3"]
    assert [line.get("stroke") for line in dashed] == ["#b3261e", "#7a5a00"]
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("fill") in ("#b3261e", "#7a5a00")]
    assert labels == ["92", "96"]
    zones = [r.get("fill") for r in root.iter(f"{SVG}rect") if r.get("fill") in ("#fbe0de", "#fff3c4")]
    assert zones == ["#fff3c4", "#fbe0de"]  # yellow first: red lies on top of it


def test_no_limits_draw_no_lines_or_zones() -> None:
    svg = str(render_chart(_chart(POINTS, limits=Limits())))
    assert 'stroke-dasharray="4 3"' not in svg and "#fbe0de" not in svg


def test_the_band_is_an_area_with_a_dashed_centre_line() -> None:
    band = tuple(BandPoint(at, 94.0, 96.0, 98.0) for at, _, _ in POINTS)
    root = _svg(_chart(POINTS, band=band))
    classes = [p.get("class") for p in root.iter(f"{SVG}path") if p.get("class")]
    assert classes == ["chart-band", "chart-baseline"]
    area = next(p for p in root.iter(f"{SVG}path") if p.get("class") == "chart-band").get("d", "")
    assert area.startswith("M") and area.endswith("Z") and area.count("L") == 2 * len(band) - 1


def test_the_value_axis_covers_readings_and_limits_but_not_above_the_most_a_reading_can_be() -> None:
    labels = [float(v) for v in _y_labels(_svg(_chart(POINTS)))]
    assert min(labels) <= 90 and max(labels) == 100


def test_numbers_are_written_by_the_callers_formatter() -> None:
    root = _svg(
        _chart(
            [(END - timedelta(hours=1), 36.6, Level.GREEN)],
            limits=Limits(35.1, 36.1, 38.0),
            number=lambda v: f"{v:g}".replace(".", ","),
            y_max=None,
        )
    )
    assert "35,1" in [t.text for t in root.iter(f"{SVG}text")]


def test_date_ticks_are_local_midnights_in_copenhagen() -> None:
    root = _svg(_chart([*POINTS, (END, 96.0, Level.GREEN)]))
    labels = _x_labels(root)
    assert [text for _, text in labels] == ["10/1", "11/1", "12/1", "13/1", "14/1", "15/1", "16/1"]
    # 16/1 00:00 in Copenhagen is 15/1 23:00 UTC: 21 hours before the chart's end (the reading at END),
    # where UTC's midnight would be 20 hours before it.
    end_x = max(float(c.get("cx", "0")) for c in root.iter(f"{SVG}circle"))
    (x15, _), (x16, _) = labels[-2:]
    assert (end_x - x16) / (x16 - x15) == pytest.approx(21 / 24, abs=0.01)


def test_a_month_is_ticked_on_mondays_and_a_quarter_on_every_other_monday() -> None:
    month = [text for _, text in _x_labels(_svg(_chart(POINTS, days=30)))]
    assert month == ["22/12", "29/12", "5/1", "12/1"]
    assert all(
        datetime(2026 if m == "1" else 2025, int(m), int(d)).weekday() == 0
        for d, m in (label.split("/") for label in month)
    )
    quarter = [text for _, text in _x_labels(_svg(_chart(POINTS, days=90)))]
    assert len(quarter) in (6, 7) and quarter[-1] in ("12/1", "5/1")


def test_a_chart_without_readings_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no points"):
        render_chart(_chart([]))


def test_the_svg_has_no_style_attribute_the_content_security_policy_would_block() -> None:
    svg = str(render_chart(_chart(POINTS, band=(BandPoint(END, 94, 96, 98),))))
    assert not re.search(r"\sstyle=", svg) and "<script" not in svg


def test_a_limit_far_from_every_reading_does_not_squeeze_the_chart() -> None:
    pulse = [(END - timedelta(days=d), 70.0 + 4 * d, Level.GREEN) for d in range(1, 6)]  # 74..90 /min
    root = _svg(_chart(pulse, limits=Limits(41, 51, 90, 130), y_max=None))
    limit_labels = [t.text for t in root.iter(f"{SVG}text") if t.get("fill") in ("#b3261e", "#7a5a00")]
    assert limit_labels == ["90"]  # yellow above 90 is near; 41, 51 and 130 are not
    assert max(float(v) for v in _y_labels(root)) < 130 and min(float(v) for v in _y_labels(root)) > 51
