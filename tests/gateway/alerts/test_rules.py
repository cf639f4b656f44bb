"""Alert rules: NEWS2's own trigger levels, and a reason that names what scored and what was missing."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.alerts.rules import decide_alert
from models.news2 import Measured, VitalSigns, score_news2

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def _score(**values: float) -> object:
    vitals = VitalSigns(**{k: Measured(v, NOW) for k, v in values.items()})  # type: ignore[arg-type]
    return score_news2(vitals, NOW)


def test_low_scores_raise_nothing() -> None:
    assert decide_alert(_score(spo2=95, pulse=95, systolic_bp=120, temperature=37.0)) is None  # type: ignore[arg-type]


def test_red_score_alone_is_medium_and_says_so() -> None:
    decision = decide_alert(_score(spo2=90, pulse=70, systolic_bp=130, temperature=36.8))  # type: ignore[arg-type]
    assert decision is not None and decision.severity == "medium"
    assert "red score" in decision.reason and "SpO2 90 %" in decision.reason


def test_aggregate_five_is_medium_and_seven_is_high() -> None:
    medium = decide_alert(_score(spo2=93, pulse=95, systolic_bp=105, temperature=38.2))  # type: ignore[arg-type]
    high = decide_alert(_score(spo2=91, pulse=125, systolic_bp=95, temperature=39.2))  # type: ignore[arg-type]
    assert medium is not None and medium.severity == "medium" and "aggregate 5" in medium.reason
    assert high is not None and high.severity == "high"


def test_reason_lists_scoring_parameters_first_and_what_was_not_measured() -> None:
    decision = decide_alert(_score(spo2=91, pulse=125, systolic_bp=95, temperature=39.2))  # type: ignore[arg-type]
    assert decision is not None
    head, _, missing = decision.reason.partition("Not measured:")
    assert head.split(": ", 1)[1].startswith("SpO2 91 % (scale 1): 3 points")  # 3 points before 2
    assert "not recorded" not in decision.reason
    assert "respiration rate" in missing and "consciousness" in missing
