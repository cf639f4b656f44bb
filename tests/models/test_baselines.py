"""Personal baselines: a steady series is its own normal, one outlier barely moves it, a sustained shift is
absorbed at the pace of the half-life, nothing is learnt from the future, and a value normal for the
population but not for this patient stands out."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.baselines import (
    MIN_SPREAD,
    Baseline,
    SeriesError,
    baseline_series,
    deviation,
)
from models.cohort.profiles import VITALS
from models.news2 import pulse_points

SEED = 20251127


def _daily(values: list[float] | np.ndarray) -> list[float]:
    return [float(day) for day in range(len(values))]


def _noisy(level: float, sd: float, count: int, seed: int = SEED) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0.0, sd, count)


# --- shape and warm-up ------------------------------------------------------------------------------------


def test_min_spread_covers_every_vital_of_the_cohort() -> None:
    assert set(MIN_SPREAD) == set(VITALS)
    assert all(floor > 0 for floor in MIN_SPREAD.values())


def test_no_baseline_until_min_points_earlier_readings() -> None:
    values = [95.0, 96.0, 94.0, 95.0, 96.0, 95.0, 94.0]
    series = baseline_series(_daily(values), values, vital="spo2", min_points=5)
    assert len(series) == len(values)
    assert series[:5] == [None] * 5
    first = series[5]
    assert first is not None and first.n == 5
    assert [b.n for b in series[5:] if b is not None] == [5, 6]


def test_empty_and_short_series_have_no_baseline() -> None:
    assert baseline_series([], [], vital="weight") == []
    assert baseline_series([0.0, 1.0], [80.0, 80.2], vital="weight") == [None, None]


# --- behaviour ----------------------------------------------------------------------------------------


def test_stable_series_centres_on_its_level_with_small_deviations() -> None:
    values = _noisy(72.0, 1.5, 90)
    series = baseline_series(_daily(values), values.tolist(), vital="pulse")
    late = [b for b in series[30:] if b is not None]
    assert all(abs(b.center - 72.0) < 1.5 for b in late)
    zs = [deviation(v, b) for v, b in zip(values[30:], series[30:], strict=True)]
    assert max(abs(z) for z in zs if z is not None) < 2.0


def test_spread_never_falls_below_the_vitals_floor() -> None:
    values = [91.0] * 40  # an oximeter showing the same whole percent every day
    series = baseline_series(_daily(values), values, vital="spo2")
    assert all(b.spread == MIN_SPREAD["spo2"] for b in series if b is not None)
    # One point off a perfectly steady series is one floor away, not infinitely far.
    assert deviation(90.0, series[-1]) == pytest.approx(-1.0)


def test_single_outlier_barely_moves_the_center_but_is_far_from_it() -> None:
    values = _noisy(80.0, 0.2, 60)
    clean = baseline_series(_daily(values), values.tolist(), vital="weight")
    jump = 15.0  # a scale reading with a child on the hip
    spiked = values.copy()
    spiked[40] += jump
    dirty = baseline_series(_daily(spiked), spiked.tolist(), vital="weight")

    before, after = clean[41], dirty[41]
    assert before is not None and after is not None
    assert abs(after.center - before.center) < 0.1 * jump
    z = deviation(float(spiked[40]), dirty[40])
    assert z is not None and z > 10
    # It fades: a week later the center is back within a few hundred grams of the clean one.
    late_clean, late_dirty = clean[48], dirty[48]
    assert late_clean is not None and late_dirty is not None
    assert abs(late_dirty.center - late_clean.center) < 0.3


@pytest.mark.parametrize("half_life", [7.0, 14.0, 28.0])
def test_sustained_shift_is_absorbed_at_the_pace_of_the_half_life(half_life: float) -> None:
    settle, shift = 120, 4.0  # 4 mmHg: within the clipping band of a diastolic spread of 3
    values = _noisy(78.0, 0.5, settle + int(6 * half_life))
    values[settle:] += shift
    series = baseline_series(_daily(values), values.tolist(), vital="diastolic", half_life_days=half_life)

    def absorbed(after_days: float) -> float:
        baseline = series[settle + int(after_days)]
        assert baseline is not None
        return (baseline.center - 78.0) / shift

    assert absorbed(half_life / 2) < 0.4
    assert 0.35 < absorbed(half_life) < 0.65
    assert 0.6 < absorbed(2 * half_life) < 0.9
    assert absorbed(5 * half_life) > 0.9


def test_half_life_is_in_days_whatever_the_sampling_rate() -> None:
    once = _noisy(120.0, 0.5, 200, seed=1)
    once[100:] += 6.0
    twice = np.repeat(once, 2)
    daily = baseline_series(_daily(once), once.tolist(), vital="systolic")
    half_days = [day / 2 for day in range(twice.size)]
    twice_daily = baseline_series(half_days, twice.tolist(), vital="systolic")
    for day in (114, 128, 150):
        a, b = daily[day], twice_daily[2 * day]
        assert a is not None and b is not None
        assert abs(a.center - b.center) < 0.15 * 6.0


def test_population_normal_value_abnormal_for_this_patient_is_flagged() -> None:
    # A beta-blocked heart-failure patient whose pulse is usually about 56.
    values = _noisy(56.0, 1.5, 40)
    series = baseline_series(_daily(values), values.tolist(), vital="pulse")
    reading = 84.0
    assert pulse_points(reading) == 0  # NEWS2: perfectly normal for the population
    z = deviation(reading, series[-1])
    assert z is not None and z > 5


def test_deviation_without_baseline_is_none() -> None:
    assert deviation(37.0, None) is None
    assert deviation(37.4, Baseline(center=36.8, spread=0.2, n=10)) == pytest.approx(3.0)


# --- no look-ahead ------------------------------------------------------------------------------------

_series = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=3.0, allow_nan=False),
        st.floats(min_value=30.0, max_value=200.0, allow_nan=False),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    points=_series,
    cut=st.integers(min_value=0, max_value=39),
    future=st.lists(st.floats(min_value=30.0, max_value=200.0, allow_nan=False), min_size=40, max_size=40),
    vital=st.sampled_from(VITALS),
    min_points=st.integers(min_value=1, max_value=6),
)
def test_changing_the_future_never_changes_an_earlier_baseline(
    points: list[tuple[float, float]], cut: int, future: list[float], vital: str, min_points: int
) -> None:
    days = np.cumsum([gap for gap, _ in points]).tolist()
    values = [value for _, value in points]
    cut = min(cut, len(values) - 1)
    changed = values[:cut] + future[: len(values) - cut]
    original = baseline_series(days, values, vital=vital, min_points=min_points)
    rewritten = baseline_series(days, changed, vital=vital, min_points=min_points)
    # Reading `cut` and everything after it changed: the baselines up to and including reading `cut`
    # (which is learnt from readings before it) must not.
    assert original[: cut + 1] == rewritten[: cut + 1]
    # And a prefix of the series gives the same baselines as the whole series.
    assert baseline_series(days[:cut], values[:cut], vital=vital, min_points=min_points) == original[:cut]


# --- input checks -------------------------------------------------------------------------------------


def test_unknown_vital_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown vital 'glucose'"):
        baseline_series([0.0], [5.5], vital="glucose")


@pytest.mark.parametrize(
    ("days", "values", "message"),
    [
        ([0.0, 1.0], [80.0], "1 values for 2 days"),
        ([0.0, 2.0, 1.0], [80.0, 80.0, 80.0], "not in ascending order at index 2"),
        ([0.0, 1.0], [80.0, math.nan], "not a finite number at index 1"),
        ([0.0, math.inf], [80.0, 80.0], "days: not a finite number"),
        ([0.0, 1.0], [80.0, "heavy"], "not a sequence of numbers"),
    ],
)
def test_bad_series_are_refused_with_the_problem_named(
    days: list[float], values: list[float], message: str
) -> None:
    with pytest.raises(SeriesError, match=message):
        baseline_series(days, values, vital="weight")


def test_equal_days_are_allowed() -> None:
    days = [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0]
    values = [70.0, 72.0, 71.0, 69.0, 70.0, 71.0, 70.0]
    assert baseline_series(days, values, vital="pulse")[-1] is not None


@pytest.mark.parametrize(
    ("argument", "kwargs"),
    [("half_life_days", {"half_life_days": 0.0}), ("min_points", {"min_points": 0})],
)
def test_bad_parameters_are_refused(argument: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(SeriesError, match=argument):
        baseline_series([0.0], [80.0], vital="weight", **kwargs)  # type: ignore[arg-type]


def test_deviation_refuses_a_non_number() -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        deviation(math.nan, Baseline(80.0, 0.5, 10))
