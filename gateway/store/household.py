"""Who lives with a hub, and whose user slot on a shared device is whose (migration 0022).

The SQL of ``gateway.administration.household``, which checks the input, decides what a change means and
audits it. A hub's residents are its enrolled patient (``hubs.patient_id``) plus the ``hub_residents``
rows not removed; a shared device's slots are its ``device_users`` rows not removed. Rows are never
deleted, only marked removed. Ingest reads the same tables through
``gateway.store.repository.hub_assignments``, the hub's config through ``gateway.store.hub_config``.
Callers own transactions; nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class Resident:
    """A patient living with a hub; ``enrolled``: the patient the hub was enrolled for."""

    patient_id: str
    name: str
    enrolled: bool
    since: datetime
    conditions: tuple[str, ...] = ()  # patients.conditions, main condition first


def hub_residents(conn: psycopg.Connection[Any], hub_id: str) -> list[Resident]:
    """Everyone the hub measures now: its enrolled patient first, then the others as they were added."""
    rows = conn.execute(
        "SELECT p.id, p.name, true, h.enrolled_at, 0 AS n, p.conditions FROM hubs h"
        " JOIN patients p ON p.id = h.patient_id WHERE h.id = %s"
        " UNION ALL"
        " SELECT p.id, p.name, false, r.added_at, 1, p.conditions FROM hub_residents r"
        " JOIN patients p ON p.id = r.patient_id"
        " WHERE r.hub_id = %s AND r.removed_at IS NULL"
        " ORDER BY 5, 4, 1",
        (hub_id, hub_id),
    ).fetchall()
    return [Resident(str(p), str(n), bool(e), s, tuple(c or ())) for p, n, e, s, _, c in rows]


def home_of(conn: psycopg.Connection[Any], patient_id: str) -> str | None:
    """The hub the patient lives with as an added resident now (not as an enrolled patient), or None."""
    row = conn.execute(
        "SELECT hub_id FROM hub_residents WHERE patient_id = %s AND removed_at IS NULL", (patient_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def insert_resident(
    conn: psycopg.Connection[Any], municipality_id: str, hub_id: str, patient_id: str, by: str
) -> None:
    """The patient lives with the hub from now (the caller checked they live nowhere else)."""
    conn.execute(
        "INSERT INTO hub_residents (municipality_id, hub_id, patient_id, added_by) VALUES (%s, %s, %s, %s)",
        (municipality_id, hub_id, patient_id, by),
    )


def remove_resident(conn: psycopg.Connection[Any], hub_id: str, patient_id: str, by: str) -> bool:
    """The patient no longer lives with the hub; False when they did not."""
    row = conn.execute(
        "UPDATE hub_residents SET removed_at = now(), removed_by = %s"
        " WHERE hub_id = %s AND patient_id = %s AND removed_at IS NULL RETURNING 1",
        (by, hub_id, patient_id),
    ).fetchone()
    return row is not None


def personal_devices(conn: psycopg.Connection[Any], hub_id: str, patient_id: str) -> list[str]:
    """Ids of the hub's devices in use that are the patient's own: assigned to them and with no user
    slot of anyone else (a device shared with others stays with the others when the patient leaves)."""
    rows = conn.execute(
        "SELECT d.id FROM devices d WHERE d.hub_id = %s AND d.patient_id = %s AND d.removed_at IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM device_users u WHERE u.device_id = d.id AND u.removed_at IS NULL"
        "  AND u.patient_id <> d.patient_id)"
        " ORDER BY d.id",
        (hub_id, patient_id),
    ).fetchall()
    return [str(r[0]) for r in rows]


def device_users(conn: psycopg.Connection[Any], device_id: str) -> dict[int, str]:
    """The shared device's user slots now: User Index -> patient id (empty: a personal device)."""
    rows = conn.execute(
        "SELECT user_index, patient_id FROM device_users WHERE device_id = %s AND removed_at IS NULL"
        " ORDER BY user_index",
        (device_id,),
    ).fetchall()
    return {int(i): str(p) for i, p in rows}


def hub_device_users(conn: psycopg.Connection[Any], hub_id: str) -> dict[str, dict[int, str]]:
    """The user slots of every shared device in use on the hub: device id -> (User Index -> patient)."""
    rows = conn.execute(
        "SELECT u.device_id, u.user_index, u.patient_id FROM device_users u"
        " JOIN devices d ON d.id = u.device_id"
        " WHERE d.hub_id = %s AND d.removed_at IS NULL AND u.removed_at IS NULL"
        " ORDER BY u.device_id, u.user_index",
        (hub_id,),
    ).fetchall()
    slots: dict[str, dict[int, str]] = {}
    for device_id, index, patient_id in rows:
        slots.setdefault(str(device_id), {})[int(index)] = str(patient_id)
    return slots


def set_device_user(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    device_id: str,
    user_index: int,
    patient_id: str,
    by: str,
) -> None:
    """Slot ``user_index`` of the device is the patient's from now: their other slot on it, if any, is
    removed (the caller checked the slot is free or theirs)."""
    conn.execute(
        "UPDATE device_users SET removed_at = now(), removed_by = %s"
        " WHERE device_id = %s AND (patient_id = %s OR user_index = %s) AND removed_at IS NULL",
        (by, device_id, patient_id, user_index),
    )
    conn.execute(
        "INSERT INTO device_users (municipality_id, device_id, user_index, patient_id, assigned_by)"
        " VALUES (%s, %s, %s, %s, %s)",
        (municipality_id, device_id, user_index, patient_id, by),
    )


def remove_device_users(
    conn: psycopg.Connection[Any], hub_id: str, patient_id: str, by: str, device_id: str | None = None
) -> list[str]:
    """Remove the patient's user slots on the hub's devices (or on ``device_id`` only); the device ids
    whose slot went."""
    rows = conn.execute(
        "UPDATE device_users u SET removed_at = now(), removed_by = %s FROM devices d"
        " WHERE d.id = u.device_id AND d.hub_id = %s AND u.patient_id = %s AND u.removed_at IS NULL"
        " AND (%s::text IS NULL OR u.device_id = %s) RETURNING u.device_id",
        (by, hub_id, patient_id, device_id, device_id),
    ).fetchall()
    return sorted(str(r[0]) for r in rows)
