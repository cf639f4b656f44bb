"""What the administrator's homes page lists: a municipality's patients, their hubs and devices in use.

One read (``municipality_homes``) for ``gateway.api.administration_pages``: per patient (by id) her care
team and every hub she has had (the one in service first, revoked ones after, each with its devices in
use, the hub's other residents and, for a shared device, whose User Index is whose: migration 0022),
and the hub she lives with as a resident of another's home. No clinical data and no name: the
administrator enrols homes, she does not read records, so the page names a patient by id as the audit
log does. Changes are ``gateway.administration.homes``'s and ``.household``'s (and their SQL
``gateway.store.administration``'s and ``gateway.store.household``'s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class HomeDevice:
    """A device in use on a hub."""

    id: str
    kind: str
    address: str | None
    assigned_at: datetime
    expected_interval: timedelta | None
    patient_id: str | None = None  # whose it is (a personal device)
    users: tuple[tuple[int, str], ...] = ()  # (User Index, patient) of a device the residents share


@dataclass(frozen=True, slots=True)
class HomeHub:
    """A hub of the patient: in service (``revoked_at`` None) or revoked, its credentials and config."""

    id: str
    enrolled_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    credentials_issued_at: datetime | None
    config_version: int
    config_published: int
    devices: tuple[HomeDevice, ...]
    residents: tuple[str, ...] = ()  # the patients living with it besides the one it was enrolled for


@dataclass(frozen=True, slots=True)
class Home:
    """A patient of the municipality (by id), her care team and her hubs (in service first)."""

    patient_id: str
    care_team_id: str
    care_team_name: str
    hubs: tuple[HomeHub, ...]
    lives_with: str | None = None  # the hub the patient lives with as a resident of another's home

    @property
    def hub_in_service(self) -> HomeHub | None:
        return next((hub for hub in self.hubs if hub.revoked_at is None), None)


@dataclass(frozen=True, slots=True)
class Homes:
    """A page of homes, and whether more patients matched than it holds."""

    homes: tuple[Home, ...]
    more: bool


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def municipality_homes(
    conn: psycopg.Connection[Any], municipality_id: str, *, search: str = "", limit: int = 200
) -> Homes:
    """The patients of ``municipality_id`` whose id, hub id or device (id or address) holds ``search``
    (all when empty), by id, at most ``limit``; each with her hubs and their devices in use."""
    like = _like(search)
    patients = conn.execute(
        "SELECT p.id, p.care_team_id, t.name FROM patients p"
        " JOIN care_teams t ON t.id = p.care_team_id"
        " WHERE p.municipality_id = %(m)s AND (%(all)s OR p.id ILIKE %(like)s OR EXISTS ("
        "  SELECT 1 FROM hubs h LEFT JOIN devices d ON d.hub_id = h.id AND d.removed_at IS NULL"
        "  WHERE h.patient_id = p.id AND h.municipality_id = %(m)s"
        "  AND (h.id ILIKE %(like)s OR d.id ILIKE %(like)s OR d.address ILIKE %(like)s)))"
        " ORDER BY p.id LIMIT %(limit)s",
        {"m": municipality_id, "all": not search, "like": like, "limit": limit + 1},
    ).fetchall()
    more = len(patients) > limit
    shown = patients[:limit]
    ids = [row[0] for row in shown]
    hubs = conn.execute(
        "SELECT h.patient_id, h.id, h.enrolled_at, h.revoked_at, h.revoked_by, h.credentials_issued_at,"
        " h.config_version, h.config_published FROM hubs h"
        " WHERE h.municipality_id = %s AND h.patient_id = ANY(%s)"
        " ORDER BY h.patient_id, h.revoked_at DESC NULLS FIRST, h.id",
        (municipality_id, ids),
    ).fetchall()
    devices = conn.execute(
        "SELECT d.hub_id, d.id, d.kind, d.address, d.assigned_at, d.expected_interval, d.patient_id,"
        " coalesce((SELECT array_agg(array[u.user_index::text, u.patient_id] ORDER BY u.user_index)"
        "  FROM device_users u WHERE u.device_id = d.id AND u.removed_at IS NULL), '{}')"
        " FROM devices d"
        " JOIN hubs h ON h.id = d.hub_id"
        " WHERE h.municipality_id = %s AND h.patient_id = ANY(%s) AND d.removed_at IS NULL"
        " ORDER BY d.hub_id, d.kind, d.id",
        (municipality_id, ids),
    ).fetchall()
    by_hub: dict[str, list[HomeDevice]] = {}
    for hub_id, device_id, kind, address, assigned_at, interval, owner, slots in devices:
        users = tuple((int(index), str(patient)) for index, patient in slots)
        device = HomeDevice(device_id, kind, address, assigned_at, interval, owner, users)
        by_hub.setdefault(hub_id, []).append(device)
    residents: dict[str, list[str]] = {}
    lives_with: dict[str, str] = {}
    for hub_id, patient_id in conn.execute(
        "SELECT r.hub_id, r.patient_id FROM hub_residents r JOIN hubs h ON h.id = r.hub_id"
        " WHERE h.municipality_id = %s AND r.removed_at IS NULL"
        " AND (h.patient_id = ANY(%s) OR r.patient_id = ANY(%s)) ORDER BY r.added_at, r.patient_id",
        (municipality_id, ids, ids),
    ).fetchall():
        residents.setdefault(str(hub_id), []).append(str(patient_id))
        lives_with[str(patient_id)] = str(hub_id)
    by_patient: dict[str, list[HomeHub]] = {}
    for patient_id, hub_id, enrolled, revoked, revoked_by, issued, version, published in hubs:
        hub = HomeHub(
            hub_id,
            enrolled,
            revoked,
            revoked_by,
            issued,
            version,
            published,
            tuple(by_hub.get(hub_id, ())),
            tuple(residents.get(hub_id, ())),
        )
        by_patient.setdefault(patient_id, []).append(hub)
    return Homes(
        tuple(
            Home(pid, team, name, tuple(by_patient.get(pid, ())), lives_with.get(pid))
            for pid, team, name in shown
        ),
        more,
    )


def hubs_in_service(conn: psycopg.Connection[Any], municipality_id: str) -> list[tuple[str, str]]:
    """(hub id, patient id) of the municipality's hubs in service, by hub id: where a device may go."""
    rows = conn.execute(
        "SELECT id, patient_id FROM hubs WHERE municipality_id = %s AND revoked_at IS NULL ORDER BY id",
        (municipality_id,),
    ).fetchall()
    return [(str(h), str(p)) for h, p in rows]


def patient_ids(conn: psycopg.Connection[Any], municipality_id: str) -> list[str]:
    """The ids of the municipality's patients, by id: whose hub may be enrolled."""
    rows = conn.execute(
        "SELECT id FROM patients WHERE municipality_id = %s ORDER BY id", (municipality_id,)
    ).fetchall()
    return [str(row[0]) for row in rows]
