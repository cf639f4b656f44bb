"""An alert's rows: the active alert of a patient, kind and key, its triggers, and its history of events.

Migration 0013 holds the lifecycle: at most one *active* (not resolved) alert per patient, kind and key;
every change is an ``alert_events`` row (append-only; each insert is announced on
:data:`EVENTS_CHANNEL` when its transaction commits, for the browsers' live stream). The decisions
(raise, absorb, raise the severity, suppress) are ``gateway.alerts.lifecycle``'s; what people do to an
alert (acknowledge, snooze, assign, resolve) is ``gateway.store.alert_actions``'; delivery is
``gateway.alerts.routing`` and ``gateway.store.alert_deliveries``'. Callers own the transaction; every
query names the municipality.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg

from gateway.store.errors import StoreError

#: The PostgreSQL channel on which every new alert_events row is announced (migration 0013's trigger).
EVENTS_CHANNEL = "homewatch_alert_events"

KINDS = ("news2", "disease-rule", "threshold", "risk-rise", "missing")
STATUSES = ("open", "acknowledged", "snoozed", "resolved")

# When an unacknowledged alert escalates, for a municipality without its own alert_settings row.
DEFAULT_ESCALATE_AFTER = {"high": timedelta(minutes=15), "medium": timedelta(minutes=60)}


class UnknownAlert(StoreError):
    """No alert has this id."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"no alert {alert_id}")
        self.alert_id = alert_id


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the lifecycle needs to know of an alert of one patient, kind and key."""

    id: int
    status: str
    severity: str
    last_trigger_as_of: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to open: on a score (``score_id``) or on a reading (``observation_identifier``)."""

    municipality_id: str
    patient_id: str
    kind: str
    key: str
    severity: str
    reason: str
    as_of: datetime
    score_id: int | None
    observation_identifier: str | None
    raised_at: datetime
    escalate_at: datetime


def lock_patient_kind(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, kind: str, key: str
) -> None:
    """Serialise the lifecycle of one patient, kind and key until the caller's transaction ends (two
    scorers never open the same alert twice, nor one in the gap after the other resolved it)."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"alert|{municipality_id}|{patient_id}|{kind}|{key}",),
    )


def active_alert(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, kind: str, key: str
) -> AlertState | None:
    """The active (not resolved) alert of the patient, kind and key, locked for the caller; or None."""
    row = conn.execute(
        "SELECT id, status, severity, last_trigger_as_of, resolved_at FROM alerts"
        " WHERE municipality_id = %s AND patient_id = %s AND kind = %s AND key = %s"
        " AND status <> 'resolved' FOR UPDATE",
        (municipality_id, patient_id, kind, key),
    ).fetchone()
    return None if row is None else AlertState(*row)


def last_resolved_alert(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, kind: str, key: str
) -> AlertState | None:
    """The most recently resolved alert of the patient, kind and key; or None."""
    row = conn.execute(
        "SELECT id, status, severity, last_trigger_as_of, resolved_at FROM alerts"
        " WHERE municipality_id = %s AND patient_id = %s AND kind = %s AND key = %s"
        " AND status = 'resolved' ORDER BY resolved_at DESC, id DESC LIMIT 1 FOR UPDATE",
        (municipality_id, patient_id, kind, key),
    ).fetchone()
    return None if row is None else AlertState(*row)


def escalate_after(conn: psycopg.Connection[Any], municipality_id: str, severity: str) -> timedelta:
    """How long an alert of ``severity`` may stay unacknowledged in the municipality before it escalates."""
    row = conn.execute(
        "SELECT escalate_high_minutes, escalate_medium_minutes FROM alert_settings"
        " WHERE municipality_id = %s",
        (municipality_id,),
    ).fetchone()
    if row is None:
        return DEFAULT_ESCALATE_AFTER.get(severity, DEFAULT_ESCALATE_AFTER["medium"])
    return timedelta(minutes=int(row[0] if severity == "high" else row[1]))


def insert_alert(conn: psycopg.Connection[Any], alert: NewAlert) -> int:
    """Open ``alert`` (the caller found none active); its id."""
    row = conn.execute(
        "INSERT INTO alerts (municipality_id, patient_id, kind, key, severity, reason, as_of,"
        " last_trigger_as_of, score_id, observation_identifier, raised_at, updated_at, escalate_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            alert.municipality_id,
            alert.patient_id,
            alert.kind,
            alert.key,
            alert.severity,
            alert.reason,
            alert.as_of,
            alert.as_of,
            alert.score_id,
            alert.observation_identifier,
            alert.raised_at,
            alert.raised_at,
            alert.escalate_at,
        ),
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING returns the row it inserted
    return int(row[0])


def count_trigger(conn: psycopg.Connection[Any], alert_id: int, as_of: datetime) -> None:
    """Count one more trigger of the alert, on a reading or score as of ``as_of`` (newer than its last)."""
    conn.execute(
        "UPDATE alerts SET trigger_count = trigger_count + 1,"
        " last_trigger_as_of = greatest(last_trigger_as_of, %s) WHERE id = %s",
        (as_of, alert_id),
    )


def raise_severity(
    conn: psycopg.Connection[Any],
    alert_id: int,
    *,
    severity: str,
    reason: str,
    as_of: datetime,
    score_id: int | None,
    observation_identifier: str | None,
    at: datetime,
    escalate_at: datetime,
) -> None:
    """Make the active alert worse: new severity and reason; an acknowledged or snoozed alert is open
    again (someone must look at the worse news), and its escalation clock starts again."""
    conn.execute(
        "UPDATE alerts SET severity = %s, reason = %s, as_of = %s, score_id = coalesce(%s, score_id),"
        " observation_identifier = coalesce(%s, observation_identifier), status = 'open',"
        " snoozed_until = NULL, snooze_reason = NULL, updated_at = %s, escalate_at = %s,"
        " trigger_count = trigger_count + 1, last_trigger_as_of = greatest(last_trigger_as_of, %s)"
        " WHERE id = %s",
        (severity, reason, as_of, score_id, observation_identifier, at, escalate_at, as_of, alert_id),
    )


def add_event(
    conn: psycopg.Connection[Any],
    alert_id: int,
    action: str,
    *,
    at: datetime,
    actor: str | None = None,
    note: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Append an event to the alert's history (the patient and municipality are the alert's); its id."""
    row = conn.execute(
        "INSERT INTO alert_events (municipality_id, patient_id, alert_id, at, action, actor, note, detail)"
        " SELECT municipality_id, patient_id, id, %s, %s, %s, %s, %s::jsonb FROM alerts WHERE id = %s"
        " RETURNING id",
        (at, action, actor, note, orjson.dumps(detail or {}).decode(), alert_id),
    ).fetchone()
    if row is None:
        raise UnknownAlert(alert_id)
    return int(row[0])
