"""What the pages compute, without a server: today's plan over the home's calendar day, trends, the SVG."""

from __future__ import annotations

from datetime import timedelta

from view_helpers import NOW, ZONE, blood_pressure

from edge_agent.patient_view.charts import MAX_POINTS, line_plot, thin
from edge_agent.patient_view.history import reading_of
from edge_agent.patient_view.today import today_plan, trends
from fhir_contract.plan import parse_plan


def _readings(*observations: dict[str, object]) -> list:  # type: ignore[type-arg]
    return [r for r in map(reading_of, observations) if r is not None]


def test_today_plan_has_each_of_todays_times_with_its_state() -> None:
    items = parse_plan([{"measurement": "blood-pressure", "times": ["08:00", "10:00", "20:00"]}])
    morning = _readings(blood_pressure("p", NOW - timedelta(hours=2, minutes=16), 130, 80))
    rows = today_plan(items, ZONE, morning, NOW)  # 10:30 local
    assert [(r.due_at.strftime("%H:%M"), r.state) for r in rows] == [
        ("08:00", "done"),
        ("10:00", "due"),
        ("20:00", "upcoming"),
    ]
    assert rows[0].done_at is not None and rows[0].done_at.strftime("%H:%M") == "08:14"
    later = today_plan(items, ZONE, morning, NOW + timedelta(hours=3))
    assert [r.state for r in later] == ["done", "missed", "upcoming"]
    assert today_plan((), ZONE, morning, NOW) == []


def test_trends_give_two_lines_for_blood_pressure_and_the_latest_lowest_highest() -> None:
    readings = _readings(
        blood_pressure("p", NOW - timedelta(days=3), 150, 90),
        blood_pressure("p", NOW - timedelta(days=2), 120, 70),
        blood_pressure("p", NOW - timedelta(days=1), 135, 85),
    )
    (trend,) = trends(readings)
    assert set(trend.series) == {"systolic", "diastolic"}
    assert trend.latest.summary() == "135/85 mmHg"
    assert trend.low.summary() == "120/70 mmHg" and trend.high.summary() == "150/90 mmHg"


def test_the_plot_escapes_its_words_and_thins_a_flood_of_points() -> None:
    start, end = NOW - timedelta(days=30), NOW
    flood = [(start + timedelta(minutes=5 * n), float(n % 7)) for n in range(8000)]
    assert len(thin(flood, start, end)) <= MAX_POINTS
    svg = line_plot({"value": flood}, start, end, title="<script>x</script>", label=lambda at: "a&b")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg
    assert svg.count("<circle") <= MAX_POINTS and svg.startswith("<svg")
