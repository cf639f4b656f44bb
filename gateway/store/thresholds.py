"""A patient's own alert limits per vital sign (table ``patient_thresholds``, migration 0011).

The table only grows: setting limits adds a row, the newest row of a patient and vital sign is in
force, the older ones are its history. A vital sign without a row has no limits of its own (the caller
falls back to ``models.triage.default_limits``, the NEWS2 bands). Every function takes the viewer and
goes through ``access.patient_scope``, so a patient the viewer may not see has no limits and cannot be
given any. ``set_limits`` writes its audit row in the same transaction. Checking the limits' order is
``models.triage.disorder``'s (the schema's CHECK is the last word); wording is left to ``gateway.api``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from gateway.store import access
from gateway.store.audit import record_audit
from gateway.store.errors import StoreError
from models.triage import VITALS, Limits, disorder

AUDIT_ACTION = "set-thresholds"


class LimitsRefused(StoreError):
    """Limits that cannot be stored: the patient is not one the viewer may see, the vital sign is
    unknown, or the limits are out of order; nothing was written."""

    def __init__(self, patient_id: str, vital: str, detail: str) -> None:
        super().__init__(f"limits of {vital} for {patient_id} refused: {detail}")
        self.patient_id = patient_id
        self.vital = vital
        self.detail = detail


@dataclass(frozen=True, slots=True)
class StoredLimits:
    """Limits a person set for one vital sign of one patient, and who set them when."""

    vital: str
    limits: Limits
    set_by: str
    set_at: datetime


_COLUMNS = sql.SQL("t.vital, t.red_low, t.yellow_low, t.yellow_high, t.red_high, t.set_by, t.set_at")


def _stored(row: tuple[Any, ...]) -> StoredLimits:
    return StoredLimits(row[0], Limits(*row[1:5]), row[5], row[6])


def current_limits(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str
) -> dict[str, StoredLimits]:
    """The limits in force per vital sign (the newest row of each), for the vital signs that have any."""
    query = sql.SQL(
        "SELECT DISTINCT ON (t.vital) {columns} FROM patients p"
        " JOIN patient_thresholds t ON t.municipality_id = p.municipality_id AND t.patient_id = p.id"
        " WHERE p.id = %s AND {scope} ORDER BY t.vital, t.set_at DESC, t.id DESC"
    ).format(columns=_COLUMNS, scope=access.patient_scope(viewer, "p"))
    rows = conn.execute(query, (patient_id,)).fetchall()
    return {stored.vital: stored for stored in map(_stored, rows)}


def limits_history(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str, limit: int = 50
) -> list[StoredLimits]:
    """Every change of the patient's limits, newest first (at most ``limit``)."""
    query = sql.SQL(
        "SELECT {columns} FROM patients p"
        " JOIN patient_thresholds t ON t.municipality_id = p.municipality_id AND t.patient_id = p.id"
        " WHERE p.id = %s AND {scope} ORDER BY t.set_at DESC, t.id DESC LIMIT %s"
    ).format(columns=_COLUMNS, scope=access.patient_scope(viewer, "p"))
    return [_stored(row) for row in conn.execute(query, (patient_id, limit)).fetchall()]


def set_limits(
    conn: psycopg.Connection[Any],
    viewer: access.Viewer,
    patient_id: str,
    changes: Mapping[str, Limits],
    *,
    client: str | None,
) -> int:
    """Store ``changes`` (vital sign -> its new limits) as ``viewer``'s, with one audit row (``client``:
    where the request came from), atomically;
    return how many vital signs changed. LimitsRefused, with nothing written, for a patient the viewer
    may not see, an unknown vital sign or limits out of order."""
    for vital, limits in changes.items():
        if vital not in VITALS:
            raise LimitsRefused(patient_id, vital, f"unknown vital sign (known: {', '.join(VITALS)})")
        if wrong := disorder(limits):
            raise LimitsRefused(patient_id, vital, f"{wrong[0][0]} is above {wrong[0][1]}")
    insert = sql.SQL(
        "INSERT INTO patient_thresholds"
        " (municipality_id, patient_id, vital, red_low, yellow_low, yellow_high, red_high, set_by)"
        " SELECT p.municipality_id, p.id, %s, %s, %s, %s, %s, %s FROM patients p WHERE p.id = %s AND {scope}"
    ).format(scope=access.patient_scope(viewer, "p"))
    with conn.transaction():
        if not access.may_see_patient(conn, viewer, patient_id):
            raise LimitsRefused(patient_id, ", ".join(changes), "no such patient among the viewer's")
        with conn.cursor() as cur:
            for vital, limits in sorted(changes.items()):
                values = (limits.red_low, limits.yellow_low, limits.yellow_high, limits.red_high)
                cur.execute(insert, (vital, *values, viewer.username, patient_id))
        if changes:
            record_audit(conn, viewer, AUDIT_ACTION, [patient_id], ", ".join(sorted(changes)), client=client)
    return len(changes)
