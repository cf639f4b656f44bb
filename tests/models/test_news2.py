"""NEWS2 against the Royal College of Physicians' 2017 chart: every band edge, scale 2, ACVPU, the bands,
and honest handling of missing, stale and future parameters."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from models.news2 import (
    PARAMETERS,
    Measured,
    News2Error,
    VitalSigns,
    air_or_oxygen_points,
    band_for,
    consciousness_points,
    pulse_points,
    respiration_rate_points,
    score_news2,
    spo2_points,
    systolic_bp_points,
    temperature_points,
)

NOW = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)


def _now(value: float) -> Measured:
    return Measured(value, NOW)


def _all_normal(**changes: object) -> VitalSigns:
    """A complete set scoring 0 everywhere, with `changes` applied."""
    fields: dict[str, object] = {
        "respiration_rate": _now(16),
        "spo2": _now(97),
        "systolic_bp": _now(125),
        "pulse": _now(72),
        "temperature": _now(36.8),
        "on_oxygen": False,
        "acvpu": "A",
        "scale2": False,
    }
    fields.update(changes)
    return VitalSigns(**fields)  # type: ignore[arg-type]


# --- band edges, both sides of every edge -------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "points"),
    [(0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)],
)
def test_respiration_rate_band_edges(rate: float, points: int) -> None:
    assert respiration_rate_points(rate) == points


@pytest.mark.parametrize(
    ("spo2", "points"),
    [(70, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
)
def test_spo2_scale1_band_edges(spo2: float, points: int) -> None:
    assert spo2_points(spo2) == points
    assert spo2_points(spo2, on_oxygen=True) == points  # scale 1 does not depend on oxygen


@pytest.mark.parametrize(
    ("spo2", "points"),
    [
        (70, 3),
        (83, 3),
        (84, 2),
        (85, 2),
        (86, 1),
        (87, 1),
        (88, 0),
        (92, 0),
        (93, 0),
        (96, 0),
        (97, 0),
        (100, 0),
    ],
)
def test_spo2_scale2_on_air_band_edges(spo2: float, points: int) -> None:
    assert spo2_points(spo2, scale2=True, on_oxygen=False) == points


@pytest.mark.parametrize(
    ("spo2", "points"),
    [
        (83, 3),
        (84, 2),
        (85, 2),
        (86, 1),
        (87, 1),
        (88, 0),
        (92, 0),
        (93, 1),
        (94, 1),
        (95, 2),
        (96, 2),
        (97, 3),
        (100, 3),
    ],
)
def test_spo2_scale2_on_oxygen_band_edges(spo2: float, points: int) -> None:
    assert spo2_points(spo2, scale2=True, on_oxygen=True) == points


def test_air_scores_0_and_oxygen_scores_2() -> None:
    assert air_or_oxygen_points(False) == 0
    assert air_or_oxygen_points(True) == 2


@pytest.mark.parametrize(
    ("systolic", "points"),
    [(60, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3), (260, 3)],
)
def test_systolic_bp_band_edges(systolic: float, points: int) -> None:
    assert systolic_bp_points(systolic) == points


@pytest.mark.parametrize(
    ("pulse", "points"),
    [
        (30, 3),
        (40, 3),
        (41, 1),
        (50, 1),
        (51, 0),
        (90, 0),
        (91, 1),
        (110, 1),
        (111, 2),
        (130, 2),
        (131, 3),
        (180, 3),
    ],
)
def test_pulse_band_edges(pulse: float, points: int) -> None:
    assert pulse_points(pulse) == points


@pytest.mark.parametrize(
    ("temperature", "points"),
    [
        (33.0, 3),
        (35.0, 3),
        (35.1, 1),
        (36.0, 1),
        (36.1, 0),
        (38.0, 0),
        (38.1, 1),
        (39.0, 1),
        (39.1, 2),
        (41.0, 2),
    ],
)
def test_temperature_band_edges(temperature: float, points: int) -> None:
    assert temperature_points(temperature) == points


# --- values between chart rows ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "value", "points"),
    [
        (temperature_points, 35.05, 1),  # charts as 35.1 (half up on the decimal spelling, not 35.0499...)
        (temperature_points, 35.049, 3),
        (temperature_points, 38.05, 1),
        (temperature_points, 38.04, 0),
        (temperature_points, 36.05, 0),
        (systolic_bp_points, 90.5, 2),
        (systolic_bp_points, 90.49, 3),
        (systolic_bp_points, 219.5, 3),
        (pulse_points, 130.5, 3),
        (pulse_points, 50.4, 1),
        (respiration_rate_points, 20.5, 2),
        (respiration_rate_points, 8.5, 1),
        (spo2_points, 95.5, 0),
        (spo2_points, 91.4, 3),
    ],
)
def test_values_between_rows_round_half_up_to_the_chart_resolution(
    function: object, value: float, points: int
) -> None:
    assert callable(function)
    assert function(value) == points


def test_charted_value_is_shown_and_raw_value_kept() -> None:
    result = score_news2(_all_normal(systolic_bp=_now(90.5), temperature=_now(35.05)), NOW)
    by_name = {p.name: p for p in result.parameters}
    assert by_name["systolic_bp"].value == 90.5
    assert by_name["systolic_bp"].charted == 91.0
    assert by_name["temperature"].charted == 35.1
    assert "Systolic BP 91 mmHg: 2 points" in result.reasons()
    assert "Temperature 35.1 °C: 1 point" in result.reasons()


# --- consciousness ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("acvpu", "points"),
    [
        ("A", 0),
        ("a", 0),
        ("alert", 0),
        ("C", 3),
        ("new confusion", 3),
        ("V", 3),
        ("voice", 3),
        ("P", 3),
        ("pain", 3),
        ("U", 3),
        (" unresponsive ", 3),
    ],
)
def test_acvpu_alert_scores_0_and_cvpu_score_3(acvpu: str, points: int) -> None:
    assert consciousness_points(acvpu) == points


def test_unknown_acvpu_is_refused_with_the_parameter_named() -> None:
    with pytest.raises(News2Error) as caught:
        score_news2(_all_normal(acvpu="drowsy"), NOW)
    assert caught.value.parameter == "consciousness"
    assert caught.value.value == "drowsy"


# --- scale 2 in the score -----------------------------------------------------------------------------


def test_scale2_on_air_scores_high_saturation_0() -> None:
    result = score_news2(_all_normal(spo2=_now(97), scale2=True, on_oxygen=False), NOW)
    assert result.total == 0
    assert result.scale == 2
    assert "scale 2" in {p.detail for p in result.parameters if p.name == "spo2"}


def test_scale2_on_oxygen_scores_saturation_and_oxygen() -> None:
    result = score_news2(_all_normal(spo2=_now(97), scale2=True, on_oxygen=True), NOW)
    points = {p.name: p.points for p in result.parameters}
    assert points["spo2"] == 3
    assert points["air_or_oxygen"] == 2
    assert result.total == 5
    assert result.band == "medium"
    assert "SpO2 97 % (scale 2, on oxygen): 3 points" in result.reasons()


def test_scale2_in_target_range_scores_0_where_scale1_scores_3() -> None:
    scale1 = score_news2(_all_normal(spo2=_now(89)), NOW)
    scale2 = score_news2(_all_normal(spo2=_now(89), scale2=True), NOW)
    assert (scale1.total, scale2.total) == (3, 0)


def test_scale2_with_oxygen_unknown_scores_as_air_and_says_so() -> None:
    result = score_news2(_all_normal(spo2=_now(95), scale2=True, on_oxygen=None), NOW)
    assert result.total == 0
    assert result.missing == ("air_or_oxygen",)
    assert not result.complete
    assert any("would score 2 points" in note for note in result.notes)
    # oxygen would add 2 for itself and 2 more on the SpO2 row
    assert result.max_total == 4


# --- bands --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "red", "band"),
    [
        (0, False, "low"),
        (4, False, "low"),
        (3, True, "low-medium"),
        (4, True, "low-medium"),
        (5, False, "medium"),
        (5, True, "medium"),
        (6, True, "medium"),
        (7, False, "high"),
        (7, True, "high"),
        (20, True, "high"),
    ],
)
def test_band_for_aggregate_and_red_score(total: int, red: bool, band: str) -> None:
    assert band_for(total, red) == band


def test_a_single_3_with_aggregate_3_is_low_medium() -> None:
    result = score_news2(_all_normal(respiration_rate=_now(26)), NOW)
    assert (result.total, result.red_score, result.band) == (3, True, "low-medium")


def test_a_single_3_with_aggregate_5_is_medium() -> None:
    result = score_news2(_all_normal(respiration_rate=_now(26), pulse=_now(115)), NOW)
    assert (result.total, result.band) == (5, "medium")


def test_aggregate_4_without_a_3_is_low() -> None:
    result = score_news2(_all_normal(respiration_rate=_now(22), pulse=_now(115)), NOW)
    assert (result.total, result.red_score, result.band) == (4, False, "low")


def test_worked_example_read_off_the_rcp_chart() -> None:
    # Respiration 23 (21-24: 2), SpO2 93 % scale 1 (92-93: 2), on air (0), systolic 104 (101-110: 1),
    # pulse 118 (111-130: 2), alert (0), temperature 38.6 (38.1-39.0: 1): aggregate 8, high.
    vitals = VitalSigns(
        respiration_rate=Measured(23, NOW - timedelta(minutes=5)),
        spo2=Measured(93, NOW - timedelta(minutes=4)),
        systolic_bp=Measured(104, NOW - timedelta(minutes=3)),
        pulse=Measured(118, NOW - timedelta(minutes=3)),
        temperature=Measured(38.6, NOW - timedelta(minutes=1)),
        on_oxygen=False,
        acvpu="A",
    )
    result = score_news2(vitals, NOW)
    assert {p.name: p.points for p in result.parameters} == {
        "respiration_rate": 2,
        "spo2": 2,
        "air_or_oxygen": 0,
        "systolic_bp": 1,
        "pulse": 2,
        "consciousness": 0,
        "temperature": 1,
    }
    assert (result.total, result.band, result.complete, result.max_total) == (8, "high", True, 8)
    assert result.reasons(limit=3) == (
        "Respiration rate 23 /min: 2 points",
        "SpO2 93 % (scale 1): 2 points",
        "Pulse 118 /min: 2 points",
    )
    assert [p.name for p in result.parameters] == list(PARAMETERS)


def test_spec_reason_wording() -> None:
    result = score_news2(_all_normal(spo2=_now(91)), NOW)
    assert result.reasons()[0] == "SpO2 91 % (scale 1): 3 points"


# --- missing, stale and future ------------------------------------------------------------------------


def test_nothing_recorded_is_incomplete_not_normal() -> None:
    result = score_news2(VitalSigns(), NOW)
    assert result.missing == PARAMETERS
    assert not result.complete
    assert result.total == 0
    assert result.max_total == 20
    assert result.reasons()[0] == "No parameter scores points"
    assert "Respiration rate not recorded: not scored" in result.reasons()


def test_home_set_without_respiration_rate_and_acvpu_says_so() -> None:
    vitals = _all_normal(respiration_rate=None, acvpu=None, spo2=_now(91))
    result = score_news2(vitals, NOW)
    assert result.missing == ("respiration_rate", "consciousness")
    assert not result.complete
    assert result.total == 3
    assert result.max_total == 9
    assert {m.reason for m in result.missing_details} == {"not-recorded"}
    reasons = result.reasons()
    assert reasons[0] == "SpO2 91 % (scale 1): 3 points"
    assert "Respiration rate not recorded: not scored" in reasons
    assert "Consciousness not recorded: not scored" in reasons


def test_parameter_older_than_max_age_counts_as_missing_and_says_why() -> None:
    old = Measured(39.5, NOW - timedelta(hours=30))
    result = score_news2(_all_normal(temperature=old), NOW)
    assert result.missing == ("temperature",)
    assert result.total == 0
    (detail,) = result.missing_details
    assert (detail.reason, detail.age) == ("stale", timedelta(hours=30))
    assert "Temperature last measured 30 h ago (older than 24 h): not scored" in result.reasons()


def test_parameter_exactly_max_age_old_is_still_scored() -> None:
    result = score_news2(_all_normal(pulse=Measured(115, NOW - timedelta(hours=24))), NOW)
    assert result.complete
    assert result.total == 2


def test_max_age_is_an_argument() -> None:
    vitals = _all_normal(pulse=Measured(115, NOW - timedelta(hours=2)))
    assert score_news2(vitals, NOW, max_age=timedelta(hours=1)).missing == ("pulse",)
    assert score_news2(vitals, NOW, max_age=timedelta(hours=3)).total == 2
    with pytest.raises(News2Error):
        score_news2(vitals, NOW, max_age=timedelta(0))


def test_reading_from_the_future_beyond_tolerance_is_missing() -> None:
    ahead = _all_normal(pulse=Measured(115, NOW + timedelta(hours=2)))
    result = score_news2(ahead, NOW)
    assert result.missing == ("pulse",)
    assert result.missing_details[0].reason == "future"
    assert "device clock" in result.reasons()[-1]
    slightly = score_news2(_all_normal(pulse=Measured(115, NOW + timedelta(minutes=2))), NOW)
    assert slightly.complete
    assert slightly.total == 2


def test_ages_are_reported_per_parameter() -> None:
    result = score_news2(_all_normal(spo2=Measured(97, NOW - timedelta(hours=3))), NOW)
    spo2 = next(p for p in result.parameters if p.name == "spo2")
    assert spo2.age == timedelta(hours=3)
    assert spo2.at == NOW - timedelta(hours=3)
    oxygen = next(p for p in result.parameters if p.name == "air_or_oxygen")
    assert (oxygen.at, oxygen.age) == (None, None)


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 98.6),  # Fahrenheit
        ("temperature", math.nan),
        ("spo2", 101),
        ("pulse", -1),
        ("systolic_bp", math.inf),
        ("respiration_rate", True),
    ],
)
def test_impossible_values_are_refused(field: str, value: float) -> None:
    with pytest.raises(News2Error) as caught:
        score_news2(_all_normal(**{field: _now(value)}), NOW)
    assert caught.value.parameter == field


def test_naive_and_aware_times_do_not_mix() -> None:
    naive = Measured(72, datetime(2025, 1, 15, 8, 0))
    with pytest.raises(News2Error) as caught:
        score_news2(_all_normal(pulse=naive), NOW)
    assert caught.value.parameter == "pulse"


# --- output -------------------------------------------------------------------------------------------


def test_to_dict_is_json_and_carries_everything_a_nurse_needs() -> None:
    vitals = _all_normal(
        respiration_rate=None, acvpu=None, temperature=Measured(38.4, NOW - timedelta(hours=26))
    )
    data = score_news2(vitals, NOW).to_dict()
    decoded = json.loads(json.dumps(data))
    assert decoded["score"] == "NEWS2"
    assert decoded["complete"] is False
    assert decoded["total"] == 0
    assert decoded["band"] == "low"
    assert [m["name"] for m in decoded["missing"]] == ["respiration_rate", "consciousness", "temperature"]
    assert decoded["missing"][2]["reason"] == "stale"
    assert decoded["parameters"][0]["at"] == NOW.isoformat()
    assert decoded["reasons"][0] == "No parameter scores points"


def test_result_is_frozen() -> None:
    result = score_news2(_all_normal(), NOW)
    with pytest.raises(AttributeError):
        result.total = 3  # type: ignore[misc]
