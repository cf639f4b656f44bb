"""Triage of one reading: the order of red, yellow and green, the NEWS2 defaults, and limit validation."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models import news2
from models.triage import (
    BOUNDS,
    NO_LIMITS,
    RESOLUTION,
    VITALS,
    Level,
    Limits,
    TriageError,
    default_limits,
    disorder,
    news2_points,
    read_at_resolution,
    triage,
    worst,
)

NEWS2_VITALS = ("spo2", "pulse", "systolic", "temperature", "respiration_rate")
# NEWS2 points -> the level a reading with those points must have under the default limits.
LEVEL_OF_POINTS = {0: Level.GREEN, 1: Level.YELLOW, 2: Level.YELLOW, 3: Level.RED}

limit = st.one_of(st.none(), st.floats(-500, 500, allow_nan=False).map(lambda x: round(x, 1)))
reading = st.floats(min_value=-600, max_value=600, allow_nan=False)


@st.composite
def ordered_limits(draw: st.DrawFn) -> Limits:
    """Four limits in order, each possibly unset."""
    values = sorted(draw(st.lists(st.integers(-400, 400), min_size=4, max_size=4)))
    kept = [draw(st.booleans()) for _ in BOUNDS]
    return Limits(*(float(v) if keep else None for v, keep in zip(values, kept, strict=True)))


@given(ordered_limits(), st.lists(reading, min_size=3, max_size=3))
def test_a_reading_between_two_others_is_never_triaged_worse_than_both(
    limits: Limits, values: list[float]
) -> None:
    low, middle, high = sorted(values)
    levels = [triage("pulse", v, limits).level for v in (low, middle, high)]
    assert levels[1] <= max(levels[0], levels[2])


@given(ordered_limits(), reading)
def test_red_exactly_outside_the_red_limits_green_exactly_inside_the_yellow_ones(
    limits: Limits, value: float
) -> None:
    read = read_at_resolution("pulse", value)
    level = triage("pulse", value, limits).level

    def outside(low: float | None, high: float | None) -> bool:
        below = low is not None and read < Decimal(repr(low))
        return below or (high is not None and read > Decimal(repr(high)))

    assert (level == Level.RED) == outside(limits.red_low, limits.red_high)
    assert (level == Level.GREEN) == (
        not outside(limits.red_low, limits.red_high) and not outside(limits.yellow_low, limits.yellow_high)
    )


@given(ordered_limits(), reading, st.sampled_from(BOUNDS))
def test_unsetting_a_limit_never_makes_a_triage_worse(limits: Limits, value: float, bound: str) -> None:
    looser = Limits(**{b: (None if b == bound else limits.get(b)) for b in BOUNDS})
    assert triage("pulse", value, looser).level <= triage("pulse", value, limits).level


@given(ordered_limits(), reading)
def test_the_crossed_limit_is_named_with_its_value(limits: Limits, value: float) -> None:
    result = triage("pulse", value, limits)
    if result.level == Level.GREEN:
        assert result.crossed is None and result.limit is None
    else:
        assert result.crossed is not None and result.crossed.startswith(result.level.key)
        assert result.limit == limits.get(result.crossed)


@pytest.mark.parametrize("vital", NEWS2_VITALS)
@given(data=st.data())
def test_default_limits_triage_as_news2_scores(vital: str, data: st.DataObject) -> None:
    scale2 = data.draw(st.booleans()) if vital == "spo2" else False
    points_of = news2_points(vital, scale2=scale2)
    assert points_of is not None
    value = data.draw(st.floats(min_value=0, max_value=350, allow_nan=False))
    try:
        points = points_of(value)
    except news2.News2Error:  # outside the physiological limits: NEWS2 scores nothing
        return
    assert triage(vital, value, default_limits(vital, scale2=scale2)).level == LEVEL_OF_POINTS[points]


def test_default_limits_read_off_the_news2_chart() -> None:
    assert default_limits("spo2") == Limits(92, 96, None, None)
    assert default_limits("spo2", scale2=True) == Limits(84, 88, None, None)
    assert default_limits("pulse") == Limits(41, 51, 90, 130)
    assert default_limits("systolic") == Limits(91, 111, 219, 219)
    assert default_limits("temperature") == Limits(35.1, 36.1, 38.0, None)
    assert default_limits("respiration_rate") == Limits(9, 12, 20, 24)


@pytest.mark.parametrize("vital", ["diastolic", "weight"])
def test_vitals_news2_does_not_score_have_no_default_limits(vital: str) -> None:
    assert default_limits(vital) == NO_LIMITS and NO_LIMITS.unset
    assert triage(vital, 250.0, NO_LIMITS).level == Level.GREEN


@pytest.mark.parametrize(("vital", "value"), [("temperature", 36.05), ("spo2", 91.5), ("pulse", 90.49)])
def test_readings_are_read_at_the_news2_charts_resolution(vital: str, value: float) -> None:
    assert read_at_resolution(vital, value) == news2.chart_value(vital, value)  # type: ignore[arg-type]
    assert set(RESOLUTION) == set(VITALS)


def test_a_limit_is_inclusive() -> None:
    limits = Limits(92, 96, None, None)
    assert triage("spo2", 92, limits).level == Level.YELLOW
    assert triage("spo2", 91, limits).crossed == "red_low"
    assert triage("spo2", 96, limits).level == Level.GREEN


@given(limit, limit, limit, limit)
def test_disorder_is_empty_exactly_when_every_set_pair_is_in_order(
    red_low: float | None, yellow_low: float | None, yellow_high: float | None, red_high: float | None
) -> None:
    limits = Limits(red_low, yellow_low, yellow_high, red_high)
    values = [v for v in (red_low, yellow_low, yellow_high, red_high) if v is not None]
    in_order = all(a <= b for i, a in enumerate(values) for b in values[i + 1 :])
    assert (disorder(limits) == ()) == in_order


def test_disorder_names_the_neighbours_across_an_unset_limit() -> None:
    assert disorder(Limits(red_low=90, yellow_high=80)) == (("red_low", "yellow_high"),)


def test_worst_of_a_panel_and_of_nothing() -> None:
    limits = Limits(50, 60, 80, 90)
    assert worst([triage("pulse", 70, limits), triage("pulse", 95, limits)]).level == Level.RED
    assert worst([]).level == Level.GREEN


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_limits_and_readings_must_be_finite(bad: float) -> None:
    with pytest.raises(TriageError):
        Limits(red_low=bad)
    with pytest.raises(TriageError):
        triage("pulse", bad, NO_LIMITS)


def test_an_unknown_vital_is_refused() -> None:
    with pytest.raises(TriageError, match="unknown vital"):
        triage("mood", 3, NO_LIMITS)
