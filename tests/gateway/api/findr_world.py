"""Test data of FiNDR's inputs: the JSON a home-care or hospital system sends (written out by hand, as a
third party's system would, not by the gateway's own builders), and a small world to send it to.

The world: municipality 0101 with patients p-anna (a hub, a scale and a cuff) and p-bent, municipality
0147 with p-other; a nurse of each, a home-care system and a hospital system of 0101 (``users`` rows of
those roles, no password) and a home-care system of 0147.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from gateway.api.auth import User, create_user, issue_token, mint_token
from gateway.settings import GatewaySettings
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient

CHANGE_SYSTEM = "urn:homewatch:early-detection"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
HOMECARE_IDS = "urn:oid:1.2.208.176.9.1"  # a home-care record system's own identifiers (made up)
HOSPITAL_IDS = "urn:oid:1.2.208.176.2.1"
OWN, OTHER = "0101", "0147"
PASSWORD = "correct horse"


@dataclass(frozen=True, slots=True)
class Accounts:
    homecare: str  # usernames
    hospital: str
    homecare_other: str  # of municipality 0147
    nurse: str
    nurse_other: str


ACCOUNTS = Accounts("ehr-0101", "sundhedsplatformen-0101", "ehr-0147", "anna", "bo")


def change_form(
    patient: str, value: str, at: datetime, *, status: str = "final", **items: bool
) -> dict[str, Any]:
    """An early-detection change form: one component per checked item (True: a change seen)."""
    return {
        "resourceType": "Observation",
        "identifier": [{"system": HOMECARE_IDS, "value": value}],
        "status": status,
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}
                ]
            }
        ],
        "code": {"coding": [{"system": CHANGE_SYSTEM, "code": "change-form"}], "text": "Tidlig opsporing"},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": at.isoformat(),
        "component": [
            {"code": {"coding": [{"system": CHANGE_SYSTEM, "code": key}]}, "valueBoolean": seen}
            for key, seen in items.items()
        ],
    }


def change_item(patient: str, value: str, at: datetime, key: str, seen: bool) -> dict[str, Any]:
    """A single item as an Observation of its own."""
    return {
        "resourceType": "Observation",
        "identifier": [{"system": HOMECARE_IDS, "value": value}],
        "status": "final",
        "code": {"coding": [{"system": CHANGE_SYSTEM, "code": key}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": at.isoformat(),
        "valueBoolean": seen,
    }


def encounter(
    patient: str,
    value: str,
    start: datetime,
    end: datetime | None = None,
    *,
    status: str | None = None,
    klass: str = "IMP",
) -> dict[str, Any]:
    """An inpatient Encounter: in progress, or finished at ``end`` (the discharge)."""
    period = {"start": start.isoformat()} | ({"end": end.isoformat()} if end is not None else {})
    return {
        "resourceType": "Encounter",
        "identifier": [{"system": HOSPITAL_IDS, "value": value}],
        "status": status or ("in-progress" if end is None else "finished"),
        "class": {"system": ACT_CODE, "code": klass, "display": "inpatient encounter"},
        "subject": {"reference": f"Patient/{patient}"},
        "period": period,
    }


def bundle(*resources: dict[str, Any], kind: str = "batch") -> bytes:
    entries = [{"resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for r in resources]
    # The standard library's encoder: it writes any int (orjson's refuses those past 64 bits).
    return json.dumps({"resourceType": "Bundle", "type": kind, "entry": entries}).encode()


def statuses(answer: dict[str, Any]) -> list[str]:
    """The status code of each entry of a batch-response."""
    return [entry["response"]["status"].split()[0] for entry in answer.get("entry", [])]


def seed(conn: psycopg.Connection[Any]) -> None:
    """The world of this module's docstring."""

    def home(municipality: str, pid: str) -> Home:
        patient = Patient(municipality, pid, f"Synthetic {pid}", date(1941, 3, 2), ("heart-failure",))
        devices = (HomeDevice(f"scale-{pid}", "scale"), HomeDevice(f"bpm-{pid}", "blood-pressure-cuff"))
        return Home(patient, f"hub-{pid}", devices)

    enroll_homes(
        conn,
        [Municipality(OWN, "København"), Municipality(OTHER, "Frederiksberg")],
        [home(OWN, "p-anna"), home(OWN, "p-bent"), home(OTHER, "p-other")],
    )
    create_user(conn, ACCOUNTS.homecare, OWN, "homecare_system", None)
    create_user(conn, ACCOUNTS.hospital, OWN, "hospital_system", None)
    create_user(conn, ACCOUNTS.homecare_other, OTHER, "homecare_system", None)
    create_user(conn, ACCOUNTS.nurse, OWN, "nurse", PASSWORD)
    create_user(conn, ACCOUNTS.nurse_other, OTHER, "nurse", PASSWORD)


def system_token(settings: GatewaySettings, username: str, municipality: str = OWN) -> dict[str, str]:
    """Bearer headers of a system account's token, as ``homewatch gateway token`` makes it."""
    role = "hospital_system" if "sundhed" in username else "homecare_system"
    token = mint_token(settings, role=role, municipality_id=municipality, subject=username)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}


def person_token(
    settings: GatewaySettings, username: str, role: str = "nurse", municipality: str = OWN
) -> str:
    return issue_token(settings, User(username, municipality, role))
