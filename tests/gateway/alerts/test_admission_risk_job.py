"""The 30-day admission risk runs in the gateway on stored readings with the shipped model (trained on
SYNTHETIC data): each patient gets a RiskAssessment with a probability and reasons in words, scored
exactly as `homewatch models replay` would score the same readings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fhir.resources.R4B.riskassessment import RiskAssessment

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.admission_risk import METHOD, AdmissionRiskSchedule, score_admission_risk
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient, insert_observations
from models.admission_risk import SHIPPED_MODEL, RiskModel, load
from models.cohort_reader import parse_resources
from models.features import patient_features

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return load(SHIPPED_MODEL)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as c:
        homes = [
            Home(
                Patient(
                    "0101",
                    pid,
                    f"Synthetic {pid}",
                    birth_date=date(1941, 3, 2),
                    conditions=("heart-failure",),
                ),
                f"hub-{pid}",
                (HomeDevice(f"scale-{pid}", "scale"), HomeDevice(f"bpm-{pid}", "blood-pressure-cuff")),
            )
            for pid in ("steady", "gaining", "silent")
        ]
        enroll_homes(c, [Municipality("0101", "København")], homes)
        yield c


def _readings(c: psycopg.Connection[Any], pid: str, kilos: list[float], now: datetime = NOW) -> None:
    rows = []
    for back, kg in enumerate(reversed(kilos)):
        at = now - timedelta(days=back, hours=12)
        weight = Reading("body-weight", Quantity(Decimal(str(kg)), "kg"))
        bp = Reading(
            "blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal("128"), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal("80"), "mm[Hg]")),
            ),
        )
        for reading, device in ((weight, "scale"), (bp, "bpm")):
            obs = build_observation(
                reading, patient_id=pid, device_id=f"{device}-{pid}", hub_id=f"hub-{pid}", effective=at
            )
            rows.append(validate_observation(obs))
    insert_observations(c, "0101", f"hub-{pid}", rows)


def _stored(c: psycopg.Connection[Any], pid: str) -> list[tuple[float, dict[str, Any]]]:
    rows = c.execute(
        "SELECT score, resource FROM scores WHERE patient_id = %s AND method = %s", (pid, METHOD)
    ).fetchall()
    return [(float(s), r) for s, r in rows]


def test_each_patient_gets_a_risk_assessment_with_reasons(
    conn: psycopg.Connection[Any], model: RiskModel
) -> None:
    _readings(conn, "steady", [82.0 + 0.1 * (i % 3) for i in range(30)])
    _readings(conn, "gaining", [82.0] * 25 + [82.6, 83.3, 84.1, 84.9, 85.6])  # +3.6 kg in the last days
    steady = score_admission_risk(conn, model, "0101", "steady", now=NOW)
    gaining = score_admission_risk(conn, model, "0101", "gaining", now=NOW)
    assert steady is not None and gaining is not None and 0 < steady < gaining < 1
    [(score, resource)] = _stored(conn, "gaining")
    RiskAssessment.model_validate(resource)
    assert resource["prediction"][0]["probabilityDecimal"] == pytest.approx(score, abs=1e-4)
    assert "SYNTHETIC" in resource["method"]["text"]
    assert any("eight" in note["text"] for note in resource["note"])  # "Weight up ..." in words


def test_the_gateway_scores_what_replay_would(conn: psycopg.Connection[Any], model: RiskModel) -> None:
    _readings(conn, "gaining", [82.0] * 25 + [82.6, 83.3, 84.1, 84.9, 85.6])
    stored = score_admission_risk(conn, model, "0101", "gaining", now=NOW)
    # The same readings as FHIR resources through the models' own reader and features:
    resources = [r[0] for r in conn.execute("SELECT resource FROM observations WHERE patient_id = 'gaining'")]
    resources += [
        {"resourceType": "Patient", "id": "gaining", "birthDate": "1941-03-02"},
        {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/gaining"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "84114007"}]},
        },
    ]
    cohort = parse_resources(resources)
    [record] = cohort.patients
    row = patient_features(record, cohort, n_days=(NOW.date() - cohort.origin).days + 1)[-1]
    assert stored == pytest.approx(float(model.predict(row[None, :])[0]))


def test_a_patient_without_readings_is_not_scored(conn: psycopg.Connection[Any], model: RiskModel) -> None:
    assert score_admission_risk(conn, model, "0101", "silent", now=NOW) is None
    assert score_admission_risk(conn, model, "0101", "nobody", now=NOW) is None
    assert _stored(conn, "silent") == []


def test_the_schedule_scores_everyone_at_start(
    conn: psycopg.Connection[Any], database_url: str, model: RiskModel
) -> None:
    _readings(conn, "steady", [82.0] * 10, now=datetime.now(UTC))  # the schedule scores as of now
    schedule = AdmissionRiskSchedule(database_url, model, timedelta(hours=24))
    schedule.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while schedule.runs == 0 and datetime.now(UTC) < deadline:
            conn.execute("SELECT pg_sleep(0.1)")
    finally:
        schedule.stop()
    assert schedule.runs == 1
    assert len(_stored(conn, "steady")) == 1 and _stored(conn, "silent") == []
