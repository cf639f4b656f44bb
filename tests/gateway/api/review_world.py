"""Test data for the worklist and review tests, made through the gateway's own paths.

Homes are enrolled with ``gateway.store.enrolment``, readings are Observations built by the contract's
builder (``fhir_contract.observation``), validated and stored as ingest stores them (canonical columns
included), NEWS2 and the disease rules are scored by the real scorer (``gateway.alerts.scorer``), and
30-day risks are stored as the admission-risk job stores them (``record_score`` with the job's
RiskAssessment). Only the clock is chosen: every call says when.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.alerts.admission_risk import record_admission_risk
from gateway.alerts.scorer import ScoreOutcome, score_patient
from gateway.api.auth import create_user
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient, insert_observations
from gateway.store.users import create_care_team

Conn = psycopg.Connection[Any]
MODEL = "admission-risk-1.0"
PASSWORD = "correct horse"
# Device kind -> the id suffix of the patient's device, and the kinds of reading it sends.
DEVICES = {
    "blood-pressure-cuff": "cuff",
    "pulse-oximeter": "oxi",
    "scale": "scale",
    "thermometer": "thermo",
    "weight-scale": "wscale",  # the contract's name (fhir/devices.json) of a hub's "scale"
}
# Reading kind -> the device kind that sends it, and its unit.
READINGS = {
    "spo2": ("pulse-oximeter", "%"),
    "pulse-rate-oximeter": ("pulse-oximeter", "/min"),
    "pulse-rate-cuff": ("blood-pressure-cuff", "/min"),
    "body-weight": ("scale", "kg"),
    "body-temperature": ("thermometer", "Cel"),
}


def enrol(
    conn: Conn,
    municipality_id: str,
    patient_id: str,
    name: str,
    *,
    devices: Sequence[str] = ("blood-pressure-cuff", "pulse-oximeter"),
    team: str | None = None,
    gp: str | None = None,
    phone: str | None = None,
    conditions: tuple[str, ...] = (),
    synthetic: bool = False,
) -> str:
    """Enrol a patient's home (the municipality must be listed or exist) with ``devices``."""
    patient = Patient(
        municipality_id,
        patient_id,
        name,
        conditions=conditions,
        synthetic=synthetic,
        care_team_id=team,
        gp_username=gp,
        phone=phone,
    )
    home_devices = tuple(HomeDevice(f"{patient_id}-{DEVICES[kind]}", kind) for kind in devices)
    enroll_homes(conn, [], [Home(patient, f"hub-{patient_id}", home_devices)])
    return patient_id


def municipality(conn: Conn, municipality_id: str, name: str) -> str:
    enroll_homes(conn, [Municipality(municipality_id, name)], [])
    return municipality_id


def _store(conn: Conn, municipality_id: str, patient_id: str, resource: dict[str, Any]) -> None:
    result = insert_observations(conn, municipality_id, f"hub-{patient_id}", [validate_observation(resource)])
    assert result.inserted == 1


def measure(conn: Conn, municipality_id: str, patient_id: str, kind: str, value: float, at: datetime) -> None:
    """Store one reading of ``kind`` as ingest stores what the patient's device sent."""
    device, unit = READINGS[kind]
    reading = Reading(kind, Quantity(Decimal(str(value)), unit))
    _store(
        conn,
        municipality_id,
        patient_id,
        build_observation(
            reading,
            patient_id=patient_id,
            device_id=f"{patient_id}-{DEVICES[device]}",
            hub_id=f"hub-{patient_id}",
            effective=at,
        ),
    )


def blood_pressure(
    conn: Conn, municipality_id: str, patient_id: str, systolic: float, diastolic: float, at: datetime
) -> None:
    reading = Reading(
        "blood-pressure",
        components=(
            Component("systolic", Quantity(Decimal(str(systolic)), "mm[Hg]")),
            Component("diastolic", Quantity(Decimal(str(diastolic)), "mm[Hg]")),
        ),
    )
    _store(
        conn,
        municipality_id,
        patient_id,
        build_observation(
            reading,
            patient_id=patient_id,
            device_id=f"{patient_id}-cuff",
            hub_id=f"hub-{patient_id}",
            effective=at,
        ),
    )


def score(
    conn: Conn, municipality_id: str, patient_id: str, at: datetime, since: datetime | None = None
) -> ScoreOutcome:
    """Score NEWS2, the disease rules and the own limits as the scorer does after ingest, as of ``at``:
    every reading from ``since`` on (None: the newest reading only)."""
    outcome = score_patient(conn, municipality_id, patient_id, since=since, now=at)
    assert outcome is not None
    return outcome


def risk(
    conn: Conn,
    municipality_id: str,
    patient_id: str,
    probability: float,
    at: datetime,
    reasons: Sequence[str] = ("Weight up 2.1 kg in 3 days",),
    model: str = MODEL,
) -> str:
    """Store a 30-day admission risk as the job stores it, computed at ``at``; its RiskAssessment's id."""
    score_id = record_admission_risk(conn, municipality_id, patient_id, probability, list(reasons), model, at)
    row = conn.execute("SELECT public_id::text FROM scores WHERE id = %s", (score_id,)).fetchone()
    assert row is not None
    return str(row[0])


# --- a world: two municipalities, two care teams, nurses, a GP and patients with 30-day risks ------------

RANKED = ("p-risk-high", "p-risk-mid", "p-lagging", "p-news2-only", "p-none")


@dataclass(frozen=True, slots=True)
class RankedWorld:
    """What ``ranked_world`` made: ``ranked`` is anna's worklist in order."""

    now: datetime
    ranked: tuple[str, ...]
    risk_ids: Mapping[str, str]  # patient -> the public id of their newest 30-day risk


def ranked_world(conn: Conn, now: datetime) -> RankedWorld:
    """København (default team and team "nord") and Frederiksberg; nurses anna (default team), nora
    (nord) and bo (Frederiksberg); GP dr-gp of one patient in each municipality; an administrator."""
    municipality(conn, "0101", "København")
    municipality(conn, "0147", "Frederiksberg")
    create_care_team(conn, "0101", "nord", "Hjemmeplejen Nord")
    create_user(conn, "anna", "0101", "nurse", PASSWORD)
    create_user(conn, "nora", "0101", "nurse", PASSWORD, care_teams=("nord",))
    create_user(conn, "bo", "0147", "nurse", PASSWORD)
    create_user(conn, "dr-gp", "0147", "gp", PASSWORD)
    create_user(conn, "admin", "0101", "municipality_admin", PASSWORD)

    def ago(**delta: float) -> datetime:
        return now - timedelta(**delta)

    enrol(conn, "0101", "p-risk-high", "Karen Høj", conditions=("heart-failure",), phone="+45 11 11 11 11")
    enrol(conn, "0101", "p-risk-mid", "Erik Mellem", conditions=("copd",), gp="dr-gp")
    enrol(conn, "0101", "p-lagging", "Lise Sen", conditions=("copd",), phone="+45 12 34 56 78")
    enrol(conn, "0101", "p-news2-only", "Ole Nyews", conditions=("diabetes",))
    enrol(conn, "0101", "p-none", "Nina Intet", devices=())
    enrol(conn, "0101", "p-nord", "Niels Nord", team="nord")
    enrol(conn, "0147", "p-frb", "Frede Frb", gp="dr-gp")

    ids: dict[str, str] = {}
    # A daily risk for four weeks, rising: 30 % eight days ago, 42 % now.
    for days in range(27, 0, -1):
        risk(conn, "0101", "p-risk-high", 0.30 if days >= 8 else 0.36, ago(days=days))
    ids["p-risk-high"] = risk(
        conn,
        "0101",
        "p-risk-high",
        0.42,
        ago(hours=2),
        reasons=("Weight up 2.3 kg in 3 days", "SpO2 4 below usual"),
    )
    # Falling: 25 % eight days ago; the 50 % of six days ago is not a week older than the newest.
    risk(conn, "0101", "p-risk-mid", 0.25, ago(days=8))
    risk(conn, "0101", "p-risk-mid", 0.50, ago(days=6))
    ids["p-risk-mid"] = risk(conn, "0101", "p-risk-mid", 0.20, ago(hours=3))
    ids["p-lagging"] = risk(conn, "0101", "p-lagging", 0.10, ago(hours=3))
    ids["p-nord"] = risk(conn, "0101", "p-nord", 0.90, ago(hours=3))
    ids["p-frb"] = risk(conn, "0147", "p-frb", 0.50, ago(hours=3))

    for patient in ("p-risk-high", "p-risk-mid", "p-news2-only"):
        blood_pressure(conn, "0101", patient, 128, 84, ago(hours=5))
        measure(conn, "0101", patient, "pulse-rate-cuff", 72, ago(hours=5))
        measure(conn, "0101", patient, "spo2", 96, ago(hours=4))
        measure(conn, "0101", patient, "pulse-rate-oximeter", 74, ago(hours=4))
    measure(conn, "0101", "p-news2-only", "pulse-rate-oximeter", 135, ago(hours=1))  # NEWS2 3 points
    measure(conn, "0101", "p-news2-only", "spo2", 91, ago(hours=1))  # and 3 more: 6 in all
    # Lagging: the cuff's newest reading is 40 hours old, the oximeter's fresh.
    blood_pressure(conn, "0101", "p-lagging", 135, 85, ago(hours=40))
    measure(conn, "0101", "p-lagging", "pulse-rate-cuff", 70, ago(hours=40))
    measure(conn, "0101", "p-lagging", "spo2", 95, ago(hours=2))
    measure(conn, "0101", "p-lagging", "pulse-rate-oximeter", 71, ago(hours=2))
    for patient in ("p-risk-high", "p-risk-mid", "p-news2-only", "p-lagging"):
        score(conn, "0101", patient, ago(minutes=30))
    return RankedWorld(now, RANKED, ids)
