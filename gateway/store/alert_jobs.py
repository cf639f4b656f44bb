"""The time-based changes of alerts: escalation when nobody acknowledged in time, and the end of a snooze.

The state lives in the ``alerts`` columns (``escalate_at``, ``escalation_level``, ``snoozed_until``), so a
restart loses nothing: a job run later finds what fell due meanwhile. ``claim_due_escalation`` and
``claim_due_wake`` take one due alert each, locked with ``FOR UPDATE SKIP LOCKED`` (several gateway
processes share the work and never take the same alert); the caller changes it in the same short
transaction. ``lock_alert`` locks one alert for a change that did not come through a claim (an
escalation because nobody could be told).

What an escalation does (who is told, how far it goes) is ``gateway.alerts.routing``'s; when the jobs
run is ``gateway.alerts.dispatcher``'s. Callers own transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class LockedAlert:
    """What an escalation or a wake needs to know of an alert it holds locked."""

    id: int
    municipality_id: str
    status: str
    severity: str
    escalation_level: int


_LOCKED_COLUMNS = "id, municipality_id, status, severity, escalation_level"


def lock_alert(conn: psycopg.Connection[Any], alert_id: int) -> LockedAlert | None:
    """Alert ``alert_id``, locked until the caller's transaction ends; None when there is none."""
    row = conn.execute(
        f"SELECT {_LOCKED_COLUMNS} FROM alerts WHERE id = %s FOR UPDATE", (alert_id,)
    ).fetchone()
    return None if row is None else LockedAlert(*row)


def claim_due_escalation(conn: psycopg.Connection[Any], now: datetime) -> LockedAlert | None:
    """An open alert whose ``escalate_at`` has passed at ``now`` (the longest overdue first), locked;
    None when none is due (or every due one is being handled by another transaction)."""
    row = conn.execute(
        f"SELECT {_LOCKED_COLUMNS} FROM alerts WHERE status = 'open' AND escalate_at <= %s"
        " ORDER BY escalate_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        (now,),
    ).fetchone()
    return None if row is None else LockedAlert(*row)


def claim_due_wake(conn: psycopg.Connection[Any], now: datetime) -> LockedAlert | None:
    """A snoozed alert whose ``snoozed_until`` has passed at ``now``, locked; None when none is due."""
    row = conn.execute(
        f"SELECT {_LOCKED_COLUMNS} FROM alerts WHERE status = 'snoozed' AND snoozed_until <= %s"
        " ORDER BY snoozed_until, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        (now,),
    ).fetchone()
    return None if row is None else LockedAlert(*row)


def set_escalation(
    conn: psycopg.Connection[Any], alert_id: int, *, level: int, escalate_at: datetime | None, at: datetime
) -> None:
    """Put the alert at escalation ``level``, to escalate again at ``escalate_at`` (None: never)."""
    conn.execute(
        "UPDATE alerts SET escalation_level = %s, escalate_at = %s, updated_at = %s WHERE id = %s",
        (level, escalate_at, at, alert_id),
    )


def stop_escalating(conn: psycopg.Connection[Any], alert_id: int, *, at: datetime) -> None:
    """The alert escalates no further (it reached the top level)."""
    conn.execute(
        "UPDATE alerts SET escalate_at = NULL, updated_at = %s WHERE id = %s",
        (at, alert_id),
    )


def wake(conn: psycopg.Connection[Any], alert_id: int, *, at: datetime, escalate_at: datetime | None) -> None:
    """End the alert's snooze: open again, to escalate at ``escalate_at`` when nobody acknowledges it."""
    conn.execute(
        "UPDATE alerts SET status = 'open', snoozed_until = NULL, snooze_reason = NULL, updated_at = %s,"
        " escalate_at = %s WHERE id = %s AND status = 'snoozed'",
        (at, escalate_at, alert_id),
    )
