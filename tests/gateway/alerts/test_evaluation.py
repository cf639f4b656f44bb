"""Every reading is a moment to evaluate, without a database: NEWS2 as of each reading from the newest of
each kind up to it, the disease rules on the readings up to each, the patient's own red limits in force
when each reading was taken. Pure values in, findings out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from gateway.alerts.evaluation import (
    RULE_KINDS,
    SCORED_KINDS,
    VITALS_OF_KIND,
    Finding,
    PatientReadings,
    evaluate,
    threshold_reason,
)
from gateway.alerts.news2_inputs import NEWS2_KINDS
from gateway.api.i18n import use_language
from gateway.api.model_words import model_text
from gateway.api.patient_vitals import VITAL_SIGNS
from gateway.store.evaluation_reads import LimitsSet, PatientToScore, ScoringReading
from models.triage import VITALS, Limits, triage

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
PLAIN = PatientToScore("0101", "p-1", (), False)


def hr(value: float | None, at: datetime, kind: str = "heart-rate") -> ScoringReading:
    return ScoringReading(kind, at, f"{kind}-{at.isoformat()}", value, {})


def bp(systolic: float, diastolic: float, at: datetime) -> ScoringReading:
    components = {"systolic": systolic, "diastolic": diastolic}
    return ScoringReading("blood-pressure", at, f"bp-{at.isoformat()}", None, components)


def seconds(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def findings(
    readings: Sequence[ScoringReading],
    since: datetime = T0,
    patient: PatientToScore = PLAIN,
    limits: Sequence[LimitsSet] = (),
) -> list[Finding]:
    return list(evaluate(PatientReadings(patient, since, readings, limits)).findings)


def summary(found: Sequence[Finding]) -> list[tuple[datetime, str, str, str]]:
    return [(f.at, f.kind, f.key, f.decision.severity) for f in found]


# --- NEWS2 at every reading ---------------------------------------------------------------------------


def test_a_red_reading_behind_a_newer_normal_one_is_still_found() -> None:
    """The defect: scoring only the newest values lost the 140 /min (3 points: a red score)."""
    found = findings([hr(140, seconds(0)), hr(72, seconds(1))])
    assert summary(found) == [(seconds(0), "news2", "", "medium")]
    news2 = found[0].news2
    assert news2 is not None and news2.result.total == 3 and news2.basis == (f"heart-rate-{T0.isoformat()}",)


def test_news2_at_a_reading_uses_the_newest_of_each_kind_up_to_it_and_nothing_later() -> None:
    spo2 = ScoringReading("spo2", seconds(0), "spo2-0", 91.0, {})  # 3 points
    readings = [spo2, hr(95, seconds(10)), hr(140, seconds(30)), bp(95, 60, seconds(20))]
    evaluation = evaluate(PatientReadings(PLAIN, T0, sorted(readings, key=lambda r: r.effective)))
    totals = [f.news2.result.total for f in evaluation.findings if f.news2 is not None]
    # SpO2 alone 3; + pulse 95 (1) = 4; + systolic 95 (2) = 6; pulse 140 instead (3) = 8.
    assert totals == [3, 4, 6, 8]
    assert [f.decision.severity for f in evaluation.findings] == ["medium", "medium", "medium", "high"]
    assert evaluation.current is not None and evaluation.current.at == seconds(30)
    assert evaluation.news2_points == 4


def test_readings_before_since_are_what_the_first_point_stands_on_not_points() -> None:
    readings = [hr(140, seconds(0)), ScoringReading("spo2", seconds(5), "s", 97.0, {})]
    evaluation = evaluate(PatientReadings(PLAIN, seconds(5), readings))
    assert evaluation.news2_points == 1
    [finding] = evaluation.findings  # the pulse of 5 s earlier still scores at the SpO2's time
    assert finding.at == seconds(5) and finding.news2 is not None and finding.news2.result.total == 3


def test_a_pulse_older_than_a_day_is_missing_at_a_later_reading() -> None:
    readings = [hr(140, T0), ScoringReading("spo2", T0 + timedelta(hours=25), "s", 97.0, {})]
    evaluation = evaluate(PatientReadings(PLAIN, T0, readings))
    assert [f.at for f in evaluation.findings] == [T0]
    assert evaluation.current is not None and "pulse" in evaluation.current.result.missing


def test_a_reading_without_a_value_blanks_its_kind_as_the_newest_reading_does() -> None:
    evaluation = evaluate(PatientReadings(PLAIN, T0, [hr(140, seconds(0)), hr(None, seconds(1))]))
    assert [f.at for f in evaluation.findings] == [seconds(0)]
    assert evaluation.current is not None and "pulse" in evaluation.current.result.missing


def test_the_newest_pulse_of_any_device_wins() -> None:
    readings = [hr(140, seconds(0)), hr(70, seconds(1), kind="pulse-rate-oximeter")]
    assert summary(findings(readings)) == [(seconds(0), "news2", "", "medium")]


def test_findings_are_the_same_whenever_they_are_evaluated() -> None:
    """Evaluated all at once or reading by reading (each from its own time, with what came before), a
    series of readings gives the same findings: the decision depends on the readings only."""
    values = [72, 140, 80, 131, 129, 30, 45, 200, 60]
    readings = [hr(v, seconds(i)) for i, v in enumerate(values)]
    at_once = summary(findings(readings))
    one_by_one = [s for i in range(len(readings)) for s in summary(findings(readings[: i + 1], seconds(i)))]
    assert at_once == one_by_one
    assert [at for at, *_ in at_once] == [seconds(i) for i in (1, 3, 5, 7)]


# --- own limits ----------------------------------------------------------------------------------------


def own(vital: str, at: datetime = T0 - timedelta(days=1), **bounds: float) -> LimitsSet:
    return LimitsSet(vital, Limits(**bounds), at)


def test_a_reading_outside_the_patients_own_red_limit_is_a_medium_threshold_finding() -> None:
    limits = [own("pulse", red_low=45, yellow_low=50, yellow_high=100, red_high=110)]
    found = findings([hr(115, seconds(0)), hr(105, seconds(1)), hr(40, seconds(2))], limits=limits)
    thresholds = [f for f in found if f.kind == "threshold"]
    assert summary(thresholds) == [
        (seconds(0), "threshold", "pulse", "medium"),
        (seconds(2), "threshold", "pulse", "medium"),
    ]
    assert thresholds[0].identifier == f"heart-rate-{seconds(0).isoformat()}"
    assert thresholds[0].decision.reason == "Pulse 115 /min, above the patient's own red limit of 110 /min"
    assert thresholds[1].decision.reason == "Pulse 40 /min, below the patient's own red limit of 45 /min"
    assert thresholds[0].news2 is None and thresholds[0].rule is None


def test_a_vital_without_limits_of_its_own_is_left_to_news2() -> None:
    """Without own limits the red band is NEWS2's, and NEWS2 alerts on it: no second alert."""
    found = findings([hr(140, seconds(0))], limits=[own("spo2", red_low=85)])
    assert summary(found) == [(seconds(0), "news2", "", "medium")]


def test_the_limits_in_force_are_those_set_before_the_reading() -> None:
    limits = [own("pulse", at=seconds(10), red_high=100), own("pulse", at=seconds(20), red_high=150)]
    found = findings([hr(120, seconds(i)) for i in (5, 15, 25)], limits=limits)
    assert [f.at for f in found if f.kind == "threshold"] == [seconds(15)]


def test_each_component_of_a_blood_pressure_is_judged_on_its_own() -> None:
    limits = [own("systolic", red_high=160), own("diastolic", red_high=95)]
    found = findings([bp(170, 100, seconds(0)), bp(150, 100, seconds(1))], limits=limits)
    assert summary([f for f in found if f.kind == "threshold"]) == [
        (seconds(0), "threshold", "diastolic", "medium"),
        (seconds(0), "threshold", "systolic", "medium"),
        (seconds(1), "threshold", "diastolic", "medium"),
    ]


OWN = "the patient's own red limit of"


@pytest.mark.parametrize(
    ("vital", "value", "limits", "reason"),
    [
        ("spo2", 87.6, Limits(red_low=90), f"SpO2 88 %, below {OWN} 90 %"),
        ("temperature", 38.66, Limits(red_high=38.5), f"Temperature 38.7 °C, above {OWN} 38.5 °C"),
        ("weight", 92.34, Limits(red_high=90), f"Weight 92.3 kg, above {OWN} 90 kg"),
        ("systolic", 85, Limits(red_low=90.5), f"Systolic blood pressure 85 mmHg, below {OWN} 90.5 mmHg"),
    ],
)
def test_a_threshold_reason_names_the_value_as_charted_the_unit_and_the_limit(
    vital: str, value: float, limits: Limits, reason: str
) -> None:
    assert threshold_reason(vital, value, triage(vital, value, limits)) == reason


@pytest.mark.parametrize("vital", VITALS)
def test_a_threshold_reason_reads_in_danish_for_every_vital_sign(vital: str) -> None:
    for limits, value in ((Limits(red_low=40), 30.0), (Limits(red_high=40), 40.5)):
        reason = threshold_reason(vital, value, triage(vital, value, limits))
        with use_language("da"):
            danish = model_text(reason)
        assert danish != reason and "borgerens egen røde grænse på 40" in danish
        assert ("under" if limits.red_low else "over") in danish


# --- the disease rules -----------------------------------------------------------------------------------

HF = PatientToScore("0101", "hf", ("heart-failure",), False)


def weights(kilos: Sequence[float]) -> list[ScoringReading]:
    return [
        ScoringReading("body-weight", T0 + timedelta(days=d), f"w{d}", kg, {}) for d, kg in enumerate(kilos)
    ]


def test_a_rule_fires_on_the_reading_that_first_met_it_and_once_per_excursion() -> None:
    series = weights([80.0, 80.1, 79.9, 80.0, 80.6, 81.4, 82.3, 82.2])
    found = findings(series, patient=HF)
    assert [(f.at, f.key) for f in found] == [
        (T0 + timedelta(days=6), "hf-weight-gain-3d"),
        (T0 + timedelta(days=7), "hf-weight-gain-ma"),
    ]
    rule = found[0].rule
    assert rule is not None and found[0].identifier == "w6" and rule.reason.startswith("Weight up 2.3 kg")
    assert found[0].decision.reason == "Heart-failure weight gain: " + rule.reason
    # From a later time only the later reading is judged, on the history before it.
    assert [(f.at, f.key) for f in findings(series, T0 + timedelta(days=7), HF)] == [
        (T0 + timedelta(days=7), "hf-weight-gain-ma")
    ]
    # The same readings in a patient without heart failure fire nothing.
    assert findings(series) == []


# --- the tables the evaluation reads by ----------------------------------------------------------------


def test_every_kind_of_a_vital_sign_on_the_patient_page_is_judged_against_the_same_vital() -> None:
    page = {(kind, vital.key, vital.component) for vital in VITAL_SIGNS for kind in vital.kinds}
    here = {(kind, vital, component) for kind, pairs in VITALS_OF_KIND.items() for vital, component in pairs}
    assert here == page
    assert {vital for pairs in VITALS_OF_KIND.values() for vital, _ in pairs} == set(VITALS)
    assert set(NEWS2_KINDS) | set(RULE_KINDS) | set(VITALS_OF_KIND) == set(SCORED_KINDS)
