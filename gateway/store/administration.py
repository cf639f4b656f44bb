"""The rows a municipality's administrator changes: municipalities, care teams, patients, hubs, devices.

The SQL under ``gateway.administration`` (the one service layer of the ``homewatch admin`` commands and
the administrators' pages), which checks the input, decides what a change means and audits it. Here are
only reads named for what they return and writes that do one thing. Nothing is ever deleted: a revoked
hub and a removed device keep their rows (migration 0015), so every stored reading stays explained.
Callers own transactions; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from gateway.store.audit import record_audit
from gateway.store.users import user_by_name


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A patient as the administrator enrols them (not the clinical columns the nurses' pages read)."""

    municipality_id: str
    id: str
    name: str
    care_team_id: str
    phone: str | None
    conditions: tuple[str, ...]
    birth_date: date | None


@dataclass(frozen=True, slots=True)
class HubRecord:
    """A hub's row: whose it is, whether it is revoked, its broker account and its config versions."""

    municipality_id: str
    id: str
    patient_id: str
    enrolled_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    broker_username: str | None
    credentials_issued_at: datetime | None
    config_version: int
    config_published: int


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device's row; ``removed_at`` None: assigned to its hub and patient now."""

    municipality_id: str
    id: str
    hub_id: str
    patient_id: str
    kind: str
    address: str | None
    expected_interval: timedelta | None
    assigned_at: datetime
    removed_at: datetime | None


# --- municipalities and care teams ----------------------------------------------------------------


def municipality_name(conn: psycopg.Connection[Any], municipality_id: str) -> str | None:
    """The municipality's name, None when there is no such municipality."""
    row = conn.execute("SELECT name FROM municipalities WHERE id = %s", (municipality_id,)).fetchone()
    return None if row is None else str(row[0])


def upsert_municipality(conn: psycopg.Connection[Any], municipality_id: str, name: str) -> None:
    """Create the municipality (its default care team comes with it, migration 0008) or rename it."""
    conn.execute(
        "INSERT INTO municipalities (id, name) VALUES (%s, %s)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
        (municipality_id, name),
    )


def care_team(conn: psycopg.Connection[Any], team_id: str) -> tuple[str, str] | None:
    """(municipality id, name) of the care team, None when there is none."""
    row = conn.execute("SELECT municipality_id, name FROM care_teams WHERE id = %s", (team_id,)).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def upsert_care_team(conn: psycopg.Connection[Any], municipality_id: str, team_id: str, name: str) -> None:
    """Create the care team in ``municipality_id`` or rename it (the caller checked it is not another's)."""
    conn.execute(
        "INSERT INTO care_teams (municipality_id, id, name) VALUES (%s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name"
        " WHERE care_teams.municipality_id = EXCLUDED.municipality_id",
        (municipality_id, team_id, name),
    )


# --- patients -------------------------------------------------------------------------------------


def patient_record(conn: psycopg.Connection[Any], patient_id: str) -> PatientRecord | None:
    """The patient, whichever municipality holds them (the caller scopes); None when unknown."""
    row = conn.execute(
        "SELECT municipality_id, id, name, care_team_id, phone, conditions, birth_date FROM patients"
        " WHERE id = %s",
        (patient_id,),
    ).fetchone()
    if row is None:
        return None
    municipality_id, pid, name, team, phone, conditions, birth_date = row
    return PatientRecord(municipality_id, pid, name, team, phone, tuple(conditions), birth_date)


def upsert_patient(conn: psycopg.Connection[Any], patient: PatientRecord) -> None:
    """Create the patient or update what the administrator enrols (name, team, phone, conditions, birth
    date); the GP, the SpO2 scale and the synthetic mark, set elsewhere, are kept. The caller checked
    that the id is not another municipality's."""
    conn.execute(
        "INSERT INTO patients (municipality_id, id, name, care_team_id, phone, conditions, birth_date)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, care_team_id = EXCLUDED.care_team_id,"
        " phone = EXCLUDED.phone, conditions = EXCLUDED.conditions, birth_date = EXCLUDED.birth_date"
        " WHERE patients.municipality_id = EXCLUDED.municipality_id",
        (
            patient.municipality_id,
            patient.id,
            patient.name,
            patient.care_team_id,
            patient.phone,
            list(patient.conditions),
            patient.birth_date,
        ),
    )


# --- hubs -----------------------------------------------------------------------------------------

_HUB_COLUMNS = (
    "municipality_id, id, patient_id, enrolled_at, revoked_at, revoked_by, broker_username,"
    " credentials_issued_at, config_version, config_published"
)


def hub_record(conn: psycopg.Connection[Any], hub_id: str) -> HubRecord | None:
    """The hub, whichever municipality holds it (the caller scopes); None when unknown."""
    row = conn.execute(f"SELECT {_HUB_COLUMNS} FROM hubs WHERE id = %s", (hub_id,)).fetchone()
    return None if row is None else HubRecord(*row)


def insert_hub(conn: psycopg.Connection[Any], municipality_id: str, hub_id: str, patient_id: str) -> None:
    """A new hub for the patient (the caller checked that neither the id nor the patient is another's)."""
    conn.execute(
        "INSERT INTO hubs (municipality_id, id, patient_id) VALUES (%s, %s, %s)",
        (municipality_id, hub_id, patient_id),
    )


def record_credentials(conn: psycopg.Connection[Any], hub_id: str, broker_username: str | None) -> datetime:
    """Note that the hub's credentials were issued now (to ``broker_username``; None: the broker keeps no
    accounts); the time they were issued."""
    row = conn.execute(
        "UPDATE hubs SET broker_username = %s, credentials_issued_at = now() WHERE id = %s"
        " RETURNING credentials_issued_at",
        (broker_username, hub_id),
    ).fetchone()
    assert row is not None, f"hub {hub_id} vanished"
    issued: datetime = row[0]
    return issued


def merge_hub_settings(conn: psycopg.Connection[Any], hub_id: str, changes: dict[str, Any]) -> bool:
    """Merge ``changes`` into the hub's settings (a key set to None is dropped: the hub's own file rules
    again); False when nothing changed."""
    row = conn.execute(
        "UPDATE hubs SET settings = jsonb_strip_nulls(settings || %s::jsonb) WHERE id = %s"
        " AND settings IS DISTINCT FROM jsonb_strip_nulls(settings || %s::jsonb) RETURNING 1",
        (Jsonb(changes), hub_id, Jsonb(changes)),
    ).fetchone()
    return row is not None


def hub_settings(conn: psycopg.Connection[Any], hub_id: str) -> dict[str, Any]:
    """The settings an administrator set for the hub (empty: the hub's own file rules)."""
    row = conn.execute("SELECT settings FROM hubs WHERE id = %s", (hub_id,)).fetchone()
    return {} if row is None else dict(row[0])


def bump_config_version(conn: psycopg.Connection[Any], hub_id: str) -> int:
    """Count one change to what the hub should run (its devices, its settings); the new version, which
    the retained config is published under (``gateway.hub_config``)."""
    row = conn.execute(
        "UPDATE hubs SET config_version = config_version + 1 WHERE id = %s RETURNING config_version",
        (hub_id,),
    ).fetchone()
    assert row is not None, f"hub {hub_id} vanished"
    version: int = row[0]
    return version


def revoke_hub(conn: psycopg.Connection[Any], hub_id: str, by: str) -> datetime | None:
    """Mark the hub revoked now (ingest refuses it from the commit on); the time, or None when it was
    revoked already (the first revocation's time and author are kept)."""
    row = conn.execute(
        "UPDATE hubs SET revoked_at = now(), revoked_by = %s WHERE id = %s AND revoked_at IS NULL"
        " RETURNING revoked_at",
        (by, hub_id),
    ).fetchone()
    return None if row is None else row[0]


# --- devices --------------------------------------------------------------------------------------

_DEVICE_COLUMNS = (
    "municipality_id, id, hub_id, patient_id, kind, address, expected_interval, assigned_at, removed_at"
)


def device_record(conn: psycopg.Connection[Any], device_id: str) -> DeviceRecord | None:
    """The device, whichever municipality holds it (the caller scopes); None when unknown."""
    row = conn.execute(f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = %s", (device_id,)).fetchone()
    return None if row is None else DeviceRecord(*row)


def hub_devices(conn: psycopg.Connection[Any], hub_id: str) -> list[DeviceRecord]:
    """The devices assigned to the hub now (not removed), by id."""
    rows = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE hub_id = %s AND removed_at IS NULL ORDER BY id",
        (hub_id,),
    ).fetchall()
    return [DeviceRecord(*row) for row in rows]


def hub_device_at(conn: psycopg.Connection[Any], hub_id: str, address: str) -> DeviceRecord | None:
    """The hub's device with this Bluetooth address: the one assigned now, else the one removed last;
    None when the hub never had one there."""
    row = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE hub_id = %s AND address = %s"
        " ORDER BY removed_at DESC NULLS FIRST, id LIMIT 1",
        (hub_id, address),
    ).fetchone()
    return None if row is None else DeviceRecord(*row)


def upsert_device(
    conn: psycopg.Connection[Any],
    device: DeviceRecord,
) -> None:
    """Assign the device to its hub and patient: create it, or re-pair it (a removed device is assigned
    again, a device of another hub moves; ``assigned_at`` is then now). The caller checked that the id is
    not another municipality's."""
    conn.execute(
        "INSERT INTO devices (municipality_id, id, hub_id, patient_id, kind, address, expected_interval)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET hub_id = EXCLUDED.hub_id, patient_id = EXCLUDED.patient_id,"
        " kind = EXCLUDED.kind, address = EXCLUDED.address, expected_interval = EXCLUDED.expected_interval,"
        " removed_at = NULL,"
        " assigned_at = CASE WHEN devices.removed_at IS NULL AND devices.hub_id = EXCLUDED.hub_id"
        "  THEN devices.assigned_at ELSE now() END"
        " WHERE devices.municipality_id = EXCLUDED.municipality_id",
        (
            device.municipality_id,
            device.id,
            device.hub_id,
            device.patient_id,
            device.kind,
            device.address,
            device.expected_interval,
        ),
    )


def remove_device(conn: psycopg.Connection[Any], device_id: str) -> datetime | None:
    """Mark the device removed now (ingest refuses its readings from the commit on); the time, or None
    when it was removed already."""
    row = conn.execute(
        "UPDATE devices SET removed_at = now() WHERE id = %s AND removed_at IS NULL RETURNING removed_at",
        (device_id,),
    ).fetchone()
    return None if row is None else row[0]


# --- audit ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Administrator:
    username: str
    municipality_id: str | None
    role: str | None


def audit_administration(
    conn: psycopg.Connection[Any],
    by: str,
    municipality_id: str,
    action: str,
    patient_ids: Sequence[str | None],
    detail: str,
    *,
    client: str | None = None,
) -> None:
    """One audit row per patient concerned (or one about none): ``by`` as the users table knows them (a
    user's own municipality and role), else, an operating-system account at the command line, as acting
    for ``municipality_id`` with no role, so that municipality's administrators see it on their page;
    ``client`` is the address of a page's request (None at the command line)."""
    user = user_by_name(conn, by)
    actor = (
        _Administrator(by, municipality_id, None)
        if user is None
        else _Administrator(user.username, user.municipality_id, user.role)
    )
    record_audit(conn, actor, action, patient_ids, detail, client=client)
