"""What a nurse reads: reasons from a real NEWS2 result, ages, values, bands. Pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.api.i18n import use_language
from gateway.api.presenters import age, band, completeness, measured, missing_reasons, reading, top_reasons
from gateway.store.patient_views import ReadingRow
from gateway.store.worklist import Measured
from models.news2 import Measured as VitalMeasured
from models.news2 import VitalSigns, score_news2

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)


def test_top_reasons_come_from_the_news2_detail_most_points_first() -> None:
    at = NOW - timedelta(minutes=30)
    result = score_news2(
        VitalSigns(
            spo2=VitalMeasured(91, at),
            systolic_bp=VitalMeasured(105, at),
            pulse=VitalMeasured(115, at),
            temperature=VitalMeasured(37.0, at),
        ),
        NOW,
    )
    detail = result.to_dict()
    assert top_reasons(detail) == [
        "SpO₂ 91 %: 3 points",
        "Pulse 115 /min: 2 points",
        "Systolic BP 105 mmHg: 1 point",
    ]
    assert top_reasons(detail, limit=1) == ["SpO₂ 91 %: 3 points"]
    assert completeness(detail) is not None and "3 of 7" in (completeness(detail) or "")
    assert any("Respiration rate" in line for line in missing_reasons(detail))


def test_reasons_fall_back_to_a_plain_list_and_to_nothing() -> None:
    assert top_reasons({"reasons": ["a", "b", "c", "d"]}) == ["a", "b", "c"]
    assert top_reasons(None) == [] and top_reasons({}) == []
    assert completeness({"complete": True}) is None


def test_band_is_shown_with_text() -> None:
    assert band("high").label == "High" and band("high").css == "band-high"
    assert band(None).label == "No score"
    assert band("unheard-of").label == "unheard-of"


def test_age_in_the_largest_sensible_unit() -> None:
    assert age(None, NOW) == "no readings"
    assert age(NOW - timedelta(seconds=20), NOW) == "just now"
    assert age(NOW - timedelta(minutes=12), NOW) == "12 minutes ago"
    assert age(NOW - timedelta(hours=5, minutes=59), NOW) == "5 hours ago"
    assert age(NOW - timedelta(hours=47), NOW) == "47 hours ago"
    assert age(NOW - timedelta(days=3, hours=1), NOW) == "3 days ago"
    assert "future" in age(NOW + timedelta(hours=1), NOW)


def test_values_with_units_people_read() -> None:
    assert measured(Measured(36.6, "Cel", NOW)) == "36.6 °C"
    assert measured(Measured(120.0, "mm[Hg]", NOW)) == "120 mmHg"
    assert measured(None) == "—"
    panel = ReadingRow(NOW, "blood-pressure", None, None, {"systolic": 128, "diastolic": 84}, None, False)
    assert reading(panel) == "128/84 mmHg"
    absent = ReadingRow(NOW, "spo2", None, "%", None, "not-a-number", False)
    # The data-absent-reason code in words, in the reader's language; an unknown code as it is.
    assert reading(absent) == "no value (not a number)"
    with use_language("da"):
        assert reading(absent) == "ingen værdi (ikke et tal)"
    unknown = ReadingRow(NOW, "spo2", None, "%", None, "masked", False)
    assert reading(unknown) == "no value (masked)"
