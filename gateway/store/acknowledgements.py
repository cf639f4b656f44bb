"""A nurse's or GP's acknowledgement of an alert, audited in the same transaction.

Only an alert of a patient the acting user may see (``access.patient_scope``: her care teams, her own
patients as GP) can be acknowledged; any other alert is, here, an alert that does not exist. Raising,
escalating and closing alerts is left to ``gateway.alerts``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from gateway.store.access import Viewer, patient_scope
from gateway.store.audit import record_audit


def acknowledge_alert(
    conn: psycopg.Connection[Any], actor: Viewer, alert_id: int, *, client: str
) -> str | None:
    """Acknowledge an alert of a patient the actor may see and audit it, atomically; return its patient.

    None when there is no such alert for the actor. Acknowledging an acknowledged alert changes nothing
    (the first acknowledgement is kept) but is still audited.
    """
    scope = patient_scope(actor)
    with conn.transaction():
        row = conn.execute(
            sql.SQL(
                "SELECT a.patient_id, a.status FROM alerts a"
                " JOIN patients p ON p.municipality_id = a.municipality_id AND p.id = a.patient_id"
                " WHERE a.id = %s AND {scope} FOR UPDATE OF a"
            ).format(scope=scope),
            (alert_id,),
        ).fetchone()
        if row is None:
            return None
        patient_id: str = row[0]
        if row[1] == "open":
            conn.execute(
                "UPDATE alerts SET status = 'acknowledged', acknowledged_by = %s, acknowledged_at = now()"
                " WHERE id = %s",
                (actor.username, alert_id),
            )
        record_audit(conn, actor, "acknowledge-alert", [patient_id], f"alert {alert_id}", client=client)
    return patient_id
