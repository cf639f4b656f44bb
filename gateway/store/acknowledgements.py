"""A nurse's acknowledgement of an alert, audited in the same transaction.

Only an alert of the acting user's municipality can be acknowledged; another municipality's alert is,
here, an alert that does not exist. Raising, escalating and closing alerts is left to
``gateway.alerts``.
"""

from __future__ import annotations

from typing import Any

import psycopg

from gateway.store.audit import Actor, record_audit


def acknowledge_alert(conn: psycopg.Connection[Any], actor: Actor, alert_id: int) -> str | None:
    """Acknowledge an alert of the actor's municipality and audit it, atomically; return its patient.

    None when there is no such alert in the municipality. Acknowledging an acknowledged alert changes
    nothing (the first acknowledgement is kept) but is still audited.
    """
    with conn.transaction():
        row = conn.execute(
            "UPDATE alerts SET status = 'acknowledged', acknowledged_by = %s, acknowledged_at = now()"
            " WHERE municipality_id = %s AND id = %s AND status = 'open' RETURNING patient_id",
            (actor.username, actor.municipality_id, alert_id),
        ).fetchone()
        if row is None:
            row = conn.execute(
                "SELECT patient_id FROM alerts WHERE municipality_id = %s AND id = %s",
                (actor.municipality_id, alert_id),
            ).fetchone()
            if row is None:
                return None
        patient_id: str = row[0]
        record_audit(conn, actor, "acknowledge-alert", [patient_id], f"alert {alert_id}")
    return patient_id
