"""The web API's SQL: the reads its pages and FHIR endpoints need, the acknowledgement, and the audit log.

Every query takes the user's municipality and filters on it, so a user can never read or change another
municipality's rows (a patient of another municipality simply is not found). Results come back as frozen
dataclasses or stored JSON; presentation is left to ``presenters.py`` and FHIR shaping to
``fhir_model.py``. The ingest and scoring writes belong to ``gateway.store``; this module only reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from gateway.api.auth import User
from gateway.api.fhir_search import Reference, Search, SearchValue, Token

Conn = psycopg.Connection[Any]

# FHIR's mark for test data (notes/terminology.md): the demo's synthetic resources carry it.
_HTEST = Jsonb([{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST"}])
# The synthetic cohort (models.cohort.synthetic) names every patient "Synthetic patient N".
SYNTHETIC_NAME_PREFIX = "Synthetic patient"
_SYNTHETIC_NAME = sql.SQL("starts_with(p.name, {})").format(sql.Literal(SYNTHETIC_NAME_PREFIX))


def _synthetic(alias: str) -> sql.Composable:
    """SQL: whether the stored resource of ``alias`` is marked as test data (meta.security or meta.tag)."""
    meta = sql.SQL("{}.resource -> 'meta'").format(sql.Identifier(alias))
    return sql.SQL("coalesce({m} -> 'security' @> {t} OR {m} -> 'tag' @> {t}, false)").format(
        m=meta, t=sql.Literal(_HTEST)
    )


@dataclass(frozen=True, slots=True)
class Vital:
    """A value the worklist shows: the newest non-empty one among ``kinds`` (or a panel's component)."""

    key: str
    kinds: tuple[str, ...]
    component: str | None = None
    unit: str | None = None  # used when the row has none (panel components)


VITALS: tuple[Vital, ...] = (
    Vital("spo2", ("spo2",)),
    Vital("pulse", ("pulse-rate-oximeter", "pulse-rate-cuff", "heart-rate")),
    Vital("systolic", ("blood-pressure",), component="systolic", unit="mm[Hg]"),
    Vital("temperature", ("body-temperature",)),
    Vital("weight", ("body-weight",)),
)


@dataclass(frozen=True, slots=True)
class Measured:
    """A number with its UCUM unit and the time it was measured."""

    value: float
    unit: str | None
    effective: datetime


@dataclass(frozen=True, slots=True)
class OpenAlert:
    id: int
    severity: str
    reason: str
    raised_at: datetime


@dataclass(frozen=True, slots=True)
class WorklistRow:
    """One patient on the nurse's worklist, with their latest NEWS2, newest values and open alert."""

    patient_id: str
    name: str
    conditions: tuple[str, ...]
    score: float | None
    band: str | None
    detail: Mapping[str, Any] | None
    score_as_of: datetime | None
    synthetic: bool
    alert: OpenAlert | None
    newest_reading: datetime | None
    vitals: Mapping[str, Measured]


def _component_value(component: str) -> sql.Composable:
    """SQL: a panel component as a number, stored either as ``{"systolic": 120}`` or ``{"value": 120}``."""
    c = sql.Literal(component)
    return sql.SQL(
        "coalesce(CASE WHEN jsonb_typeof(o.components -> {c}) = 'number'"
        " THEN (o.components ->> {c})::float8 END,"
        " CASE WHEN jsonb_typeof(o.components -> {c} -> 'value') = 'number'"
        " THEN (o.components -> {c} ->> 'value')::float8 END)"
    ).format(c=c)


def _vital_join(vital: Vital) -> sql.Composable:
    """SQL: a LATERAL join giving the newest value of ``vital`` (one index probe per kind)."""
    value = sql.SQL("o.value") if vital.component is None else _component_value(vital.component)
    unit = sql.SQL("coalesce(o.unit, {})").format(sql.Literal(vital.unit))
    return sql.SQL(
        "LEFT JOIN LATERAL (SELECT x.value, x.unit, x.effective"
        " FROM unnest({kinds}::text[]) AS k(kind) CROSS JOIN LATERAL ("
        "  SELECT {value} AS value, {unit} AS unit, o.effective FROM observations o"
        "  WHERE o.municipality_id = p.municipality_id AND o.patient_id = p.id AND o.kind = k.kind"
        "  AND {value} IS NOT NULL ORDER BY o.effective DESC LIMIT 1) x"
        " ORDER BY x.effective DESC LIMIT 1) {alias} ON true"
    ).format(
        kinds=sql.Literal(list(vital.kinds)), value=value, unit=unit, alias=sql.Identifier(f"v_{vital.key}")
    )


def worklist(conn: Conn, municipality_id: str) -> list[WorklistRow]:
    """The municipality's patients, highest latest NEWS2 first; ties by newest open alert, then name."""
    vital_columns = sql.SQL(", ").join(
        sql.SQL("{a}.value AS {v}, {a}.unit AS {u}, {a}.effective AS {e}").format(
            a=sql.Identifier(f"v_{v.key}"),
            v=sql.Identifier(f"{v.key}_value"),
            u=sql.Identifier(f"{v.key}_unit"),
            e=sql.Identifier(f"{v.key}_effective"),
        )
        for v in VITALS
    )
    query = sql.SQL(
        "SELECT p.id, p.name, p.conditions, s.score, s.band, s.detail, s.as_of,"
        " s.synthetic OR {p_synth} AS s_synth,"
        " a.id AS alert_id, a.severity, a.reason, a.raised_at, n.effective AS newest, n.synthetic AS n_synth,"
        " {vital_columns}"
        " FROM patients p"
        " LEFT JOIN LATERAL (SELECT score, band, detail, as_of, {s_synth} AS synthetic FROM scores s"
        "  WHERE s.municipality_id = p.municipality_id AND s.patient_id = p.id AND s.method = 'news2'"
        "  ORDER BY s.computed_at DESC, s.id DESC LIMIT 1) s ON true"
        " LEFT JOIN LATERAL (SELECT id, severity, reason, raised_at FROM alerts"
        "  WHERE municipality_id = p.municipality_id AND patient_id = p.id AND status = 'open'"
        "  ORDER BY raised_at DESC, id DESC LIMIT 1) a ON true"
        " LEFT JOIN LATERAL (SELECT n.effective, {n_synth} AS synthetic FROM observations n"
        "  WHERE n.municipality_id = p.municipality_id AND n.patient_id = p.id"
        "  ORDER BY n.effective DESC LIMIT 1) n ON true"
        " {vital_joins}"
        " WHERE p.municipality_id = %s"
        " ORDER BY s.score DESC NULLS LAST, a.raised_at DESC NULLS LAST, p.name, p.id"
    ).format(
        vital_columns=vital_columns,
        p_synth=_SYNTHETIC_NAME,
        s_synth=_synthetic("s"),
        n_synth=_synthetic("n"),
        vital_joins=sql.SQL(" ").join(_vital_join(v) for v in VITALS),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, (municipality_id,)).fetchall()
    return [_worklist_row(row) for row in rows]


def _worklist_row(row: Mapping[str, Any]) -> WorklistRow:
    vitals = {
        v.key: Measured(row[f"{v.key}_value"], row[f"{v.key}_unit"], row[f"{v.key}_effective"])
        for v in VITALS
        if row[f"{v.key}_value"] is not None
    }
    alert = None
    if row["alert_id"] is not None:
        alert = OpenAlert(row["alert_id"], row["severity"], row["reason"], row["raised_at"])
    return WorklistRow(
        patient_id=row["id"],
        name=row["name"],
        conditions=tuple(row["conditions"]),
        score=row["score"],
        band=row["band"],
        detail=row["detail"],
        score_as_of=row["as_of"],
        synthetic=bool(row["s_synth"]) or bool(row["n_synth"]),
        alert=alert,
        newest_reading=row["newest"],
        vitals=vitals,
    )


@dataclass(frozen=True, slots=True)
class PatientRow:
    id: str
    name: str
    birth_date: date | None
    conditions: tuple[str, ...]
    spo2_scale2: bool
    municipality_name: str
    synthetic: bool


def patient(conn: Conn, municipality_id: str, patient_id: str) -> PatientRow | None:
    """The patient when they belong to the municipality, else None."""
    query = sql.SQL(
        "SELECT p.id, p.name, p.birth_date, p.conditions, p.spo2_scale2, m.name,"
        " {p_synth} OR EXISTS (SELECT 1 FROM (SELECT o.resource FROM observations o"
        "  WHERE o.municipality_id = p.municipality_id AND o.patient_id = p.id"
        "  ORDER BY o.effective DESC LIMIT 1) o WHERE {o_synth})"
        " OR EXISTS (SELECT 1 FROM (SELECT s.resource FROM scores s"
        "  WHERE s.municipality_id = p.municipality_id AND s.patient_id = p.id"
        "  ORDER BY s.computed_at DESC LIMIT 1) s WHERE {s_synth})"
        " FROM patients p JOIN municipalities m ON m.id = p.municipality_id"
        " WHERE p.municipality_id = %s AND p.id = %s"
    ).format(p_synth=_SYNTHETIC_NAME, o_synth=_synthetic("o"), s_synth=_synthetic("s"))
    row = conn.execute(query, (municipality_id, patient_id)).fetchone()
    if row is None:
        return None
    return PatientRow(row[0], row[1], row[2], tuple(row[3]), row[4], row[5], bool(row[6]))


@dataclass(frozen=True, slots=True)
class ReadingRow:
    effective: datetime
    kind: str
    value: float | None
    unit: str | None
    components: Mapping[str, Any] | None
    absent_reason: str | None
    synthetic: bool


def recent_readings(conn: Conn, municipality_id: str, patient_id: str, limit: int = 50) -> list[ReadingRow]:
    """The patient's newest readings, newest first."""
    query = sql.SQL(
        "SELECT o.effective, o.kind, o.value, o.unit, o.components,"
        " o.resource -> 'dataAbsentReason' -> 'coding' -> 0 ->> 'code', {synth}"
        " FROM observations o WHERE o.municipality_id = %s AND o.patient_id = %s"
        " ORDER BY o.effective DESC, o.identifier DESC LIMIT %s"
    ).format(synth=_synthetic("o"))
    rows = conn.execute(query, (municipality_id, patient_id, limit)).fetchall()
    return [ReadingRow(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class ScoreRow:
    id: int
    computed_at: datetime
    as_of: datetime
    method: str
    score: float
    band: str
    detail: Mapping[str, Any]


def score_history(conn: Conn, municipality_id: str, patient_id: str, limit: int = 30) -> list[ScoreRow]:
    """The patient's newest scores, newest first."""
    rows = conn.execute(
        "SELECT id, computed_at, as_of, method, score, band, detail FROM scores"
        " WHERE municipality_id = %s AND patient_id = %s ORDER BY computed_at DESC, id DESC LIMIT %s",
        (municipality_id, patient_id, limit),
    ).fetchall()
    return [ScoreRow(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    raised_at: datetime
    as_of: datetime
    severity: str
    reason: str
    status: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None


def patient_alerts(conn: Conn, municipality_id: str, patient_id: str, limit: int = 30) -> list[AlertRow]:
    """The patient's alerts, open ones first, then newest first."""
    rows = conn.execute(
        "SELECT id, raised_at, as_of, severity, reason, status, acknowledged_by, acknowledged_at FROM alerts"
        " WHERE municipality_id = %s AND patient_id = %s"
        " ORDER BY status = 'open' DESC, raised_at DESC, id DESC LIMIT %s",
        (municipality_id, patient_id, limit),
    ).fetchall()
    return [AlertRow(*row) for row in rows]


def record_audit(
    conn: Conn, user: User, action: str, patient_ids: Iterable[str | None], detail: str | None = None
) -> None:
    """One audit_log row per patient whose data the user saw or changed (None: no single patient)."""
    ids = list(dict.fromkeys(patient_ids)) or [None]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO audit_log (username, municipality_id, action, patient_id, detail)"
            " VALUES (%s, %s, %s, %s, %s)",
            [(user.username, user.municipality_id, action, pid, detail) for pid in ids],
        )


def acknowledge_alert(conn: Conn, user: User, alert_id: int) -> str | None:
    """Acknowledge an alert of the user's municipality and audit it, atomically; return its patient.

    None when there is no such alert in the municipality. Acknowledging an acknowledged alert changes
    nothing (the first acknowledgement is kept) but is still audited.
    """
    with conn.transaction():
        row = conn.execute(
            "UPDATE alerts SET status = 'acknowledged', acknowledged_by = %s, acknowledged_at = now()"
            " WHERE municipality_id = %s AND id = %s AND status = 'open' RETURNING patient_id",
            (user.username, user.municipality_id, alert_id),
        ).fetchone()
        if row is None:
            row = conn.execute(
                "SELECT patient_id FROM alerts WHERE municipality_id = %s AND id = %s",
                (user.municipality_id, alert_id),
            ).fetchone()
            if row is None:
                return None
        patient_id: str = row[0]
        record_audit(conn, user, "acknowledge-alert", [patient_id], f"alert {alert_id}")
    return patient_id


# --- FHIR reads ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredResource:
    """A stored FHIR resource with its patient and its keyset position (time, key)."""

    patient_id: str
    resource: dict[str, Any]
    at: datetime
    key: str


# Per resource type: the column each parameter type filters on (a token matches resource.code.coding).
_COLUMNS: Mapping[str, Mapping[str, str]] = {
    "Observation": {"patient": "patient_id", "date": "effective"},
    "RiskAssessment": {"patient": "patient_id"},
}


def _alternative(resource_type: str, value: SearchValue) -> sql.Composable:
    columns = _COLUMNS[resource_type]
    if isinstance(value, Reference):
        return sql.SQL("{} = {}").format(sql.Identifier(columns["patient"]), sql.Literal(value.id))
    if isinstance(value, Token):
        coding = {"code": value.code}
        if value.system is not None:
            coding["system"] = value.system
        return sql.SQL("resource -> 'code' -> 'coding' @> {}").format(sql.Literal(Jsonb([coding])))
    bounds: list[sql.Composable] = []
    column = sql.Identifier(columns["date"])
    if value.lower is not None:
        bounds.append(sql.SQL("{} >= {}").format(column, sql.Literal(value.lower)))
    if value.upper is not None:
        bounds.append(sql.SQL("{} < {}").format(column, sql.Literal(value.upper)))
    return sql.SQL(" AND ").join(bounds) if bounds else sql.SQL("true")


def _criteria(search: Search) -> sql.Composable:
    parts = [
        sql.SQL("({})").format(
            sql.SQL(" OR ").join(
                sql.SQL("({})").format(_alternative(search.resource_type, alt)) for alt in c.alternatives
            )
        )
        for c in search.criteria
    ]
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


def search_observations(
    conn: Conn, municipality_id: str, search: Search
) -> tuple[list[StoredResource], bool]:
    """A page of the municipality's Observations matching ``search``, in its order; and whether more exist.

    Keyset paging on (effective, device, identifier) in either direction: a page starts strictly after
    the cursor's row, so rows are neither skipped nor repeated, even when several share a time (or, from
    different devices, an identifier). A row's key is ``{device_id}/{identifier}`` (a device id is a
    FHIR id, without '/'): ``reading_of_key`` splits it again.
    """
    after: sql.Composable = sql.SQL("true")
    if search.cursor is not None:
        device_id, identifier = reading_of_key(search.cursor.key)
        after = sql.SQL("(effective, device_id, identifier) {} ({}, {}, {})").format(
            sql.SQL("<" if search.descending else ">"),
            sql.Literal(search.cursor.at),
            sql.Literal(device_id),
            sql.Literal(identifier),
        )
    direction = sql.SQL("DESC" if search.descending else "ASC")
    query = sql.SQL(
        "SELECT patient_id, resource, effective, device_id || '/' || identifier FROM observations"
        " WHERE municipality_id = %s AND {criteria} AND {after}"
        " ORDER BY effective {direction}, device_id {direction}, identifier {direction} LIMIT %s"
    ).format(criteria=_criteria(search), after=after, direction=direction)
    rows = conn.execute(query, (municipality_id, search.count + 1)).fetchall()
    return [StoredResource(*row) for row in rows[: search.count]], len(rows) > search.count


def reading_of_key(key: str) -> tuple[str, str]:
    """The device id and identifier of an Observation row's key (``search_observations``)."""
    device_id, _, identifier = key.partition("/")
    return device_id, identifier


def observation_by_id(conn: Conn, municipality_id: str, observation_id: str) -> StoredResource | None:
    """The municipality's Observation whose id (``fhir_model.observation_id``) is ``observation_id``.

    Two index probes: ``observation_keys`` by id (scoped by municipality) gives the reading's device,
    identifier and effective time; ``observations`` by its primary key (municipality, device,
    identifier, effective) with those as constants, so the planner reads only the one partition (or
    chunk) of that time.
    """
    key = conn.execute(
        "SELECT device_id, identifier, effective FROM observation_keys"
        " WHERE id = %s AND municipality_id = %s",
        (observation_id.lower(), municipality_id),
    ).fetchone()
    if key is None:
        return None
    row = conn.execute(
        "SELECT patient_id, resource, effective, identifier FROM observations"
        " WHERE municipality_id = %s AND device_id = %s AND identifier = %s AND effective = %s",
        (municipality_id, key[0], key[1], key[2]),
    ).fetchone()
    return None if row is None else StoredResource(*row)


def search_risk_assessments(
    conn: Conn, municipality_id: str, search: Search
) -> tuple[list[StoredResource], bool]:
    """One page of the municipality's stored RiskAssessments, newest first; and whether more exist.

    The key of a RiskAssessment (its FHIR id and its cursor key) is the score's random ``public_id``,
    never ``scores.id``: that one sequence serves every municipality, so its gaps would show another
    municipality's activity. ``fhir_search`` checks that a cursor's key is a uuid.
    """
    after: sql.Composable = sql.SQL("true")
    if search.cursor is not None:
        after = sql.SQL("(computed_at, public_id) < ({}, {}::uuid)").format(
            sql.Literal(search.cursor.at), sql.Literal(search.cursor.key)
        )
    query = sql.SQL(
        "SELECT patient_id, resource, computed_at, public_id::text FROM scores"
        " WHERE municipality_id = %s AND {criteria} AND {after}"
        " ORDER BY computed_at DESC, public_id DESC LIMIT %s"
    ).format(criteria=_criteria(search), after=after)
    rows = conn.execute(query, (municipality_id, search.count + 1)).fetchall()
    return [StoredResource(*row) for row in rows[: search.count]], len(rows) > search.count


def municipality_name(conn: Conn, municipality_id: str) -> str:
    """The municipality's name (its id when it has no row, which the schema does not allow)."""
    row = conn.execute("SELECT name FROM municipalities WHERE id = %s", (municipality_id,)).fetchone()
    return municipality_id if row is None else str(row[0])


def patient_ids(rows: Sequence[StoredResource]) -> list[str]:
    """The distinct patients of some stored resources, in order of first appearance."""
    return list(dict.fromkeys(row.patient_id for row in rows))


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """An enrolled device: its hub, the patient it is assigned to, its kind and Bluetooth address."""

    id: str
    hub_id: str
    patient_id: str
    kind: str
    address: str | None


def device(conn: Conn, municipality_id: str, device_id: str) -> DeviceRow | None:
    """The device when it belongs to the municipality, else None."""
    row = conn.execute(
        "SELECT id, hub_id, patient_id, kind, address FROM devices WHERE municipality_id = %s AND id = %s",
        (municipality_id, device_id),
    ).fetchone()
    return None if row is None else DeviceRow(*row)
