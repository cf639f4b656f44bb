"""Issue 21: the answers to the daily symptom check and the measurement plan reach the 30-day risk's
features, live (``gateway.alerts.admission_risk.patient_history``) and in a municipality's training
history (``gateway.store.training_reads``), from real PostgreSQL; a patient with neither has them as
not known (NaN). Only the patient's own municipality is read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import pytest

from fhir_contract.observation import build_observation
from fhir_contract.plan import PlanItem
from fhir_contract.questionnaire import build_response, current, validate_response
from fhir_contract.readings import Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.admission_risk import patient_history
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.plans import insert_plan
from gateway.store.questionnaires import DeliveredResponse, insert_responses
from gateway.store.repository import Municipality, Patient, insert_observations
from gateway.store.training_reads import municipality_history
from models.cohort_reader import stored_cohort
from models.features import COLUMN, patient_features

PID, HUB = "p-sym", "hub-p-sym"
NEW = ("symptoms_worst_7d", "symptoms_worse_7d", "symptoms_unanswered_7d", "plan_missed_share_14d")


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Patient p-sym of 0101 (heart failure) weighed every day for 40 days; an empty municipality 0202."""
    with psycopg.connect(database_url, autocommit=True) as c:
        patient = Patient("0101", PID, "Synthetic Sym", date(1940, 5, 1), ("heart-failure",))
        enroll_homes(
            c,
            [Municipality("0101", "København"), Municipality("0202", "Aarhus")],
            [Home(patient, HUB, (HomeDevice("scale", "scale"),))],
        )
        now = datetime.now(UTC)
        rows = []
        for back in range(40, 0, -1):
            reading = Reading("body-weight", Quantity(Decimal("80.0"), "kg"))
            at = now - timedelta(days=back)
            obs = build_observation(reading, patient_id=PID, device_id="scale", hub_id=HUB, effective=at)
            rows.append(validate_observation(obs))
        insert_observations(c, "0101", HUB, rows)
        yield c


def _today(conn: psycopg.Connection[Any], now: datetime) -> dict[str, float]:
    cohort = patient_history(conn, "0101", PID, now)
    assert cohort is not None
    row = patient_features(cohort.patients[0], cohort, n_days=(now.date() - cohort.origin).days + 1)[-1]
    return {name: float(row[COLUMN[name]]) for name in NEW}


def _answer(conn: psycopg.Connection[Any], authored: datetime, breathlessness: str) -> None:
    questionnaire = current("heart-failure-daily")
    answers = {q.link_id: min(q.options, key=lambda o: o.ordinal).code for q in questionnaire.questions}
    answers |= {"breathlessness": breathlessness, "ankle-swelling": "yes"}
    resource = build_response(questionnaire, answers, patient_id=PID, hub_id=HUB, authored=authored)
    insert_responses(conn, [DeliveredResponse("0101", HUB, validate_response(resource))])


def test_answers_and_a_missed_plan_reach_the_live_features_and_the_training_history(
    conn: psycopg.Connection[Any],
) -> None:
    now = datetime.now(UTC)
    assert all(np.isnan(value) for value in _today(conn, now).values())  # neither: not known, not "fine"
    _answer(conn, now - timedelta(days=2), "worse")
    _answer(conn, now - timedelta(days=1), "same")
    # SpO2 every day at 03:00 for 20 days: the patient has no oximeter, so every occurrence is missed.
    spo2 = PlanItem("spo2", (time(3, 0),), grace=timedelta(minutes=15))
    insert_plan(conn, "0101", PID, [spo2], set_by="nurse", set_at=now - timedelta(days=20))
    features = _today(conn, now)
    assert features["symptoms_worst_7d"] == 2
    assert features["symptoms_worse_7d"] == 3  # "worse" once, ankle swelling "yes" twice
    assert features["plan_missed_share_14d"] == 1.0
    history = municipality_history(conn, "0101", until=now)
    (stored,) = (p for p in history if p.patient_id == PID)
    assert [ordinals[0] for _at, ordinals in stored.symptoms] == [2, 1]
    planned = list(stored.planned)
    assert 19 <= len(planned) <= 21 and not any(done for _due, _deadline, done in planned)
    cohort = stored_cohort([stored])
    assert len(cohort.patients[0].symptoms) == 2
    assert municipality_history(conn, "0202", until=now) == []


def test_a_plan_removed_or_later_replaced_counts_only_while_it_was_in_force(
    conn: psycopg.Connection[Any],
) -> None:
    now = datetime.now(UTC)
    spo2 = PlanItem("spo2", (time(3, 0),), grace=timedelta(minutes=15))
    insert_plan(conn, "0101", PID, [spo2], set_by="nurse", set_at=now - timedelta(days=30))
    insert_plan(conn, "0101", PID, [], set_by="nurse", set_at=now - timedelta(days=25))  # removed
    assert np.isnan(_today(conn, now)["plan_missed_share_14d"])  # nothing due in the last 14 days
