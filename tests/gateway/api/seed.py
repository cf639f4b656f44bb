"""Test data for the web API, inserted with plain SQL (no dependency on ``gateway.store``).

Each function inserts one row and returns its key. Observations are valid FHIR R4 vital-signs resources
(LOINC plus IEEE 11073 MDC codes, UCUM units), so tests can validate what the API serves with
``fhir.resources``. ``news2_detail`` builds a score detail in the shape of
``models.news2.News2Result.to_dict()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from httpx import Response
from psycopg.types.json import Jsonb

from gateway.api.auth import create_user

Conn = psycopg.Connection[Any]

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
HTEST = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST"}

# kind -> (LOINC, MDC, UCUM unit, profile)
KINDS: Mapping[str, tuple[str, str, str, str]] = {
    "spo2": ("59408-5", "150456", "%", "oxygensat"),
    "pulse-rate-oximeter": ("8867-4", "149530", "/min", "heartrate"),
    "body-temperature": ("8310-5", "150364", "Cel", "bodytemp"),
    "body-weight": ("29463-7", "188736", "kg", "bodyweight"),
    "blood-pressure": ("85354-9", "150020", "mm[Hg]", "bp"),
}
_BP_COMPONENTS = {"systolic": ("8480-6", "150021"), "diastolic": ("8462-4", "150022")}


def municipality(conn: Conn, municipality_id: str, name: str) -> str:
    conn.execute("INSERT INTO municipalities (id, name) VALUES (%s, %s)", (municipality_id, name))
    return municipality_id


def patient(
    conn: Conn,
    municipality_id: str,
    patient_id: str,
    name: str,
    conditions: tuple[str, ...] = (),
    birth_date: str | None = "1948-03-14",
    synthetic: bool = False,
) -> str:
    conn.execute(
        "INSERT INTO patients (municipality_id, id, name, birth_date, conditions)"
        " VALUES (%s, %s, %s, %s, %s)",
        (municipality_id, patient_id, name, birth_date, list(conditions)),
    )
    if synthetic:  # a column of migration 0007: named only when asked for, so older schemas take the rest
        conn.execute("UPDATE patients SET synthetic = true WHERE id = %s", (patient_id,))
    return patient_id


def device(
    conn: Conn, municipality_id: str, patient_id: str, device_id: str, kind: str, address: str | None = None
) -> str:
    """Insert a device (and its patient's hub ``hub-<patient>`` unless it exists); return its id."""
    conn.execute(
        "INSERT INTO hubs (municipality_id, id, patient_id) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (municipality_id, f"hub-{patient_id}", patient_id),
    )
    conn.execute(
        "INSERT INTO devices (municipality_id, id, hub_id, patient_id, kind, address)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (municipality_id, device_id, f"hub-{patient_id}", patient_id, kind, address),
    )
    return device_id


def user(conn: Conn, username: str, municipality_id: str, password: str) -> str:
    create_user(conn, username, municipality_id, "nurse", password)
    return username


def _coding(system: str, code: str) -> dict[str, str]:
    return {"system": system, "code": code}


def observation(
    conn: Conn,
    municipality_id: str,
    patient_id: str,
    kind: str,
    effective: datetime,
    value: float | None = None,
    components: Mapping[str, float] | None = None,
    synthetic: bool = False,
) -> str:
    """Insert one Observation; return its identifier."""
    loinc, mdc, unit, profile = KINDS[kind]
    device = f"dev-{patient_id}-{kind}"
    identifier = f"urn:homewatch:{device}:{kind}:{effective.isoformat()}"
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "meta": {"profile": [f"http://hl7.org/fhir/StructureDefinition/{profile}"]},
        "identifier": [{"system": "urn:homewatch:observation", "value": identifier}],
        "status": "final",
        "category": [
            {"coding": [_coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")]}
        ],
        "code": {"coding": [_coding(LOINC, loinc), _coding(MDC, mdc)]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": effective.isoformat(),
        "device": {"reference": f"Device/{device}"},
    }
    if synthetic:
        resource["meta"]["security"] = [HTEST]
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    if components:
        resource["component"] = [
            {
                "code": {
                    "coding": [_coding(LOINC, _BP_COMPONENTS[key][0]), _coding(MDC, _BP_COMPONENTS[key][1])]
                },
                "valueQuantity": {"value": number, "unit": unit, "system": UCUM, "code": unit},
            }
            for key, number in components.items()
        ]
    conn.execute(
        "INSERT INTO observations (municipality_id, identifier, patient_id, hub_id, device_id, kind, loinc,"
        " effective, value, unit, components, resource)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            municipality_id,
            identifier,
            patient_id,
            f"hub-{patient_id}",
            device,
            kind,
            loinc,
            effective,
            value,
            None if components else unit,
            Jsonb(dict(components)) if components else None,
            Jsonb(resource),
        ),
    )
    return identifier


def news2_detail(
    points: Mapping[str, tuple[float | str, int]], missing: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A NEWS2 detail like ``News2Result.to_dict()``: parameter -> (charted value, points)."""
    total = sum(p for _, p in points.values())
    return {
        "score": "NEWS2",
        "total": total,
        "complete": not missing,
        "max_total": total + 3 * len(missing),
        "parameters": [
            {"name": name, "value": value, "charted": value, "points": p}
            for name, (value, p) in points.items()
        ],
        "missing": [
            {"name": name, "reason": "not-recorded", "text": f"{name} not recorded"} for name in missing
        ],
        "notes": [],
    }


def score(
    conn: Conn,
    municipality_id: str,
    patient_id: str,
    value: float,
    band: str,
    as_of: datetime,
    detail: Mapping[str, Any] | None = None,
    synthetic: bool = False,
    method: str = "news2",
) -> int:
    """Insert one score (NEWS2 unless ``method`` says otherwise) with its RiskAssessment; return its id."""
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceDateTime": as_of.isoformat(),
        "method": {"text": method.upper()},
        "prediction": [{"outcome": {"text": f"{method.upper()} {value:g} ({band})"}}],
    }
    if synthetic:
        resource["meta"] = {"security": [HTEST]}
    row = conn.execute(
        "INSERT INTO scores (municipality_id, patient_id, as_of, method, score, band, detail, resource)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (municipality_id, patient_id, as_of, method, value, band, Jsonb(dict(detail or {})), Jsonb(resource)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def alert(
    conn: Conn,
    municipality_id: str,
    patient_id: str,
    score_id: int,
    raised_at: datetime,
    severity: str = "high",
    reason: str = "NEWS2 7 or more",
) -> int:
    """Insert one open alert; return its id."""
    row = conn.execute(
        "INSERT INTO alerts (municipality_id, patient_id, score_id, raised_at, as_of, severity, reason)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (municipality_id, patient_id, score_id, raised_at, raised_at, severity, reason),
    ).fetchone()
    assert row is not None
    return int(row[0])


def audit_rows(conn: Conn, action: str | None = None) -> list[tuple[str, str, str, str | None]]:
    """(username, municipality, action, patient) of every audit row, oldest first."""
    rows = conn.execute(
        "SELECT username, municipality_id, action, patient_id FROM audit_log"
        " WHERE %(action)s::text IS NULL OR action = %(action)s ORDER BY id",
        {"action": action},
    ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


# --- a small world: two municipalities, ranked patients, one user each ------------------------------

PASSWORD = "correct horse"


@dataclass(frozen=True, slots=True)
class World:
    """What ``seed_world`` inserted, for assertions."""

    now: datetime
    own: str  # the municipality of ``nurse``
    other: str  # the municipality of ``other_nurse``
    nurse: str
    other_nurse: str
    ranked: tuple[str, ...]  # the own municipality's patients in worklist order
    other_patient: str
    alerts: Mapping[str, int]  # patient -> open alert id
    paged_patient: str  # has five SpO2 readings, an hour apart
    paged_times: tuple[datetime, ...]  # newest first


def seed_world(conn: Conn, now: datetime) -> World:
    """Two municipalities; in the first, patients whose ranking exercises score and alert-time ties."""
    own = municipality(conn, "0101", "København")
    other = municipality(conn, "0147", "Frederiksberg")
    nurse = user(conn, "anna", own, PASSWORD)
    other_nurse = user(conn, "bo", other, PASSWORD)

    def ago(**delta: float) -> datetime:
        return now - timedelta(**delta)

    patient(conn, own, "p-high", "Karen High", ("heart-failure", "copd"))
    patient(conn, own, "p-med-early", "Erik Early", ("copd",))
    patient(conn, own, "p-med-late", "Lise Late", ("diabetes",))
    patient(conn, own, "p-low", "Ole Low", ())
    patient(conn, own, "p-none", "Nina None", ("frailty",))
    patient(conn, other, "p-other", "Frede Other", ("copd",))

    high = news2_detail(
        {"spo2": (90, 3), "systolic_bp": (95, 2), "temperature": (38.6, 1), "pulse": (125, 2)},
        missing=("respiration_rate", "consciousness"),
    )
    s_high = score(conn, own, "p-high", 8, "high", ago(hours=2), high)
    s_early = score(
        conn,
        own,
        "p-med-early",
        5,
        "medium",
        ago(hours=3),
        news2_detail({"spo2": (92, 2), "pulse": (112, 2), "temperature": (38.2, 1)}),
    )
    s_late = score(
        conn,
        own,
        "p-med-late",
        5,
        "medium",
        ago(hours=1),
        news2_detail({"systolic_bp": (98, 2), "pulse": (115, 2), "temperature": (35.9, 1)}),
    )
    score(conn, own, "p-low", 6, "medium", ago(days=2), news2_detail({"pulse": (135, 3), "spo2": (93, 2)}))
    # An older, higher score of p-low must not count: only the latest score ranks.
    conn.execute("UPDATE scores SET computed_at = now() - interval '2 days' WHERE patient_id = 'p-low'")
    score(conn, own, "p-low", 1, "low", ago(hours=1), news2_detail({"pulse": (95, 1)}))
    s_other = score(conn, other, "p-other", 9, "high", ago(hours=1), news2_detail({"spo2": (88, 3)}))
    alerts = {
        "p-high": alert(conn, own, "p-high", s_high, ago(hours=2), "high", "NEWS2 8: emergency assessment"),
        "p-med-early": alert(conn, own, "p-med-early", s_early, ago(hours=3), "medium", "NEWS2 5"),
        "p-med-late": alert(conn, own, "p-med-late", s_late, ago(minutes=30), "medium", "NEWS2 5"),
        "p-other": alert(conn, other, "p-other", s_other, ago(hours=1), "high", "NEWS2 9"),
    }

    observation(conn, own, "p-high", "spo2", ago(hours=2), 90)
    observation(conn, own, "p-high", "pulse-rate-oximeter", ago(hours=2), 125)
    observation(
        conn,
        own,
        "p-high",
        "blood-pressure",
        ago(hours=2, minutes=5),
        components={"systolic": 95, "diastolic": 61},
    )
    observation(conn, own, "p-high", "body-temperature", ago(hours=2, minutes=10), 38.6)
    observation(conn, own, "p-high", "body-weight", ago(days=1), 81.4)
    observation(conn, own, "p-high", "body-weight", ago(days=3), 79.0)
    paged_times = tuple(ago(hours=h) for h in range(1, 6))
    for hours, moment in enumerate(paged_times, start=1):
        observation(conn, own, "p-low", "spo2", moment, 90 + hours)
    observation(conn, own, "p-low", "pulse-rate-oximeter", ago(hours=1), 95)
    observation(conn, other, "p-other", "spo2", ago(hours=1), 88)

    return World(
        now=now,
        own=own,
        other=other,
        nurse=nurse,
        other_nurse=other_nurse,
        ranked=("p-high", "p-med-late", "p-med-early", "p-low", "p-none"),
        other_patient="p-other",
        alerts=alerts,
        paged_patient="p-low",
        paged_times=paged_times,
    )


def login_form_token(client: TestClient) -> str:
    """The anti-forgery token of the login form, as a browser gets it (with the form's cookie)."""
    form = client.get("/login")
    found = re.search(
        r'<form method="post" action="/login".*?name="csrf" value="([^"]+)"', form.text, re.DOTALL
    )
    assert found is not None, form.text
    return found[1]


def post_login(client: TestClient, username: str, password: str, **fields: str) -> Response:
    """Post the login form as a browser does: first fetch it (its token and cookie), then post it."""
    data = {"username": username, "password": password, "csrf": login_form_token(client), **fields}
    return client.post("/login", data=data, follow_redirects=False)


def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    """Log ``client`` in through the form; its cookie jar then holds the session."""
    response = post_login(client, username, password)
    assert response.status_code == 303, response.text


def bearer(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Headers with a FHIR API bearer token for ``username``."""
    response = client.post("/login/access-token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
