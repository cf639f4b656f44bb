"""Disease rules: heart-failure weight gain (3 days, and moving averages that catch a slow creep) and COPD
desaturation and tachycardia against the patient's own baseline; causal, one hit per excursion, re-armed
once the condition clears."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.baselines import Baseline, SeriesError, baseline_series
from models.news2 import spo2_points
from models.rules import (
    RuleHit,
    copd_pulse_rise,
    copd_spo2_drop,
    weight_gain_3d,
    weight_gain_moving_average,
)

SEED = 20251127


def _days(count: int, start: float = 0.0) -> list[float]:
    return [start + day for day in range(count)]


def _steady(level: float, count: int) -> list[float]:
    return [level] * count


def _ramp(start: float, step: float, count: int) -> list[float]:
    return [round(start + step * (k + 1), 3) for k in range(count)]


# --- hf-weight-gain-3d ----------------------------------------------------------------------------------


@pytest.mark.parametrize("gain", [2.1, 2.5, 2.9])
def test_weight_rule_fires_on_the_day_a_gain_over_2kg_in_3_days_appears(gain: float) -> None:
    weights = _steady(82.0, 10) + _ramp(82.0, gain / 3, 3) + _steady(82.0 + gain, 2)
    hits = weight_gain_3d(_days(len(weights)), weights)
    assert [hit.day for hit in hits] == [12.0]  # the third day of the gain, not before
    assert hits[0].rule == "hf-weight-gain-3d"
    assert f"Weight up {gain:.1f} kg in 3 days" in hits[0].reason
    assert f"(82.0 -> {82.0 + gain:.1f} kg)" in hits[0].reason


@pytest.mark.parametrize("gain", [1.9, 2.0])
def test_weight_rule_is_silent_on_2kg_or_less_in_3_days(gain: float) -> None:
    weights = _steady(82.0, 10) + _ramp(82.0, gain / 3, 3) + _steady(82.0 + gain, 5)
    assert weight_gain_3d(_days(len(weights)), weights) == []


def test_weight_rule_counts_a_sudden_jump_too() -> None:
    weights = [*_steady(70.0, 5), 72.3]
    hits = weight_gain_3d(_days(len(weights)), weights)
    assert [hit.day for hit in hits] == [5.0]
    assert "in 1 day" in hits[0].reason


def test_weight_rule_fires_once_per_excursion_and_re_arms_after_it_clears() -> None:
    # 2.4 kg in 3 days, still gaining for two more days, then a plateau long enough for the 3-day window
    # to hold only the new level (the condition clears), then a second gain.
    first = _ramp(80.0, 0.8, 5)
    plateau = _steady(first[-1], 6)
    second = _ramp(first[-1], 0.75, 3)
    weights = _steady(80.0, 7) + first + plateau + second
    hits = weight_gain_3d(_days(len(weights)), weights)
    assert [hit.day for hit in hits] == [9.0, 20.0]


def test_weight_rule_tolerates_a_routine_that_drifts_by_an_hour() -> None:
    # Weighed at 07:30 give or take; the reading three mornings back was 3 days and 1 hour earlier.
    days = [0.0, 1.0, 2.0, 2.98, 4.02, 5.0]
    weights = [80.0, 80.0, 80.0, 80.9, 81.7, 82.1]
    hits = weight_gain_3d(days, weights)
    assert [hit.day for hit in hits] == [5.0]


def test_weight_rule_thresholds_are_configurable() -> None:
    weights = _steady(82.0, 5) + _ramp(82.0, 0.5, 3)
    assert weight_gain_3d(_days(len(weights)), weights) == []
    hits = weight_gain_3d(_days(len(weights)), weights, gain_kg=1.4, window_days=3.0)
    assert [hit.day for hit in hits] == [7.0]


# --- hf-weight-gain-ma ---------------------------------------------------------------------------------


def test_moving_average_catches_a_slow_creep_the_3_day_rule_misses() -> None:
    # 1.5 kg every 5 days (0.3 kg a day), kept up for ten days: never 2 kg in any 3 days.
    rng = np.random.default_rng(SEED)
    weights = (np.array(_steady(74.0, 14) + _ramp(74.0, 0.3, 10) + _steady(77.0, 4))).tolist()
    noisy = [round(w + float(e), 1) for w, e in zip(weights, rng.normal(0.0, 0.1, len(weights)), strict=True)]
    days = _days(len(noisy))
    assert weight_gain_3d(days, noisy) == []
    hits = weight_gain_moving_average(days, noisy)
    assert len(hits) == 1
    assert hits[0].rule == "hf-weight-gain-ma"
    assert 14 + 5 <= hits[0].day <= 14 + 9  # during the creep, once the averages have seen enough of it
    assert "above its lowest in the 7 days before" in hits[0].reason


def test_moving_average_ignores_day_to_day_scatter() -> None:
    rng = np.random.default_rng(SEED)
    weights = (78.0 + rng.normal(0.0, 0.4, 120)).round(1).tolist()  # clothes, meals, scale placement
    assert weight_gain_moving_average(_days(len(weights)), weights) == []


def test_moving_average_fires_once_per_excursion_and_re_arms() -> None:
    weights = _steady(74.0, 10) + _ramp(74.0, 0.6, 5) + _steady(77.0, 14) + _ramp(77.0, 0.6, 5)
    hits = weight_gain_moving_average(_days(len(weights)), weights)
    assert len(hits) == 2
    assert 10 <= hits[0].day < 15 and 29 <= hits[1].day < 34


# --- copd-spo2-drop, copd-pulse-rise -----------------------------------------------------------------


def _stable_copd_spo2(count: int, seed: int = SEED) -> list[float]:
    """A COPD patient (scale 2) whose oximeter shows 90 or 91 % on a good day."""
    values: list[float] = np.random.default_rng(seed).choice([90.0, 91.0], size=count).tolist()
    return values


def test_spo2_rule_is_silent_on_a_copd_patients_stable_90_to_91() -> None:
    spo2 = _stable_copd_spo2(120)
    assert spo2_points(90.0) == 3  # NEWS2 scale 1 would call every one of these days red
    assert copd_spo2_drop(_days(len(spo2)), spo2) == []


def test_spo2_rule_fires_on_a_5_point_drop_from_a_personal_baseline_of_91() -> None:
    spo2 = [91.0, 92.0, 91.0, 90.0, 91.0] * 6 + [86.0, 86.0, 87.0, 91.0]
    hits = copd_spo2_drop(_days(len(spo2)), spo2)
    assert [hit.day for hit in hits] == [30.0]
    assert hits[0].rule == "copd-spo2-drop"
    assert "SpO2 86 %" in hits[0].reason and "usual 91.0 %" in hits[0].reason


def test_spo2_rule_fires_once_per_excursion_and_re_arms() -> None:
    spo2 = [*_stable_copd_spo2(30), 85.0, 85.0, 86.0, *_stable_copd_spo2(10, seed=1), 85.0]
    hits = copd_spo2_drop(_days(len(spo2)), spo2)
    assert [hit.day for hit in hits] == [30.0, 43.0]


def test_spo2_rule_waits_for_a_baseline() -> None:
    spo2 = [95.0, 94.0, 85.0, 85.0, 95.0, 95.0, 94.0]
    assert copd_spo2_drop(_days(len(spo2)), spo2) == []


def test_pulse_rule_fires_on_a_rise_of_15_above_the_patients_own_normal() -> None:
    rng = np.random.default_rng(SEED)
    pulse = [*(84.0 + rng.normal(0.0, 3.0, 40)).round().tolist(), 101.0, 104.0, 99.0]
    days = _days(len(pulse))
    hits = copd_pulse_rise(days, pulse)
    assert [hit.day for hit in hits] == [40.0]
    assert hits[0].rule == "copd-pulse-rise" and "Pulse 101 /min" in hits[0].reason


def test_pulse_rule_is_silent_on_normal_variation() -> None:
    rng = np.random.default_rng(SEED)
    pulse = (84.0 + rng.normal(0.0, 4.0, 180)).round().tolist()
    assert copd_pulse_rise(_days(len(pulse)), pulse) == []


def test_copd_rules_use_the_baselines_they_are_given() -> None:
    days, spo2 = _days(3), [92.0, 92.0, 92.0]
    usual = [None, Baseline(95.0, 1.0, 20), Baseline(97.0, 1.0, 21)]
    hits = copd_spo2_drop(days, spo2, baselines=usual)
    assert [hit.day for hit in hits] == [2.0]
    given_pulse = [Baseline(70.0, 3.0, 30)] * 3
    assert [h.day for h in copd_pulse_rise(days, [80.0, 84.0, 90.0], baselines=given_pulse)] == [2.0]


def test_copd_rules_default_to_baseline_series() -> None:
    spo2 = [*_stable_copd_spo2(40), 84.0]
    days = _days(len(spo2))
    computed = baseline_series(days, spo2, vital="spo2")
    assert copd_spo2_drop(days, spo2) == copd_spo2_drop(days, spo2, baselines=computed)


# --- causality ----------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(min_value=60.0, max_value=100.0, allow_nan=False), min_size=2, max_size=40),
    cut=st.integers(min_value=1, max_value=39),
)
def test_rules_judge_each_reading_on_the_past_only(values: list[float], cut: int) -> None:
    cut = min(cut, len(values) - 1)
    days = _days(len(values))
    rules = (weight_gain_3d, weight_gain_moving_average, copd_spo2_drop, copd_pulse_rise)
    for rule in rules:
        whole: list[RuleHit] = rule(days, values)
        prefix: list[RuleHit] = rule(days[:cut], values[:cut])
        assert [hit for hit in whole if hit.day < cut] == prefix


# --- input checks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule", [weight_gain_3d, weight_gain_moving_average, copd_spo2_drop, copd_pulse_rise]
)
@pytest.mark.parametrize(
    ("days", "values", "message"),
    [
        ([0.0, 1.0, 2.0], [80.0, 80.0], "2 values for 3 days"),
        ([0.0, 2.0, 1.0], [80.0, 80.0, 80.0], "not in ascending order"),
        ([0.0, 1.0, 2.0], [80.0, math.nan, 80.0], "not a finite number at index 1"),
        ([0.0, math.inf, 2.0], [80.0, 80.0, 80.0], "days: not a finite number"),
    ],
)
def test_rules_refuse_bad_series(rule: object, days: list[float], values: list[float], message: str) -> None:
    assert callable(rule)
    with pytest.raises(SeriesError, match=message):
        rule(days, values)


def test_given_baselines_must_match_the_readings() -> None:
    with pytest.raises(SeriesError, match="2 baselines for 3 readings"):
        copd_spo2_drop(_days(3), [90.0, 90.0, 90.0], baselines=[None, None])


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_thresholds_must_be_positive(bad: float) -> None:
    with pytest.raises(SeriesError, match="gain_kg"):
        weight_gain_3d(_days(3), [80.0, 80.0, 80.0], gain_kg=bad)
    with pytest.raises(SeriesError, match="drop_points"):
        copd_spo2_drop(_days(3), [90.0, 90.0, 90.0], drop_points=bad)


def test_weight_rule_fires_on_the_first_reading_over_the_threshold_of_a_steep_gain() -> None:
    weights = _steady(82.0, 10) + _ramp(82.0, 4.0 / 3, 3)  # 1.3 kg a day: over 2 kg on the second day
    hits = weight_gain_3d(_days(len(weights)), weights)
    assert [hit.day for hit in hits] == [11.0]
    assert "in 2 days" in hits[0].reason
