"""Issue 21: the symptom-check answers and the measurement plan as features of the 30-day risk.

Hand-checked values, no look-ahead, "not known" (NaN) for a patient who answers no questionnaire or has
no plan, and, on SYNTHETIC data, a model trained with them scoring worse answers and missed planned
measurements higher, with a patient without either in between (neutral, not zero risk)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from models.admission_risk import RiskModel, describe, top_factors, train
from models.cohort.history import simulate_history
from models.cohort.populations import SYMPTOM_CHECKS
from models.cohort.records import history_cohort
from models.cohort_reader import Cohort, PatientRecord, PlanCheck, Series, SymptomCheck
from models.default_model import EXPECTED_SIGNS
from models.features import COLUMN, MODEL_FEATURES, day_features, day_state, patient_features

NEW = ("symptoms_worst_7d", "symptoms_worse_7d", "symptoms_unanswered_7d", "plan_missed_share_14d")


def _patient(symptoms: tuple[SymptomCheck, ...] = (), planned: tuple[PlanCheck, ...] = ()) -> PatientRecord:
    days = tuple(float(d) + 0.3 for d in range(30))
    return PatientRecord(
        patient_id="p",
        sex=None,
        birth_date=date(1940, 1, 1),
        conditions=frozenset({"heart-failure"}),
        readings={"weight": Series(days, tuple(80.0 for _ in days))},
        changes=(),
        admissions=(),
        symptoms=symptoms,
        planned=planned,
    )


def _cohort(*patients: PatientRecord) -> Cohort:
    return Cohort(date(2025, 1, 1), 30, patients, True)


def _row(patient: PatientRecord, day: int) -> dict[str, float]:
    x = patient_features(patient, _cohort(patient))[day]
    return {name: float(x[COLUMN[name]]) for name in (*NEW, "plan_due_14d")}


def test_symptom_features_count_the_last_7_days_by_hand() -> None:
    # Answers on days 10, 12, 13 (the last says worse twice), then nothing until day 25.
    checks = (
        SymptomCheck(10.3, (1, 0, 0, 0, 1)),
        SymptomCheck(12.3, (0, 0, 0, 0, 0)),
        SymptomCheck(13.3, (2, 2, 0, 0, 1)),
        SymptomCheck(25.3, (1, 0, 0, 0, 0)),
    )
    patient = _patient(symptoms=checks)
    assert np.isnan(_row(patient, 9)["symptoms_worst_7d"])  # before the first answer: not known
    assert np.isnan(_row(patient, 9)["symptoms_unanswered_7d"])
    assert _row(patient, 10)["symptoms_unanswered_7d"] == 0  # the window starts at the first answer
    on_13 = _row(patient, 13)
    assert (on_13["symptoms_worst_7d"], on_13["symptoms_worse_7d"], on_13["symptoms_unanswered_7d"]) == (
        2,
        2,
        1,
    )
    on_19 = _row(patient, 19)  # days 13..19: one answer (day 13)
    assert (on_19["symptoms_worst_7d"], on_19["symptoms_worse_7d"], on_19["symptoms_unanswered_7d"]) == (
        2,
        2,
        6,
    )
    on_22 = _row(patient, 22)  # days 16..22: no answer: nothing known of the symptoms, 7 days unanswered
    assert np.isnan(on_22["symptoms_worst_7d"]) and np.isnan(on_22["symptoms_worse_7d"])
    assert on_22["symptoms_unanswered_7d"] == 7


def test_plan_missed_share_counts_judged_occurrences_of_the_last_14_days() -> None:
    # One occurrence a day at 07:30 with 3 hours' grace; days 5, 6 and 7 missed.
    planned = tuple(PlanCheck(d + 0.3125, d + 0.4375, d not in (5, 6, 7)) for d in range(30))
    patient = _patient(planned=planned)
    on_7 = _row(patient, 7)  # days 0..7: 8 judged, 3 missed
    assert on_7["plan_missed_share_14d"] == pytest.approx(3 / 8) and on_7["plan_due_14d"] == 8
    assert _row(patient, 19)["plan_missed_share_14d"] == pytest.approx(2 / 14)  # days 6..19
    assert _row(patient, 20)["plan_missed_share_14d"] == pytest.approx(1 / 14)  # days 7..20
    assert _row(patient, 21)["plan_missed_share_14d"] == 0  # days 8..21


def test_a_patient_without_questionnaire_or_plan_gets_not_known_never_zero() -> None:
    row = _row(_patient(), 20)
    assert all(np.isnan(row[name]) for name in NEW)


def test_nothing_after_day_d_changes_day_d() -> None:
    early = (SymptomCheck(10.3, (1, 1)),)
    later = (*early, SymptomCheck(11.3, (2, 2)))
    plan_early = (PlanCheck(10.3, 10.4, True),)
    plan_later = (*plan_early, PlanCheck(10.9, 11.05, False))  # deadline after day 10 ends
    a = patient_features(_patient(early, plan_early), _cohort(_patient()))
    b = patient_features(_patient(later, plan_later), _cohort(_patient()))
    assert np.array_equal(a[:11], b[:11], equal_nan=True)
    assert not np.array_equal(a[11], b[11], equal_nan=True)


def test_the_vectorised_day_matrix_carries_the_new_features() -> None:
    cohort = history_cohort(simulate_history(12, 40, 5, settings=SYMPTOM_CHECKS))
    assert any(p.symptoms for p in cohort.patients) and any(p.planned for p in cohort.patients)
    for day in (10, 30):
        expected = np.vstack([patient_features(p, cohort, n_days=day + 1)[day] for p in cohort.patients])
        assert np.allclose(day_features(day_state(cohort.patients, cohort, day)), expected, equal_nan=True)


def test_the_new_features_are_in_the_model_with_a_direction_written_down() -> None:
    assert set(NEW) <= set(MODEL_FEATURES)
    assert all(EXPECTED_SIGNS[name] == 1 for name in NEW)


# --- on SYNTHETIC data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained() -> tuple[RiskModel, Cohort]:
    cohort = history_cohort(simulate_history(220, 150, 21, settings=SYMPTOM_CHECKS))
    return train(cohort, description="SYNTHETIC symptom-checks test cohort"), cohort


def _coefficients(model: RiskModel) -> dict[str, float]:
    pipe = model.estimator.calibrated_classifiers_[0].estimator
    return dict(zip(model.features, pipe[-1].coef_[0], strict=True))


def test_worse_answers_and_missed_planned_measurements_raise_the_synthetic_risk(
    trained: tuple[RiskModel, Cohort],
) -> None:
    model, cohort = trained
    coef = _coefficients(model)
    assert coef["symptoms_worse_7d"] > 0 and coef["plan_missed_share_14d"] > 0
    patient = next(p for p in cohort.patients if p.symptoms and p.planned)
    row = patient_features(patient, cohort)[100]
    fine, worse, unknown = row.copy(), row.copy(), row.copy()
    fine[[COLUMN[n] for n in NEW]] = (1, 0, 0, 0)
    worse[[COLUMN[n] for n in NEW]] = (2, 6, 0, 0.5)
    unknown[[COLUMN[n] for n in NEW]] = np.nan
    risk_fine, risk_worse, risk_unknown = model.predict(np.vstack([fine, worse, unknown]))
    assert risk_fine < risk_unknown < risk_worse  # not known is neutral: no reason, not "all fine"
    reasons = [name for name, _c in top_factors(model, worse, k=5)]
    assert "symptoms_worse_7d" in reasons or "plan_missed_share_14d" in reasons
    assert not set(NEW) & {name for name, _c in top_factors(model, unknown, k=len(model.features))}


def test_the_new_features_in_words() -> None:
    x = np.full(len(COLUMN), np.nan)
    for name, value in (
        ("symptoms_worst_7d", 2),
        ("symptoms_worse_7d", 1),
        ("symptoms_unanswered_7d", 3),
        ("plan_missed_share_14d", 0.25),
        ("plan_due_14d", 12),
    ):
        x[COLUMN[name]] = value
    assert [describe(name, x) for name in NEW] == [
        "Symptom check: worst answer of the last 7 days was worse",
        "Symptom check: 1 answer of the last 7 days said worse",
        "Symptom check not answered on 3 of the last 7 days",
        "Missed 3 of 12 planned measurements in the last 14 days",
    ]
