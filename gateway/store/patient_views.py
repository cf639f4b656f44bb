"""What a patient's page and the FHIR Patient read show: the patient, readings, scores, devices (alerts
are ``alert_inbox``'s).

Every function takes the ``viewer`` and reaches rows through the patient, filtered by
``access.patient_scope``: a patient outside the viewer's assignment is simply not found, and has no
readings, scores, alerts or devices. Readings for plots and triage come in their canonical unit
(migration 0006; a row a writer stored without the canonical columns is converted by the database's
own ``ucum_canonical_*`` functions, never in Python). Scores are read here but written by
``gateway.alerts``; wording is left to ``gateway.api.presenters`` and FHIR shaping to
``gateway.api.fhir_model``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

from fhir_contract.status import PRELIMINARY
from gateway.store import access
from gateway.store.synthetic import patient_enrolled_synthetic, resource_labelled

# scores.method of a NEWS2 score (the scorer's); disease rules and the 30-day risk have methods of their own.
NEWS2 = "news2"
# The reading kind a device's Battery Level (0x2A19) is stored as (edge_agent.gatt.battery).
BATTERY_LEVEL = "battery-level"


@dataclass(frozen=True, slots=True)
class PatientRow:
    """A patient with their municipality's name; ``synthetic`` when enrolled as synthetic or when their
    newest reading or score is labelled as test data."""

    id: str
    name: str
    birth_date: date | None
    conditions: tuple[str, ...]
    spo2_scale2: bool
    municipality_name: str
    synthetic: bool
    care_team: str | None = None  # the care team's name
    gp_username: str | None = None
    gp_name: str | None = None  # users.full_name of the GP, when set
    phone: str | None = None


def patient_columns() -> sql.Composable:
    """SQL: the columns of a ``PatientRow``, over ``patients p JOIN municipalities m``."""
    return sql.SQL(
        "p.id, p.name, p.birth_date, p.conditions, p.spo2_scale2, m.name,"
        " {p_synth} OR EXISTS (SELECT 1 FROM (SELECT o.resource FROM observations o"
        "  WHERE o.municipality_id = p.municipality_id AND o.patient_id = p.id"
        "  ORDER BY o.effective DESC LIMIT 1) o WHERE {o_synth})"
        " OR EXISTS (SELECT 1 FROM (SELECT s.resource FROM scores s"
        "  WHERE s.municipality_id = p.municipality_id AND s.patient_id = p.id"
        "  ORDER BY s.computed_at DESC LIMIT 1) s WHERE {s_synth}),"
        " (SELECT t.name FROM care_teams t WHERE t.id = p.care_team_id), p.gp_username,"
        " (SELECT u.full_name FROM users u WHERE u.username = p.gp_username), p.phone"
    ).format(
        p_synth=patient_enrolled_synthetic("p"),
        o_synth=resource_labelled("o"),
        s_synth=resource_labelled("s"),
    )


def patient_row(row: tuple[Any, ...]) -> PatientRow:
    """A ``PatientRow`` from the columns of ``patient_columns``."""
    return PatientRow(
        row[0], row[1], row[2], tuple(row[3]), row[4], row[5], bool(row[6]), row[7], row[8], row[9], row[10]
    )


def _scoped_patient(viewer: access.Viewer) -> sql.Composable:
    """SQL: a CTE ``pt`` holding the one patient ``%s`` when ``viewer`` may see them (else no row)."""
    return sql.SQL(
        "pt AS (SELECT p.id, p.municipality_id FROM patients p WHERE p.id = %s AND {scope})"
    ).format(scope=access.patient_scope(viewer, "p"))


def patient(conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str) -> PatientRow | None:
    """The patient when ``viewer`` may see them, else None."""
    query = sql.SQL(
        "SELECT {columns} FROM patients p JOIN municipalities m ON m.id = p.municipality_id"
        " WHERE p.id = %s AND {scope}"
    ).format(columns=patient_columns(), scope=access.patient_scope(viewer, "p"))
    row = conn.execute(query, (patient_id,)).fetchone()
    return None if row is None else patient_row(row)


# --- readings ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """One stored reading as sent (``value``, ``unit``, ``components``) and in its canonical unit."""

    effective: datetime
    kind: str
    value: float | None
    unit: str | None
    components: Mapping[str, Any] | None
    absent_reason: str | None
    synthetic: bool
    canonical_value: float | None = None
    canonical_unit: str | None = None
    canonical_components: Mapping[str, float] = field(default_factory=dict)
    device_id: str | None = None
    status: str = "final"


@dataclass(frozen=True, slots=True)
class ReadingsPage:
    """One page of a patient's readings, newest first, and whether older ones follow."""

    rows: tuple[ReadingRow, ...]
    has_more: bool


def _canonical(alias: str) -> sql.Composable:
    """SQL: the canonical value, unit and components of observation ``alias``, converted by the database's
    ``ucum_canonical_*`` functions (migration 0006) where a writer left the columns empty."""
    o = sql.Identifier(alias)
    return sql.SQL(
        "coalesce({o}.canonical_value, ucum_canonical_value({o}.value, {o}.unit)),"
        " coalesce({o}.canonical_unit, ucum_canonical_unit({o}.unit)),"
        " coalesce({o}.canonical_components, ucum_canonical_components({o}.components, {o}.unit))"
    ).format(o=o)


def _numbers(components: Mapping[str, Any] | None) -> dict[str, float]:
    """A panel's numbers by component, stored either as ``{"systolic": 120}`` or ``{"value": 120}``."""
    found: dict[str, float] = {}
    for key, raw in (components or {}).items():
        number = raw.get("value") if isinstance(raw, Mapping) else raw
        if isinstance(number, int | float) and not isinstance(number, bool):
            found[key] = float(number)
    return found


def readings_page(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str, *, page: int = 1, size: int = 50
) -> ReadingsPage:
    """Page ``page`` (from 1) of the patient's readings, ``size`` a page, newest first (any status)."""
    query = sql.SQL(
        "WITH {pt} SELECT o.effective, o.kind, o.value, o.unit, o.components,"
        " o.resource -> 'dataAbsentReason' -> 'coding' -> 0 ->> 'code', {synth}, {canonical},"
        " o.device_id, o.resource ->> 'status'"
        " FROM pt JOIN observations o ON o.municipality_id = pt.municipality_id AND o.patient_id = pt.id"
        " ORDER BY o.effective DESC, o.identifier DESC LIMIT %s OFFSET %s"
    ).format(pt=_scoped_patient(viewer), synth=resource_labelled("o"), canonical=_canonical("o"))
    offset = (max(page, 1) - 1) * size
    rows = conn.execute(query, (patient_id, size + 1, offset)).fetchall()
    readings = tuple(
        ReadingRow(
            effective=row[0],
            kind=row[1],
            value=row[2],
            unit=row[3],
            components=row[4],
            absent_reason=row[5],
            synthetic=bool(row[6]),
            canonical_value=row[7],
            canonical_unit=row[8],
            canonical_components=_numbers(row[9]),
            device_id=row[10],
            status=row[11] or "final",
        )
        for row in rows[:size]
    )
    return ReadingsPage(readings, len(rows) > size)


@dataclass(frozen=True, slots=True)
class CanonicalReading:
    """A final reading with a number, in its canonical unit: ``value``, or a panel's ``components``."""

    effective: datetime
    kind: str
    value: float | None
    unit: str | None
    components: Mapping[str, float]


def canonical_readings(
    conn: psycopg.Connection[Any],
    viewer: access.Viewer,
    patient_id: str,
    *,
    after: datetime,
    kinds: Iterable[str],
) -> list[CanonicalReading]:
    """The patient's final readings of ``kinds`` taken after ``after``, oldest first, in canonical units
    (a preliminary value, a cuff's pressure while it inflates, is never one)."""
    query = sql.SQL(
        "WITH {pt} SELECT o.effective, o.kind, {canonical}"
        " FROM pt JOIN observations o ON o.municipality_id = pt.municipality_id AND o.patient_id = pt.id"
        " WHERE o.kind = ANY(%s) AND o.effective > %s AND o.resource ->> 'status' <> %s"
        " AND (o.value IS NOT NULL OR o.components IS NOT NULL)"
        " ORDER BY o.effective, o.identifier"
    ).format(pt=_scoped_patient(viewer), canonical=_canonical("o"))
    rows = conn.execute(query, (patient_id, sorted(set(kinds)), after, PRELIMINARY)).fetchall()
    return [CanonicalReading(row[0], row[1], row[2], row[3], _numbers(row[4])) for row in rows]


# --- scores -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreRow:
    id: int
    computed_at: datetime
    as_of: datetime
    method: str
    score: float
    band: str
    detail: Mapping[str, Any]


_SCORE_COLUMNS = sql.SQL("s.id, s.computed_at, s.as_of, s.method, s.score, s.band, s.detail")


def scores_by_method(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str, per_method: int = 6
) -> dict[str, list[ScoreRow]]:
    """The newest ``per_method`` scores of each method (NEWS2, each disease rule, the 30-day risk),
    newest first, keyed by method in the order of each method's newest score."""
    query = sql.SQL(
        "WITH {pt} SELECT id, computed_at, as_of, method, score, band, detail FROM ("
        " SELECT {columns}, row_number() OVER (PARTITION BY s.method ORDER BY s.computed_at DESC, s.id DESC)"
        " AS n, max(s.computed_at) OVER (PARTITION BY s.method) AS newest"
        " FROM pt JOIN scores s ON s.municipality_id = pt.municipality_id AND s.patient_id = pt.id) x"
        " WHERE n <= %s ORDER BY newest DESC, method, n"
    ).format(pt=_scoped_patient(viewer), columns=_SCORE_COLUMNS)
    grouped: dict[str, list[ScoreRow]] = {}
    for row in conn.execute(query, (patient_id, per_method)).fetchall():
        score = ScoreRow(*row)
        grouped.setdefault(score.method, []).append(score)
    return grouped


def latest_news2(conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str) -> ScoreRow | None:
    """The patient's newest NEWS2 score (never a disease rule's or the 30-day risk's), else None."""
    query = sql.SQL(
        "WITH {pt} SELECT {columns}"
        " FROM pt JOIN scores s ON s.municipality_id = pt.municipality_id AND s.patient_id = pt.id"
        " WHERE s.method = %s ORDER BY s.computed_at DESC, s.id DESC LIMIT 1"
    ).format(pt=_scoped_patient(viewer), columns=_SCORE_COLUMNS)
    row = conn.execute(query, (patient_id, NEWS2)).fetchone()
    return None if row is None else ScoreRow(*row)


# --- devices and hubs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A device of the patient: registered (``kind`` known) or only seen in readings (``kind`` None).

    ``last_reading`` is the measurement time of its newest reading; ``battery`` its newest Battery Level
    in % (None when it never reported one) and ``battery_at`` when it was known: the newer of the hub's
    status (migration 0012; the time the gateway took it) and a ``battery-level`` reading (measured).
    ``connected``: whether its hub's newest status says the hub holds a link to it (None: no status)."""

    id: str
    kind: str | None
    hub_id: str | None
    address: str | None
    last_reading: datetime | None
    battery: float | None
    battery_at: datetime | None
    connected: bool | None = None


def _device_row(row: tuple[Any, ...]) -> DeviceRow:
    """A ``DeviceRow`` from ``patient_devices``' columns: the battery of the newer of reading and status."""
    battery, battery_at = row[5], row[6]
    status_battery, status_at = row[7], row[8]
    if status_battery is not None and (battery_at is None or status_at >= battery_at):
        battery, battery_at = float(status_battery), status_at
    return DeviceRow(row[0], row[1], row[2], row[3], row[4], battery, battery_at, row[9])


def patient_devices(conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str) -> list[DeviceRow]:
    """The patient's registered devices and any other device their readings name, by kind then id."""
    query = sql.SQL(
        "WITH {pt},"
        " seen AS (SELECT o.device_id, max(o.hub_id) AS hub_id, max(o.effective) AS last_reading"
        "  FROM pt JOIN observations o ON o.municipality_id = pt.municipality_id AND o.patient_id = pt.id"
        "  GROUP BY o.device_id),"
        " registered AS (SELECT d.id, d.kind, d.hub_id, d.address"
        "  FROM pt JOIN devices d ON d.municipality_id = pt.municipality_id AND d.patient_id = pt.id)"
        " SELECT coalesce(r.id, s.device_id) AS id, r.kind, coalesce(r.hub_id, s.hub_id), r.address,"
        " s.last_reading, b.value, b.effective, st.battery, st.received_at, st.connected"
        " FROM registered r FULL JOIN seen s ON s.device_id = r.id CROSS JOIN pt"
        " LEFT JOIN LATERAL (SELECT coalesce(o.canonical_value, o.value) AS value, o.effective"
        "  FROM observations o WHERE o.municipality_id = pt.municipality_id AND o.patient_id = pt.id"
        "  AND o.kind = %s AND o.device_id = coalesce(r.id, s.device_id) AND o.value IS NOT NULL"
        "  ORDER BY o.effective DESC LIMIT 1) b ON true"
        " LEFT JOIN LATERAL (SELECT sd.battery, hs.received_at, sd.connected AND hs.online AS connected"
        "  FROM hub_status_devices sd JOIN hub_status hs ON hs.hub_id = sd.hub_id"
        "  WHERE hs.municipality_id = pt.municipality_id AND sd.device_id = r.id AND sd.hub_id = r.hub_id) st"
        "  ON true"
        " ORDER BY r.kind NULLS LAST, 1"
    ).format(pt=_scoped_patient(viewer))
    return [_device_row(row) for row in conn.execute(query, (patient_id, BATTERY_LEVEL)).fetchall()]


@dataclass(frozen=True, slots=True)
class HubRow:
    """A hub of the patient and its last contact (None: never): the newer of the newest reading it
    delivered and its newest live online status (migration 0012)."""

    id: str
    enrolled_at: datetime | None
    last_contact: datetime | None


def patient_hubs(conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str) -> list[HubRow]:
    """The patient's hubs (enrolled, or named by their readings), with their last contact."""
    query = sql.SQL(
        "WITH {pt},"
        " seen AS (SELECT o.hub_id, max(o.received_at) AS last_contact"
        "  FROM pt JOIN observations o ON o.municipality_id = pt.municipality_id AND o.patient_id = pt.id"
        "  GROUP BY o.hub_id),"
        " enrolled AS (SELECT h.id, h.enrolled_at, hs.online_at"
        "  FROM pt JOIN hubs h ON h.municipality_id = pt.municipality_id AND h.patient_id = pt.id"
        "  LEFT JOIN hub_status hs ON hs.hub_id = h.id AND hs.municipality_id = h.municipality_id)"
        " SELECT coalesce(e.id, s.hub_id), e.enrolled_at, greatest(s.last_contact, e.online_at)"
        " FROM enrolled e FULL JOIN seen s ON s.hub_id = e.id ORDER BY 1"
    ).format(pt=_scoped_patient(viewer))
    return [HubRow(*row) for row in conn.execute(query, (patient_id,)).fetchall()]
