"""The inputs HUGIN FiNDR learns from beyond the devices: staff change observations and hospital stays.

Two tables of migration 0014. ``staff_observations`` holds one filled-in early-detection change form
(``models.codes.CHANGE_OBSERVATIONS``) or a single item of it per row: ``items`` maps an item key to True
(a change was seen) or False (checked, none seen); an item not checked is absent. ``encounters`` holds one
hospital stay per row: admitted at ``period_start``, discharged at ``period_end`` (None: still in
hospital).

Both arrive from a home-care or hospital system over ``POST /fhir`` (source 'fhir') or from the web form
(source 'web'), and both are keyed on their identifier (``system|value``) within the municipality, so a
message sent again is harmless:

- ``store_staff_observation``: a form sent again with the same identifier changes nothing visible beyond
  a correction (an amended form replaces the items and time it had); True only when the row is new.
- ``store_encounter``: the stay sent again replaces what was stored (FHIR update semantics): a discharge
  sent later with the admission's identifier fills ``period_end``. 'created', 'updated' or 'unchanged'.

An identifier already used for another patient of the municipality is refused (``IdentifierConflict``):
the sender's identifiers are broken and silently moving a record between patients would be worse. A
patient the municipality does not have is ``UnknownPatient``; nothing is written in either case. The
municipality is always the caller's (the account's, or the patient's as ``access.patient_scope`` found
it), never read from the message.

Reading (``staff_observations``, ``hospital_stays``) is by municipality and patient, for the live 30-day
risk (``gateway.alerts.admission_risk``), training and the patient page; a stay whose status withdraws
it ('cancelled', 'entered-in-error') is read too, and ``counts`` tells the callers to skip it.
Validation of the FHIR shape is left to ``gateway.api.findr_fhir``; wording to the web layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from gateway.store import access
from gateway.store.errors import StoreError

SOURCES: Final = ("fhir", "web")
# A stay its sender withdrew: kept (the same identifier may correct it again), never counted as a stay.
WITHDRAWN_STATUSES: Final = frozenset({"cancelled", "entered-in-error"})
EncounterOutcome = Literal["created", "updated", "unchanged"]


class FindrInputRefused(StoreError):
    """Root of the refusals of this module; nothing was written."""


class UnknownPatient(FindrInputRefused):
    """The municipality has no patient with this id (it may be another municipality's: not told)."""

    def __init__(self, municipality_id: str, patient_id: str) -> None:
        super().__init__(f"municipality {municipality_id} has no patient {patient_id}")
        self.municipality_id = municipality_id
        self.patient_id = patient_id


class IdentifierConflict(FindrInputRefused):
    """The identifier is already stored for another patient of the municipality."""

    def __init__(self, table: str, identifier: str) -> None:
        super().__init__(f"{table}: identifier {identifier} already belongs to another patient")
        self.table = table
        self.identifier = identifier


@dataclass(frozen=True, slots=True)
class StaffObservation:
    """One change form (or one item of it) as stored."""

    municipality_id: str
    patient_id: str
    identifier: str
    effective: datetime
    items: dict[str, bool]  # key -> change seen (True) / checked, none seen (False); absent: not checked
    recorded_by: str
    source: str  # 'fhir' | 'web'
    resource: dict[str, Any]
    recorded_by_name: str | None = field(default=None, compare=False)  # users.full_name, when read


@dataclass(frozen=True, slots=True)
class HospitalStay:
    """One hospital stay (an inpatient Encounter) as stored."""

    municipality_id: str
    patient_id: str
    identifier: str
    status: str  # FHIR Encounter.status
    class_code: str  # v3 ActCode: IMP, ACUTE or NONAC
    period_start: datetime
    period_end: datetime | None  # None: still in hospital
    recorded_by: str
    source: str
    resource: dict[str, Any]


def counts(stay: HospitalStay) -> bool:
    """Whether the stay happened (or is happening): not one its sender withdrew."""
    return stay.status not in WITHDRAWN_STATUSES


def visible_patient_municipality(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str
) -> str | None:
    """The municipality of the patient when ``viewer`` may see them (``access.patient_scope``: the web
    form and the patient page read and write under it), else None."""
    query = sql.SQL("SELECT p.municipality_id FROM patients p WHERE p.id = %s AND {scope}").format(
        scope=access.patient_scope(viewer, "p")
    )
    row = conn.execute(query, (patient_id,)).fetchone()
    return None if row is None else str(row[0])


def _require_patient(conn: psycopg.Connection[Any], municipality_id: str, patient_id: str) -> None:
    row = conn.execute(
        "SELECT 1 FROM patients WHERE municipality_id = %s AND id = %s", (municipality_id, patient_id)
    ).fetchone()
    if row is None:
        raise UnknownPatient(municipality_id, patient_id)


def store_staff_observation(conn: psycopg.Connection[Any], obs: StaffObservation) -> bool:
    """Store the form; True when new, False when its identifier was stored before (then an amended
    time or items replace the stored ones). UnknownPatient, IdentifierConflict: nothing written."""
    with conn.transaction():
        _require_patient(conn, obs.municipality_id, obs.patient_id)
        row = conn.execute(
            "INSERT INTO staff_observations (municipality_id, patient_id, identifier, effective, items,"
            " recorded_by, source, resource) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (municipality_id, identifier) DO NOTHING RETURNING id",
            (
                obs.municipality_id,
                obs.patient_id,
                obs.identifier,
                obs.effective,
                Jsonb(obs.items),
                obs.recorded_by,
                obs.source,
                Jsonb(obs.resource),
            ),
        ).fetchone()
        if row is not None:
            return True
        stored = conn.execute(
            "SELECT patient_id FROM staff_observations WHERE municipality_id = %s AND identifier = %s"
            " FOR UPDATE",
            (obs.municipality_id, obs.identifier),
        ).fetchone()
        if stored is None or stored[0] != obs.patient_id:
            # None: a concurrent delete between the two statements (nothing deletes today); refuse too.
            raise IdentifierConflict("staff_observations", obs.identifier)
        conn.execute(
            "UPDATE staff_observations SET effective = %s, items = %s, resource = %s, recorded_by = %s,"
            " source = %s WHERE municipality_id = %s AND identifier = %s"
            " AND (effective, items) IS DISTINCT FROM (%s, %s)",
            (
                obs.effective,
                Jsonb(obs.items),
                Jsonb(obs.resource),
                obs.recorded_by,
                obs.source,
                obs.municipality_id,
                obs.identifier,
                obs.effective,
                Jsonb(obs.items),
            ),
        )
        return False


def store_encounter(conn: psycopg.Connection[Any], stay: HospitalStay) -> EncounterOutcome:
    """Store the stay: 'created', 'updated' (status, class or period differed: the one sent replaces
    it) or 'unchanged'. UnknownPatient, IdentifierConflict: nothing written."""
    with conn.transaction():
        _require_patient(conn, stay.municipality_id, stay.patient_id)
        row = conn.execute(
            "INSERT INTO encounters (municipality_id, patient_id, identifier, status, class_code,"
            " period_start, period_end, recorded_by, source, resource)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (municipality_id, identifier) DO NOTHING RETURNING id",
            (
                stay.municipality_id,
                stay.patient_id,
                stay.identifier,
                stay.status,
                stay.class_code,
                stay.period_start,
                stay.period_end,
                stay.recorded_by,
                stay.source,
                Jsonb(stay.resource),
            ),
        ).fetchone()
        if row is not None:
            return "created"
        stored = conn.execute(
            "SELECT patient_id FROM encounters WHERE municipality_id = %s AND identifier = %s FOR UPDATE",
            (stay.municipality_id, stay.identifier),
        ).fetchone()
        if stored is None or stored[0] != stay.patient_id:
            raise IdentifierConflict("encounters", stay.identifier)
        updated = conn.execute(
            "UPDATE encounters SET status = %s, class_code = %s, period_start = %s, period_end = %s,"
            " recorded_by = %s, source = %s, resource = %s, updated_at = now()"
            " WHERE municipality_id = %s AND identifier = %s"
            " AND (status, class_code, period_start, period_end) IS DISTINCT FROM (%s, %s, %s, %s)",
            (
                stay.status,
                stay.class_code,
                stay.period_start,
                stay.period_end,
                stay.recorded_by,
                stay.source,
                Jsonb(stay.resource),
                stay.municipality_id,
                stay.identifier,
                stay.status,
                stay.class_code,
                stay.period_start,
                stay.period_end,
            ),
        )
        return "updated" if updated.rowcount else "unchanged"


def staff_observations(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    *,
    after: datetime,
    until: datetime,
    limit: int | None = None,
) -> list[StaffObservation]:
    """The patient's forms effective in ``(after, until]``, oldest first; with ``limit``, only the
    newest ``limit`` of them (still oldest first)."""
    rows = conn.execute(
        "SELECT * FROM (SELECT s.municipality_id, s.patient_id, s.identifier, s.effective, s.items,"
        " s.recorded_by, s.source, s.resource, u.full_name, s.id FROM staff_observations s"
        " LEFT JOIN users u ON u.username = s.recorded_by"
        " WHERE s.municipality_id = %s AND s.patient_id = %s AND s.effective > %s AND s.effective <= %s"
        " ORDER BY s.effective DESC, s.id DESC LIMIT %s) newest ORDER BY effective, id",
        (municipality_id, patient_id, after, until, limit),
    ).fetchall()
    return [
        StaffObservation(
            str(m),
            str(p),
            str(ident),
            effective,
            {str(k): bool(v) for k, v in (items or {}).items() if isinstance(v, bool)},
            str(by),
            str(source),
            dict(resource or {}),
            name,
        )
        for m, p, ident, effective, items, by, source, resource, name, _id in rows
    ]


def hospital_stays(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    *,
    until: datetime,
    after: datetime | None = None,
) -> list[HospitalStay]:
    """The patient's stays admitted by ``until`` (and, with ``after``, admitted after it), oldest first.
    The discharge is as stored: a caller scoring as of ``until`` hides a later one itself."""
    rows = conn.execute(
        "SELECT municipality_id, patient_id, identifier, status, class_code, period_start, period_end,"
        " recorded_by, source, resource FROM encounters"
        " WHERE municipality_id = %s AND patient_id = %s AND period_start <= %s"
        " AND (%s::timestamptz IS NULL OR period_start > %s::timestamptz)"
        " ORDER BY period_start, id",
        (municipality_id, patient_id, until, after, after),
    ).fetchall()
    return [
        HospitalStay(
            str(m),
            str(p),
            str(ident),
            str(status),
            str(klass),
            start,
            end,
            str(by),
            str(source),
            dict(res or {}),
        )
        for m, p, ident, status, klass, start, end, by, source, res in rows
    ]
