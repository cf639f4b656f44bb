"""Issue 19, "Done when": staff observations and Encounters sent to ``POST /fhir`` change the patient's
30-day risk. A home-care system's change forms (breathing and general condition changed) raise the
risk the gateway stores with the shipped model; a hospital system's Encounter (admitted 20 days ago,
discharged 12 days ago) sets "days since the last admission" from 365 (none) to 20 and changes the
risk again. Real PostgreSQL, the real app, the shipped model (trained on SYNTHETIC data only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.admission_risk import patient_history, score_admission_risk
from gateway.api.app import create_app
from gateway.api.auth import create_user, mint_token
from gateway.settings import GatewaySettings
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient, insert_observations
from models.admission_risk import SHIPPED_MODEL, RiskModel, load
from models.features import COLUMN, patient_features

CHANGE_SYSTEM = "urn:homewatch:early-detection"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PID = "p-anna"


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return load(SHIPPED_MODEL)


@pytest.fixture
def settings(database_url: str) -> GatewaySettings:
    return GatewaySettings(
        database_url=database_url, secret_key=SecretStr("test-secret-findr"), default_language="en"
    )


@pytest.fixture
def client(settings: GatewaySettings, database_url: str) -> Iterator[TestClient]:
    with (
        ConnectionPool(database_url, min_size=1, max_size=2, open=True) as pool,
        TestClient(create_app(settings, pool)) as test_client,
    ):
        yield test_client


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Patient p-anna of 0101 with 40 days of steady weight and blood pressure; the two system accounts."""
    with psycopg.connect(database_url, autocommit=True) as c:
        patient = Patient("0101", PID, "Synthetic Anna", date(1941, 3, 2), ("heart-failure",))
        home = Home(
            patient, f"hub-{PID}", (HomeDevice("scale", "scale"), HomeDevice("bpm", "blood-pressure-cuff"))
        )
        enroll_homes(c, [Municipality("0101", "København")], [home])
        now = datetime.now(UTC)
        rows = []
        for back in range(40, 0, -1):
            at = now - timedelta(days=back, hours=-2)
            weight = Reading("body-weight", Quantity(Decimal(f"{80 + (back % 3) * 0.1:.1f}"), "kg"))
            bp = Reading(
                "blood-pressure",
                components=(
                    Component("systolic", Quantity(Decimal("128"), "mm[Hg]")),
                    Component("diastolic", Quantity(Decimal("80"), "mm[Hg]")),
                ),
            )
            for reading, device in ((weight, "scale"), (bp, "bpm")):
                obs = build_observation(
                    reading, patient_id=PID, device_id=device, hub_id=f"hub-{PID}", effective=at
                )
                rows.append(validate_observation(obs))
        insert_observations(c, "0101", f"hub-{PID}", rows)
        create_user(c, "ehr-0101", "0101", "homecare_system", None)
        create_user(c, "sp-0101", "0101", "hospital_system", None)
        yield c


def _post(client: TestClient, settings: GatewaySettings, role: str, user: str, *resources: Any) -> list[str]:
    token = mint_token(settings, role=role, municipality_id="0101", subject=user)
    body = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": r} for r in resources]}
    answer = client.post(
        "/fhir",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )
    assert answer.status_code == 200, answer.text
    return [e["response"]["status"] for e in answer.json()["entry"]]


def _form(value: str, at: datetime, **items: bool) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:oid:1.2.208.176.9.1", "value": value}],
        "status": "final",
        "code": {"coding": [{"system": CHANGE_SYSTEM, "code": "change-form"}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": at.isoformat(),
        "component": [
            {"code": {"coding": [{"system": CHANGE_SYSTEM, "code": k}]}, "valueBoolean": v}
            for k, v in items.items()
        ],
    }


def _features(conn: psycopg.Connection[Any], now: datetime) -> dict[str, float]:
    cohort = patient_history(conn, "0101", PID, now)
    assert cohort is not None
    n_days = (now.date() - cohort.origin).days + 1
    row = patient_features(cohort.patients[0], cohort, n_days=n_days)[-1]
    return {
        name: float(row[COLUMN[name]])
        for name in ("change_breathing_7d", "change_general_7d", "days_since_admission")
    }


def test_change_forms_and_a_hospital_stay_sent_to_post_fhir_change_the_30_day_risk(
    client: TestClient, settings: GatewaySettings, conn: psycopg.Connection[Any], model: RiskModel
) -> None:
    now = datetime.now(UTC)
    before = score_admission_risk(conn, model, "0101", PID, now=now)
    assert before is not None
    assert _features(conn, now) == {
        "change_breathing_7d": 0,
        "change_general_7d": 0,
        "days_since_admission": 365,
    }

    forms = (
        _form("v-1", now - timedelta(days=2), breathing=True, general=False, sleep=False),
        _form("v-2", now - timedelta(days=1), breathing=True, general=True),
        _form("v-3", now - timedelta(days=20), pain=True),  # too old to count in the 7-day window
    )
    assert _post(client, settings, "homecare_system", "ehr-0101", *forms) == ["201 Created"] * 3
    assert _features(conn, now) == {
        "change_breathing_7d": 2,
        "change_general_7d": 1,
        "days_since_admission": 365,
    }
    with_changes = score_admission_risk(conn, model, "0101", PID, now=now)
    assert with_changes is not None and with_changes > before

    admitted, discharged = now - timedelta(days=20), now - timedelta(days=12)
    stay = {
        "resourceType": "Encounter",
        "identifier": [{"system": "urn:oid:1.2.208.176.2.1", "value": "adm-77"}],
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "IMP"},
        "subject": {"reference": f"Patient/{PID}"},
        "period": {"start": admitted.isoformat(), "end": discharged.isoformat()},
    }
    assert _post(client, settings, "hospital_system", "sp-0101", stay) == ["201 Created"]
    assert _features(conn, now)["days_since_admission"] == 20
    with_stay = score_admission_risk(conn, model, "0101", PID, now=now)
    assert with_stay is not None and with_stay != with_changes
    # What the gateway stored is the newest RiskAssessment of the patient: the one with both inputs.
    stored = conn.execute(
        "SELECT score FROM scores WHERE patient_id = %s AND method = 'admission-risk-30d'"
        " ORDER BY id DESC LIMIT 1",
        (PID,),
    ).fetchone()
    assert stored is not None and float(stored[0]) == pytest.approx(with_stay)


def test_a_stay_admitted_over_a_year_ago_or_withdrawn_or_discharged_after_the_score_changes_nothing_unknown(
    client: TestClient, settings: GatewaySettings, conn: psycopg.Connection[Any]
) -> None:
    now = datetime.now(UTC)

    def stay(value: str, start: datetime, end: datetime | None, status: str) -> dict[str, Any]:
        period = {"start": start.isoformat()} | ({"end": end.isoformat()} if end else {})
        return {
            "resourceType": "Encounter",
            "identifier": [{"system": "urn:oid:1.2.208.176.2.1", "value": value}],
            "status": status,
            "class": {"system": ACT_CODE, "code": "ACUTE"},
            "subject": {"reference": f"Patient/{PID}"},
            "period": period,
        }

    sent = _post(
        client,
        settings,
        "hospital_system",
        "sp-0101",
        stay("old", now - timedelta(days=400), now - timedelta(days=390), "finished"),
        stay("oops", now - timedelta(days=3), None, "entered-in-error"),
    )
    assert sent == ["201 Created", "201 Created"]
    assert _features(conn, now)["days_since_admission"] == 365
    # Still in hospital since 9 days: the admission counts; as of 10 days ago it had not happened.
    assert _post(
        client,
        settings,
        "hospital_system",
        "sp-0101",
        stay("now", now - timedelta(days=9), None, "in-progress"),
    )
    assert _features(conn, now)["days_since_admission"] == 9
    assert _features(conn, now - timedelta(days=10))["days_since_admission"] == 365
