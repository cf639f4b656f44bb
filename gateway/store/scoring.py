"""What scoring writes: each score with its FHIR RiskAssessment, and the alert it opens or escalates.

The scorer (NEWS2 and the disease rules, on new readings) and the 30-day admission-risk job store
every score with ``record_score``. At most one alert per patient is open (a unique index, migration
0001): ``open_alert`` locks it for the caller's transaction, then the caller ``raise_alert``s a new one
or ``escalate_alert``s the open one. Callers own the transaction; every query is scoped by
municipality.

Left to others: what to score and which alert a score calls for (``gateway.alerts``), reading scores
and acknowledging alerts (the API's store modules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg


@dataclass(frozen=True, slots=True)
class NewScore:
    """A score to store: ``method`` (``news2``, a rule name, ``admission-risk-30d``), its number and
    band as of the newest reading used (``as_of``), the detail behind it and its RiskAssessment."""

    municipality_id: str
    patient_id: str
    method: str
    score: float
    band: str
    computed_at: datetime
    as_of: datetime
    detail: Mapping[str, Any]
    resource: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OpenAlert:
    id: int
    severity: str


def record_score(conn: psycopg.Connection[Any], score: NewScore) -> int:
    """Store ``score``; its id (``scores.id``, what an alert points to)."""
    row = conn.execute(
        "INSERT INTO scores (municipality_id, patient_id, computed_at, as_of, method, score, band, detail,"
        " resource) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb) RETURNING id",
        (
            score.municipality_id,
            score.patient_id,
            score.computed_at,
            score.as_of,
            score.method,
            score.score,
            score.band,
            orjson.dumps(score.detail, default=str).decode(),  # times in the detail as ISO text
            orjson.dumps(score.resource).decode(),
        ),
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING returns the row it inserted
    return int(row[0])


def has_score(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, method: str, as_of: datetime
) -> bool:
    """Whether a score of ``method`` as of ``as_of`` is stored (a rule that fired on that reading)."""
    row = conn.execute(
        "SELECT 1 FROM scores WHERE municipality_id = %s AND patient_id = %s AND method = %s AND as_of = %s",
        (municipality_id, patient_id, method, as_of),
    ).fetchone()
    return row is not None


def open_alert(conn: psycopg.Connection[Any], municipality_id: str, patient_id: str) -> OpenAlert | None:
    """The patient's open alert, locked until the caller's transaction ends; None when none is open."""
    row = conn.execute(
        "SELECT id, severity FROM alerts WHERE municipality_id = %s AND patient_id = %s AND status = 'open'"
        " FOR UPDATE",
        (municipality_id, patient_id),
    ).fetchone()
    return None if row is None else OpenAlert(int(row[0]), str(row[1]))


def raise_alert(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    *,
    score_id: int,
    as_of: datetime,
    severity: str,
    reason: str,
    raised_at: datetime | None = None,
) -> None:
    """Open an alert for the patient (the caller found none open) on the score ``score_id``, raised at
    ``raised_at`` (the scorer's clock; None: the database's now)."""
    conn.execute(
        "INSERT INTO alerts (municipality_id, patient_id, score_id, as_of, severity, reason, raised_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, coalesce(%s::timestamptz, now()))",
        (municipality_id, patient_id, score_id, as_of, severity, reason, raised_at),
    )


def escalate_alert(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    alert_id: int,
    *,
    score_id: int,
    as_of: datetime,
    severity: str,
    reason: str,
) -> None:
    """Give the open alert ``alert_id`` a new severity and reason, from the score ``score_id``."""
    conn.execute(
        "UPDATE alerts SET severity = %s, reason = %s, score_id = %s, as_of = %s"
        " WHERE municipality_id = %s AND id = %s",
        (severity, reason, score_id, as_of, municipality_id, alert_id),
    )
