"""The people and patients the browser tests log in as and look at, enrolled the way the product does it.

Two municipalities; in København two care teams (Nord with nurse ``anna``, Syd with nurse ``bo``), a GP
(``dr_lund``) of patients in both teams, and a municipality administrator (``lis``); in Frederiksberg a
nurse (``carl``) and one patient. Enrolment goes through ``gateway.store`` and ``gateway.api.auth``;
readings are FHIR Observations built by the contract's own builder, checked by ``validate_observation``
and stored by ``insert_observations`` (what ingest does), then scored by the real scorer, so the pages
show real NEWS2 scores, bands, reasons and alerts. Only ``users.full_name`` is set with plain SQL (no
store function writes it yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.scorer import score_patient
from gateway.api.auth import create_user
from gateway.store.repository import (
    Device,
    Hub,
    Municipality,
    Patient,
    enroll_device,
    enroll_hub,
    enroll_municipality,
    enroll_patient,
    insert_observations,
)
from gateway.store.users import create_care_team

Conn = psycopg.Connection[Any]
PASSWORD = "correct horse battery"
KOBENHAVN, FREDERIKSBERG = "0101", "0147"
NORD, SYD = "0101-nord", "0101-syd"


@dataclass(frozen=True, slots=True)
class Person:
    username: str
    full_name: str
    role: str


@dataclass(frozen=True, slots=True)
class BrowserWorld:
    """What ``seed`` enrolled: people by role, patients by id (their names), and when."""

    now: datetime
    nurse: Person  # anna: team Nord, København
    other_team_nurse: Person  # bo: team Syd, København
    other_municipality_nurse: Person  # carl: Frederiksberg
    gp: Person  # dr_lund: GP of Karen (Nord) and Jens (Syd)
    admin: Person  # lis: municipality administrator of København
    patients: Mapping[str, str]  # id -> name
    password: str = PASSWORD


def _person(conn: Conn, municipality: str, person: Person, teams: tuple[str, ...] | None = None) -> Person:
    create_user(conn, person.username, municipality, person.role, PASSWORD, care_teams=teams)
    conn.execute("UPDATE users SET full_name = %s WHERE username = %s", (person.full_name, person.username))
    return person


def _home(conn: Conn, patient: Patient) -> tuple[str, str]:
    """Enrol the patient's hub, oximeter, cuff, thermometer and scale; return (hub id, device prefix)."""
    enroll_patient(conn, patient)
    hub = f"hub-{patient.id}"
    enroll_hub(conn, Hub(patient.municipality_id, hub, patient.id))
    for kind in ("pulse-oximeter", "blood-pressure-monitor", "thermometer", "weight-scale"):
        enroll_device(conn, Device(patient.municipality_id, f"{kind}-{patient.id}", hub, patient.id, kind))
    return hub, patient.id


_DEVICE_OF = {
    "spo2": "pulse-oximeter",
    "pulse-rate-oximeter": "pulse-oximeter",
    "blood-pressure": "blood-pressure-monitor",
    "body-temperature": "thermometer",
    "body-weight": "weight-scale",
}
_UNIT_OF = {"spo2": "%", "pulse-rate-oximeter": "/min", "body-temperature": "Cel", "body-weight": "kg"}


def _reading(kind: str, value: float | tuple[float, float]) -> Reading:
    if isinstance(value, tuple):
        systolic, diastolic = (Quantity(Decimal(str(v)), "mm[Hg]") for v in value)
        return Reading(kind, components=(Component("systolic", systolic), Component("diastolic", diastolic)))
    return Reading(kind, Quantity(Decimal(str(value)), _UNIT_OF[kind]))


def _measure(
    conn: Conn, patient: Patient, at: datetime, now: datetime, **values: float | tuple[float, float]
) -> None:
    """Store one round of readings taken at ``at`` (keyword = reading kind with '_' for '-')."""
    hub = f"hub-{patient.id}"
    rows = []
    for name, value in values.items():
        kind = name.replace("_", "-")
        resource = build_observation(
            _reading(kind, value),
            patient_id=patient.id,
            device_id=f"{_DEVICE_OF[kind]}-{patient.id}",
            hub_id=hub,
            effective=at,
        )
        rows.append(validate_observation(resource, now=now))
    insert_observations(conn, patient.municipality_id, hub, rows)


def seed(conn: Conn, now: datetime) -> BrowserWorld:
    """Enrol the world and its readings as of ``now``; score every patient."""
    enroll_municipality(conn, Municipality(KOBENHAVN, "København"))
    enroll_municipality(conn, Municipality(FREDERIKSBERG, "Frederiksberg"))
    create_care_team(conn, KOBENHAVN, NORD, "Hjemmesygeplejen Nord")
    create_care_team(conn, KOBENHAVN, SYD, "Hjemmesygeplejen Syd")
    nurse = _person(conn, KOBENHAVN, Person("anna", "Anna Jensen", "nurse"), (NORD,))
    other_team = _person(conn, KOBENHAVN, Person("bo", "Bo Hansen", "nurse"), (SYD,))
    other_municipality = _person(conn, FREDERIKSBERG, Person("carl", "Carl Petersen", "nurse"))
    gp = _person(conn, KOBENHAVN, Person("dr_lund", "Mette Lund", "gp"))
    admin = _person(conn, KOBENHAVN, Person("lis", "Lis Holm", "municipality_admin"))

    karen = Patient(
        KOBENHAVN,
        "p-karen",
        "Karen Holm",
        conditions=("copd", "heart-failure"),
        care_team_id=NORD,
        gp_username=gp.username,
        synthetic=True,
        phone="+45 00 00 01 01",
    )
    ole = Patient(
        KOBENHAVN, "p-ole", "Ole Madsen", conditions=("heart-failure",), care_team_id=NORD, synthetic=True
    )
    inge = Patient(
        KOBENHAVN, "p-inge", "Inge Sørensen", conditions=("diabetes",), care_team_id=NORD, synthetic=True
    )
    jens = Patient(
        KOBENHAVN,
        "p-jens",
        "Jens Nielsen",
        conditions=("copd",),
        spo2_scale2=True,
        care_team_id=SYD,
        gp_username=gp.username,
        synthetic=True,
    )
    frede = Patient(FREDERIKSBERG, "p-frede", "Frede Berg", synthetic=True)
    patients = (karen, ole, inge, jens, frede)
    for patient in patients:
        _home(conn, patient)

    def hours(n: float) -> datetime:
        return now - timedelta(hours=n)

    for day in (3, 2, 1):
        _measure(
            conn,
            karen,
            hours(24 * day + 2),
            now,
            spo2=95,
            pulse_rate_oximeter=80,
            blood_pressure=(132, 84),
            body_temperature=36.8,
        )
    _measure(
        conn,
        karen,
        hours(2),
        now,
        spo2=90,
        pulse_rate_oximeter=118,
        blood_pressure=(98, 60),
        body_temperature=38.4,
    )
    for day, weight in ((3, 81.0), (2, 82.1), (1, 83.0)):
        _measure(conn, ole, hours(24 * day), now, body_weight=weight)
    _measure(
        conn,
        ole,
        hours(5),
        now,
        spo2=96,
        pulse_rate_oximeter=72,
        blood_pressure=(128, 82),
        body_temperature=36.9,
        body_weight=83.6,
    )
    _measure(conn, inge, hours(24 * 3 + 1), now, spo2=97, pulse_rate_oximeter=68, blood_pressure=(135, 85))
    _measure(
        conn,
        jens,
        hours(1),
        now,
        spo2=89,
        pulse_rate_oximeter=92,
        blood_pressure=(142, 88),
        body_temperature=37.2,
    )
    _measure(conn, frede, hours(3), now, spo2=94, pulse_rate_oximeter=76, blood_pressure=(150, 95))
    for patient in patients:
        score_patient(conn, patient.municipality_id, patient.id, now=now)

    return BrowserWorld(
        now, nurse, other_team, other_municipality, gp, admin, {p.id: p.name for p in patients}
    )
