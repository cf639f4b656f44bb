"""The worklist's words and trend line: risk in per cent, its change, readings, phone links, the SVG."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.api.i18n import use_language
from gateway.api.review_presenters import measurement_value, risk_change, risk_percent, tel_url, triage_label
from gateway.api.sparkline import HEIGHT, WIDTH, sparkline
from gateway.store.worklist import Reading, Risk

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    with use_language("en"):
        yield


@pytest.mark.parametrize(
    ("probability", "shown"),
    [(0.42, "42 %"), (0.426, "43 %"), (0.1, "10 %"), (0.042, "4.2 %"), (0.0099, "< 1 %"), (None, "—")],
)
def test_risk_in_per_cent(probability: float | None, shown: str) -> None:
    assert risk_percent(probability) == shown


def _risk(now: float, before: float | None) -> Risk:
    return Risk("id", now, NOW, "m", True, (), before, None if before is None else NOW - timedelta(days=7))


@pytest.mark.parametrize(
    ("now", "before", "arrow", "text"),
    [
        (0.42, 0.30, "▲", "up 12 percentage points since last week"),
        (0.20, 0.25, "▼", "down 5 percentage points since last week"),
        (0.201, 0.198, "→", "unchanged since last week"),
        (0.30, 0.281, "▲", "up 1.9 percentage points since last week"),
    ],
)
def test_the_change_since_last_week(now: float, before: float, arrow: str, text: str) -> None:
    change = risk_change(_risk(now, before))
    assert change is not None and (change.arrow, change.text) == (arrow, text)


def test_no_change_without_an_assessment_a_week_before() -> None:
    assert risk_change(_risk(0.3, None)) is None and risk_change(None) is None


@pytest.mark.parametrize(
    ("reading", "shown"),
    [
        (Reading("blood-pressure", (128.0, 84.0), "mm[Hg]", NOW, True), "128/84 mmHg"),
        (Reading("temperature", (36.75,), "Cel", NOW, True), "36.8 °C"),
        (Reading("weight", (81.4,), "kg", NOW, True), "81.4 kg"),
        (Reading("spo2", (), None, None, True), "no reading yet"),
    ],
)
def test_a_readings_value_with_its_unit(reading: Reading, shown: str) -> None:
    assert measurement_value(reading) == shown


def test_a_reading_lags_after_36_hours_or_never() -> None:
    fresh = Reading("spo2", (95.0,), "%", NOW - timedelta(hours=35), True)
    late = Reading("spo2", (95.0,), "%", NOW - timedelta(hours=37), True)
    never = Reading("spo2", (), None, None, True)
    unexpected = Reading("weight", (80.0,), "kg", NOW - timedelta(days=9), False)
    assert [r.lagging(NOW) for r in (fresh, late, never, unexpected)] == [False, True, True, False]


@pytest.mark.parametrize(
    ("phone", "link"), [("+45 12 34 56 78", "tel:+4512345678"), ("12-34-56-78", "tel:12345678")]
)
def test_a_phone_number_as_a_tel_link(phone: str, link: str) -> None:
    assert tel_url(phone) == link


def test_a_triage_colour_is_never_shown_by_colour_alone() -> None:
    assert triage_label("red") == "Red: act today"


def test_the_sparkline_places_points_by_time_and_value_and_escapes_its_label() -> None:
    start, end = NOW - timedelta(days=28), NOW
    svg = str(
        sparkline(
            [(start, 0.0), (start + timedelta(days=14), 0.5), (end, 1.0)],
            start=start,
            end=end,
            low=0.0,
            high=1.0,
            label='risk "<b>"',
        )
    )
    assert svg.startswith('<svg class="sparkline" role="img"')
    assert 'aria-label="risk &#34;&lt;b&gt;&#34;"' in svg and "<b>" not in svg
    assert f'points="3.0,{HEIGHT - 3:.1f} {WIDTH / 2:.1f},{HEIGHT / 2:.1f} {WIDTH - 3:.1f},3.0"' in svg
    assert "style=" not in svg  # the Content-Security-Policy allows no inline style
    assert str(sparkline([], start=start, end=end, low=0, high=1, label="x")) == ""
