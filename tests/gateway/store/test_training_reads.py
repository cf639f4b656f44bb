"""A municipality's history for training: its own patients only, final readings in canonical units, the
changes staff saw, the stays that happened, nothing after ``until``. Real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from fhir_contract.observation import build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.findr_inputs import (
    HospitalStay,
    StaffObservation,
    store_encounter,
    store_staff_observation,
)
from gateway.store.migrate import migrate
from gateway.store.repository import Municipality, Patient, insert_observations
from gateway.store.training_reads import history_is_synthetic, municipality_exists, municipality_history
from models.cohort_reader import stored_cohort

Conn = psycopg.Connection[Any]
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _reading(
    conn: Conn, town: str, patient: str, kind: str, value: str, unit: str, at: datetime, **kw: Any
) -> None:
    device = f"{patient}-scale" if kind == "body-weight" else f"{patient}-oxi"
    obs = build_observation(
        Reading(kind, Quantity(Decimal(value), unit)),
        patient_id=patient,
        device_id=device,
        hub_id=f"{patient}-hub",
        effective=at,
        **kw,
    )
    assert insert_observations(conn, town, f"{patient}-hub", [validate_observation(obs)]).inserted == 1


def _home(town: str, patient: str, *, synthetic: bool, conditions: tuple[str, ...] = ()) -> Home:
    return Home(
        Patient(town, patient, f"Patient {patient}", date(1941, 3, 4), conditions, synthetic=synthetic),
        f"{patient}-hub",
        (HomeDevice(f"{patient}-scale", "scale"), HomeDevice(f"{patient}-oxi", "pulse-oximeter")),
    )


def _form(town: str, patient: str, ident: str, at: datetime, **items: bool) -> StaffObservation:
    return StaffObservation(town, patient, ident, at, dict(items), "homecare", "fhir", {"id": ident})


def _stay(
    town: str, patient: str, ident: str, start: datetime, end: datetime | None, status: str
) -> HospitalStay:
    return HospitalStay(town, patient, ident, status, "IMP", start, end, "hospital", "fhir", {})


@pytest.fixture(scope="module")
def conn(pg_admin_url: str) -> Iterator[Conn]:
    """Two municipalities: 0101 with two patients (SYNTHETIC), 0202 with one (not), each with readings,
    forms and stays; read-only for the tests."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    base, _, query = pg_admin_url.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(url, autocommit=True) as c:
            migrate(c)
            enroll_homes(
                c,
                [Municipality("0101", "Kbh"), Municipality("0202", "Other")],
                [
                    _home("0101", "a1", synthetic=True, conditions=("copd", "diabetes")),
                    _home("0101", "a2", synthetic=True),
                    _home("0202", "b1", synthetic=False, conditions=("heart-failure",)),
                ],
            )
            _reading(c, "0101", "a1", "body-weight", "176.4", "[lb_av]", T0)  # 80.01 kg
            _reading(c, "0101", "a1", "spo2", "93", "%", T0 + timedelta(hours=1))
            _reading(c, "0101", "a1", "spo2", "88", "%", T0 + timedelta(hours=2), preliminary=True)
            _reading(c, "0101", "a1", "spo2", "95", "%", T0 + timedelta(days=10))
            _reading(c, "0101", "a2", "body-weight", "70.0", "kg", T0 + timedelta(days=1))
            _reading(c, "0202", "b1", "spo2", "91", "%", T0 + timedelta(days=2))
            store_staff_observation(
                c, _form("0101", "a1", "f|1", T0 + timedelta(days=1), breathing=True, pain=False)
            )
            store_staff_observation(
                c, _form("0101", "a1", "f|2", T0 + timedelta(days=9), general=True, mood=True)
            )
            store_staff_observation(c, _form("0202", "b1", "f|9", T0 + timedelta(days=1), sleep=True))
            stays = [
                _stay("0101", "a1", "e|1", T0 + timedelta(days=3), T0 + timedelta(days=6), "finished"),
                _stay("0101", "a1", "e|2", T0 + timedelta(days=4), None, "entered-in-error"),
                _stay("0101", "a2", "e|3", T0 + timedelta(days=7), None, "in-progress"),
                _stay("0202", "b1", "e|9", T0 + timedelta(days=2), None, "in-progress"),
            ]
            for stay in stays:
                store_encounter(c, stay)
            # Rows of 0202 that name 0101's patient (written by hand: the store's functions refuse them)
            # must never reach 0101's history: every query is scoped by municipality.
            c.execute(
                "INSERT INTO staff_observations (municipality_id, patient_id, identifier, effective, items,"
                " recorded_by, source, resource)"
                " VALUES ('0202', 'a1', 'x|1', %s, '{\"skin\": true}', 'x', 'fhir', '{}')",
                (T0 + timedelta(days=2),),
            )
            c.execute(
                "INSERT INTO encounters (municipality_id, patient_id, identifier, status, class_code,"
                " period_start, recorded_by, source, resource) VALUES ('0202', 'a1', 'x|2', 'in-progress',"
                " 'IMP', %s, 'x', 'fhir', '{}')",
                (T0 + timedelta(days=8),),
            )
            c.execute(
                "INSERT INTO observations (municipality_id, identifier, patient_id, hub_id, device_id, kind,"
                " loinc, effective, value, unit, resource, canonical_value, canonical_unit)"
                " VALUES ('0202', 'x|3', 'a1', 'b1-hub', 'b1-oxi', 'spo2', '59408-5', %s, 70, '%%',"
                " '{\"status\": \"final\"}', 70, '%%')",
                (T0 + timedelta(days=3),),
            )
            yield c
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_history_is_the_municipalitys_own_patients_with_what_the_scorers_read(conn: Conn) -> None:
    history = {p.patient_id: p for p in municipality_history(conn, "0101")}
    assert sorted(history) == ["a1", "a2"]  # b1 is another municipality's
    a1 = history["a1"]
    assert a1.birth_date == date(1941, 3, 4) and tuple(a1.conditions) == ("copd", "diabetes")
    readings = sorted((m.at, m.loinc, m.value) for m in a1.measurements)
    assert [(at - T0, value) for at, _loinc, value in readings] == [
        (timedelta(0), pytest.approx(80.01, abs=0.01)),  # canonical kg of the pounds sent
        (timedelta(hours=1), 93.0),
        (timedelta(days=10), 95.0),  # the preliminary 88 is no reading
    ]
    assert sorted((at - T0, key) for at, key in a1.changes) == [
        (timedelta(days=1), "breathing"),  # pain was checked, no change: not a change
        (timedelta(days=9), "general"),
        (timedelta(days=9), "mood"),
    ]
    assert list(a1.admissions) == [(T0 + timedelta(days=3), T0 + timedelta(days=6))]  # not the withdrawn one
    assert list(history["a2"].admissions) == [(T0 + timedelta(days=7), None)]
    assert municipality_history(conn, "0202")[0].patient_id == "b1"
    assert municipality_history(conn, "9999") == []


def test_until_leaves_out_what_came_later_and_a_later_discharge(conn: Conn) -> None:
    until = T0 + timedelta(days=5)
    a1 = next(p for p in municipality_history(conn, "0101", until=until) if p.patient_id == "a1")
    assert max(m.at for m in a1.measurements) < until and len(list(a1.measurements)) == 2
    assert [key for _at, key in a1.changes] == ["breathing"]
    assert list(a1.admissions) == [(T0 + timedelta(days=3), None)]  # still in hospital as of until


def test_the_cohort_from_the_store_and_its_synthetic_mark(conn: Conn) -> None:
    cohort = stored_cohort(municipality_history(conn, "0101"))
    assert [p.patient_id for p in cohort.patients] == ["a1", "a2"]
    assert list(cohort.patients[0].readings["weight"].values) == [pytest.approx(80.01, abs=0.01)]
    assert history_is_synthetic(conn, "0101") and not history_is_synthetic(conn, "0202")
    assert not history_is_synthetic(conn, "9999")
    assert municipality_exists(conn, "0202") and not municipality_exists(conn, "9999")
