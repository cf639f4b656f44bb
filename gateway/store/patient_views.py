"""What a patient's page and the FHIR Patient read show: the patient, their readings, scores and alerts.

Every function takes the user's municipality and filters on it: a patient of another municipality is
simply not found. Scores are read here but written by ``gateway.alerts``; wording is left to
``gateway.api.presenters`` and FHIR shaping to ``gateway.api.fhir_model``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

from gateway.store.synthetic import patient_enrolled_synthetic, resource_labelled

# scores.method of a NEWS2 score (the scorer's); disease rules and the 30-day risk have methods of their own.
NEWS2 = "news2"


@dataclass(frozen=True, slots=True)
class PatientRow:
    """A patient with their municipality's name; ``synthetic`` when enrolled as synthetic or when their
    newest reading or score is labelled as test data."""

    id: str
    name: str
    birth_date: date | None
    conditions: tuple[str, ...]
    spo2_scale2: bool
    municipality_name: str
    synthetic: bool


def patient_columns() -> sql.Composable:
    """SQL: the columns of a ``PatientRow``, over ``patients p JOIN municipalities m``."""
    return sql.SQL(
        "p.id, p.name, p.birth_date, p.conditions, p.spo2_scale2, m.name,"
        " {p_synth} OR EXISTS (SELECT 1 FROM (SELECT o.resource FROM observations o"
        "  WHERE o.municipality_id = p.municipality_id AND o.patient_id = p.id"
        "  ORDER BY o.effective DESC LIMIT 1) o WHERE {o_synth})"
        " OR EXISTS (SELECT 1 FROM (SELECT s.resource FROM scores s"
        "  WHERE s.municipality_id = p.municipality_id AND s.patient_id = p.id"
        "  ORDER BY s.computed_at DESC LIMIT 1) s WHERE {s_synth})"
    ).format(
        p_synth=patient_enrolled_synthetic("p"),
        o_synth=resource_labelled("o"),
        s_synth=resource_labelled("s"),
    )


def patient_row(row: tuple[Any, ...]) -> PatientRow:
    """A ``PatientRow`` from the columns of ``patient_columns``."""
    return PatientRow(row[0], row[1], row[2], tuple(row[3]), row[4], row[5], bool(row[6]))


def patient(conn: psycopg.Connection[Any], municipality_id: str, patient_id: str) -> PatientRow | None:
    """The patient when they belong to the municipality, else None."""
    query = sql.SQL(
        "SELECT {columns} FROM patients p JOIN municipalities m ON m.id = p.municipality_id"
        " WHERE p.municipality_id = %s AND p.id = %s"
    ).format(columns=patient_columns())
    row = conn.execute(query, (municipality_id, patient_id)).fetchone()
    return None if row is None else patient_row(row)


@dataclass(frozen=True, slots=True)
class ReadingRow:
    effective: datetime
    kind: str
    value: float | None
    unit: str | None
    components: Mapping[str, Any] | None
    absent_reason: str | None
    synthetic: bool


def recent_readings(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, limit: int = 50
) -> list[ReadingRow]:
    """The patient's newest readings, newest first."""
    query = sql.SQL(
        "SELECT o.effective, o.kind, o.value, o.unit, o.components,"
        " o.resource -> 'dataAbsentReason' -> 'coding' -> 0 ->> 'code', {synth}"
        " FROM observations o WHERE o.municipality_id = %s AND o.patient_id = %s"
        " ORDER BY o.effective DESC, o.identifier DESC LIMIT %s"
    ).format(synth=resource_labelled("o"))
    rows = conn.execute(query, (municipality_id, patient_id, limit)).fetchall()
    return [ReadingRow(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class ScoreRow:
    id: int
    computed_at: datetime
    as_of: datetime
    method: str
    score: float
    band: str
    detail: Mapping[str, Any]


def score_history(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, limit: int = 30
) -> list[ScoreRow]:
    """The patient's newest scores of every method (NEWS2, disease rules, 30-day risk), newest first."""
    rows = conn.execute(
        "SELECT id, computed_at, as_of, method, score, band, detail FROM scores"
        " WHERE municipality_id = %s AND patient_id = %s ORDER BY computed_at DESC, id DESC LIMIT %s",
        (municipality_id, patient_id, limit),
    ).fetchall()
    return [ScoreRow(*row) for row in rows]


def latest_news2(conn: psycopg.Connection[Any], municipality_id: str, patient_id: str) -> ScoreRow | None:
    """The patient's newest NEWS2 score (never a disease rule's or the 30-day risk's), else None."""
    row = conn.execute(
        "SELECT id, computed_at, as_of, method, score, band, detail FROM scores"
        " WHERE municipality_id = %s AND patient_id = %s AND method = %s"
        " ORDER BY computed_at DESC, id DESC LIMIT 1",
        (municipality_id, patient_id, NEWS2),
    ).fetchone()
    return None if row is None else ScoreRow(*row)


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    raised_at: datetime
    as_of: datetime
    severity: str
    reason: str
    status: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None


def patient_alerts(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, limit: int = 30
) -> list[AlertRow]:
    """The patient's alerts, open ones first, then newest first."""
    rows = conn.execute(
        "SELECT id, raised_at, as_of, severity, reason, status, acknowledged_by, acknowledged_at FROM alerts"
        " WHERE municipality_id = %s AND patient_id = %s"
        " ORDER BY status = 'open' DESC, raised_at DESC, id DESC LIMIT %s",
        (municipality_id, patient_id, limit),
    ).fetchall()
    return [AlertRow(*row) for row in rows]
