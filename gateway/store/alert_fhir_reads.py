"""The alerts as the FHIR API serves them (a Flag, a Task and a Communication per alert): searches and
reads by id, through ``access.patient_scope``.

Each alert is one ``AlertRecord``: the alert's lifecycle columns (migration 0013), its patient's care
team and GP, the people who acted on it (with their names), the RiskAssessment it stood on, and what
became of the e-mails to the GP (``alert_deliveries``, audience ``gp``). The FHIR status of each
resource is derived here, in SQL, once (``FLAG_STATUS``, ``TASK_STATUS``, ``COMMUNICATION_STATUS``): a
search by ``status`` and the resource served then cannot disagree. So is the Communication's id
(``communication_id``), a name-based uuid of the alert's ``public_id``.

A search takes the plain values of ``gateway.store.fhir_query``; ``FILTERS`` says which column each
search parameter of each type reads (``gateway.api.fhir_search`` declares the same names; a test keeps
the two equal). Paging is keyset on (``raised_at``, ``public_id``), newest first unless the search sorts
oldest first. A Communication exists only for an alert whose patient has a GP. An alert of a patient
outside the viewer's assignment does not exist here. Building the resources is left to ``gateway.api``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gateway.store.access import Viewer, patient_scope
from gateway.store.fhir_query import Criterion, Period, Reference, ResourceId, Search, SearchValue, Token
from gateway.store.fhir_reads import Page
from gateway.store.synthetic import patient_enrolled_synthetic

Conn = psycopg.Connection[Any]

FLAG = "Flag"
TASK = "Task"
COMMUNICATION = "Communication"
RESOURCE_TYPES = (FLAG, TASK, COMMUNICATION)

# The name space of the Communications' ids: uuid3(COMMUNICATION_NAMESPACE, str(alerts.public_id)).
# RFC 4122's name-based uuid with MD5 (version 3), not SHA-1 (version 5): PostgreSQL computes MD5 by
# itself and SHA-1 only with pgcrypto, which homewatch does not install; the id is a name, not a secret.
COMMUNICATION_NAMESPACE = uuid.UUID("4f0c2a4e-6a57-4c55-9d1c-3a0e2f6b9d71")

# The status each resource is served with (FHIR's code systems flag-status, task-status, event-status).
FLAG_STATUS_SYSTEM = "http://hl7.org/fhir/flag-status"
TASK_STATUS_SYSTEM = "http://hl7.org/fhir/task-status"
COMMUNICATION_STATUS_SYSTEM = "http://hl7.org/fhir/event-status"
FLAG_STATUS = "CASE WHEN a.status = 'resolved' THEN 'inactive' ELSE 'active' END"
# FHIR's workflow: requested (nobody took it yet; a worse alert is requested again), accepted (someone
# acknowledged it), in-progress (acknowledged and given to a named nurse), on-hold (snoozed), completed.
TASK_STATUS = (
    "CASE a.status WHEN 'resolved' THEN 'completed' WHEN 'snoozed' THEN 'on-hold'"
    " WHEN 'acknowledged' THEN CASE WHEN a.assigned_to IS NULL THEN 'accepted' ELSE 'in-progress' END"
    " ELSE 'requested' END"
)
# An e-mail on its way (a first one, or one telling of a worse alert) is in progress; else one that was
# sent completes it; else (every one failed, or none was queued) it was not done.
COMMUNICATION_STATUS = (
    "CASE WHEN g.pending THEN 'in-progress' WHEN g.sent_at IS NOT NULL THEN 'completed' ELSE 'not-done' END"
)


@dataclass(frozen=True, slots=True)
class Person:
    """A user by username, with her full name when ``users`` has one."""

    username: str
    name: str | None


@dataclass(frozen=True, slots=True)
class GpEmails:
    """The e-mails that told the patient's GP of the alert: how many were queued, whether any failed,
    when one was last sent (None: none yet), and the alert event the last one tells of (None: none)."""

    queued: int
    failed: bool
    last_sent_at: datetime | None
    event_id: int | None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert with what its Flag, Task and Communication show."""

    id: int  # alerts.id: internal, never a FHIR id (one sequence counts every municipality's alerts)
    public_id: str
    communication_id: str
    municipality_id: str
    patient_id: str
    kind: str
    key: str
    severity: str
    reason: str
    status: str  # open, acknowledged, snoozed, resolved
    flag_status: str
    task_status: str
    communication_status: str
    raised_at: datetime
    updated_at: datetime
    acknowledged_by: Person | None
    acknowledged_at: datetime | None
    acknowledgement_note: str | None
    assigned_to: Person | None
    snoozed_until: datetime | None
    snooze_reason: str | None
    resolved_by: Person | None
    resolved_at: datetime | None
    outcome: str | None
    resolution_note: str | None
    care_team_id: str
    care_team_name: str
    gp: Person | None
    risk_assessment_id: str | None  # the public id of the score the alert was raised on
    gp_emails: GpEmails
    synthetic: bool  # the patient was enrolled as synthetic


def communication_id(public_id: str) -> str:
    """The id of the Communication of the alert ``public_id`` (what ``_COMMUNICATION_ID`` computes)."""
    return str(uuid.uuid3(COMMUNICATION_NAMESPACE, str(uuid.UUID(public_id))))


# RFC 4122 4.3: MD5 of the name space's 16 bytes and the name; byte 6 carries version 3, byte 8 the variant.
_COMMUNICATION_ID = sql.SQL(
    "encode(set_byte(set_byte(n.h, 6, (get_byte(n.h, 6) & 15) | 48), 8, (get_byte(n.h, 8) & 63) | 128),"
    " 'hex')::uuid"
)
_NAME_HASH = sql.SQL(
    "LEFT JOIN LATERAL (SELECT decode(md5({ns} || convert_to(a.public_id::text, 'UTF8')), 'hex') AS h) n"
    " ON true"
).format(ns=sql.Literal(COMMUNICATION_NAMESPACE.bytes))


def _person_columns(column: str, alias: str) -> str:
    """A user's username (as ``alias``) and full name (as ``alias_name``)."""
    return (
        f"{column} AS {alias}, (SELECT u.full_name FROM users u WHERE u.username = {column}) AS {alias}_name"
    )


# The columns of ``_ROWS``' subquery ``r``, named as ``_record`` reads them (a person: username and name).
_COLUMNS = ", ".join(
    [
        "a.id, a.public_id",
        "{communication_id} AS communication_id",
        "a.municipality_id, a.patient_id, a.kind, a.key, a.severity, a.reason, a.status",
        f"{FLAG_STATUS} AS flag_status",
        f"{TASK_STATUS} AS task_status",
        f"{COMMUNICATION_STATUS} AS communication_status",
        "a.raised_at, a.updated_at",
        _person_columns("a.acknowledged_by", "acknowledged_by"),
        "a.acknowledged_at, a.acknowledgement_note",
        _person_columns("a.assigned_to", "assigned_to"),
        "a.snoozed_until, a.snooze_reason",
        _person_columns("a.resolved_by", "resolved_by"),
        "a.resolved_at, a.outcome, a.resolution_note",
        "p.care_team_id, ct.name AS care_team_name",
        _person_columns("p.gp_username", "gp"),
        "s.public_id::text AS risk_assessment_id",
        "g.queued, g.failed, g.sent_at, g.event_id",
        "{synthetic} AS synthetic",
    ]
)
# The viewer's alerts, each with its patient, care team, score and e-mails to the GP.
_ROWS = sql.SQL(
    "(SELECT " + _COLUMNS + " FROM alerts a"
    " JOIN patients p ON p.municipality_id = a.municipality_id AND p.id = a.patient_id"
    " JOIN care_teams ct ON ct.municipality_id = p.municipality_id AND ct.id = p.care_team_id"
    " LEFT JOIN scores s ON s.id = a.score_id"
    " LEFT JOIN LATERAL (SELECT count(*) AS queued,"
    "  coalesce(bool_or(d.status = 'pending'), false) AS pending,"
    "  coalesce(bool_or(d.status = 'failed'), false) AS failed,"
    "  max(d.sent_at) FILTER (WHERE d.status = 'sent') AS sent_at,"
    "  (array_agg(d.event_id ORDER BY d.id DESC))[1] AS event_id"
    "  FROM alert_deliveries d WHERE d.alert_id = a.id AND d.audience = 'gp' AND d.channel = 'email') g"
    " ON true {name_hash} WHERE {scope}) r"
)

# Per resource type, the column of ``r`` each search parameter reads (``fhir_search.SEARCH_PARAMS``).
_PATIENT = {"patient": "patient_id", "subject": "patient_id"}
FILTERS: Mapping[str, Mapping[str, str]] = {
    FLAG: {**_PATIENT, "status": "flag_status", "_id": "public_id", "date": "raised_at"},
    TASK: {
        **_PATIENT,
        "status": "task_status",
        "_id": "public_id",
        "authored-on": "raised_at",
        "_lastUpdated": "updated_at",
    },
    COMMUNICATION: {
        **_PATIENT,
        "status": "communication_status",
        "_id": "communication_id",
        "sent": "sent_at",
    },
}
_STATUS_SYSTEMS = {
    FLAG: FLAG_STATUS_SYSTEM,
    TASK: TASK_STATUS_SYSTEM,
    COMMUNICATION: COMMUNICATION_STATUS_SYSTEM,
}


def _rows(viewer: Viewer) -> sql.Composable:
    return _ROWS.format(
        communication_id=_COMMUNICATION_ID,
        synthetic=patient_enrolled_synthetic("p"),
        name_hash=_NAME_HASH,
        scope=patient_scope(viewer),
    )


def _exists(resource_type: str) -> sql.Composable:
    """SQL: whether a row of ``r`` has a resource of ``resource_type`` (a Communication needs a GP)."""
    return sql.SQL("r.gp IS NOT NULL" if resource_type == COMMUNICATION else "true")


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None  # no alert has it


def _alternative(resource_type: str, name: str, value: SearchValue) -> sql.Composable:
    column = sql.Identifier("r", FILTERS[resource_type][name])
    if isinstance(value, Reference):
        return sql.SQL("{} = {}").format(column, sql.Literal(value.id))
    if isinstance(value, ResourceId):
        wanted = _as_uuid(value.id)
        # The ids are uuids: compared as such, so that case and a uuid's other spellings do not matter.
        return sql.SQL("false") if wanted is None else sql.SQL("{} = {}").format(column, sql.Literal(wanted))
    if isinstance(value, Token):
        if value.system not in (None, _STATUS_SYSTEMS[resource_type]):
            return sql.SQL("false")
        return sql.SQL("{} = {}").format(column, sql.Literal(value.code))
    assert isinstance(value, Period)
    bounds: list[sql.Composable] = [sql.SQL("{} IS NOT NULL").format(column)]
    if value.lower is not None:
        bounds.append(sql.SQL("{} >= {}").format(column, sql.Literal(value.lower)))
    if value.upper is not None:
        bounds.append(sql.SQL("{} < {}").format(column, sql.Literal(value.upper)))
    return sql.SQL(" AND ").join(bounds)


def _criteria(resource_type: str, criteria: Sequence[Criterion]) -> sql.Composable:
    """SQL: every criterion (AND), each any of its alternatives (OR)."""
    parts: list[sql.Composable] = [_exists(resource_type)]
    for criterion in criteria:
        alternatives = (
            sql.SQL("({})").format(_alternative(resource_type, criterion.name, value))
            for value in criterion.alternatives
        )
        parts.append(sql.SQL("({})").format(sql.SQL(" OR ").join(alternatives)))
    return sql.SQL(" AND ").join(parts)


def _person(row: Mapping[str, Any], column: str) -> Person | None:
    username = row[column]
    return None if username is None else Person(username, row[f"{column}_name"])


def _record(row: Mapping[str, Any]) -> AlertRecord:
    """An ``AlertRecord`` from a row of ``r`` by its column names."""
    return AlertRecord(
        id=int(row["id"]),
        public_id=str(row["public_id"]),
        communication_id=str(row["communication_id"]),
        municipality_id=row["municipality_id"],
        patient_id=row["patient_id"],
        kind=row["kind"],
        key=row["key"],
        severity=row["severity"],
        reason=row["reason"],
        status=row["status"],
        flag_status=row["flag_status"],
        task_status=row["task_status"],
        communication_status=row["communication_status"],
        raised_at=row["raised_at"],
        updated_at=row["updated_at"],
        acknowledged_by=_person(row, "acknowledged_by"),
        acknowledged_at=row["acknowledged_at"],
        acknowledgement_note=row["acknowledgement_note"],
        assigned_to=_person(row, "assigned_to"),
        snoozed_until=row["snoozed_until"],
        snooze_reason=row["snooze_reason"],
        resolved_by=_person(row, "resolved_by"),
        resolved_at=row["resolved_at"],
        outcome=row["outcome"],
        resolution_note=row["resolution_note"],
        care_team_id=row["care_team_id"],
        care_team_name=row["care_team_name"],
        gp=_person(row, "gp"),
        risk_assessment_id=row["risk_assessment_id"],
        gp_emails=GpEmails(int(row["queued"]), bool(row["failed"]), row["sent_at"], row["event_id"]),
        synthetic=bool(row["synthetic"]),
    )


def search_alerts(conn: Conn, viewer: Viewer, search: Search) -> Page[AlertRecord]:
    """A page of the alerts whose ``search.resource_type`` resource (Flag, Task or Communication)
    ``viewer`` may see and ``search`` matches, newest raised first unless it sorts oldest first."""
    matches = sql.SQL("FROM {rows} WHERE {criteria}").format(
        rows=_rows(viewer), criteria=_criteria(search.resource_type, search.criteria)
    )
    descending = search.descending
    after: sql.Composable = sql.SQL("true")
    if search.cursor is not None:
        after = sql.SQL("(r.raised_at, r.public_id) {} ({}, {}::uuid)").format(
            sql.SQL("<" if descending else ">"), sql.Literal(search.cursor.at), sql.Literal(search.cursor.key)
        )
    direction = sql.SQL("DESC" if descending else "ASC")
    query = sql.SQL(
        "SELECT r.* {matches} AND {after} ORDER BY r.raised_at {d}, r.public_id {d} LIMIT %s"
    ).format(matches=matches, after=after, d=direction)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, (search.count + 1,)).fetchall()
    page = tuple(_record(row) for row in rows[: search.count])
    has_more = len(rows) > search.count
    total = len(page)
    if search.cursor is not None or has_more:  # a first page that holds everything needs no count
        counted = conn.execute(sql.SQL("SELECT count(*) {}").format(matches)).fetchone()
        total = 0 if counted is None else int(counted[0])
    return Page(page, has_more, total)


def alert_by_id(conn: Conn, viewer: Viewer, resource_type: str, resource_id: str) -> AlertRecord | None:
    """The alert whose ``resource_type`` resource has the id ``resource_id`` (a Flag's and a Task's is
    the alert's ``public_id``, a Communication's ``communication_id``), when ``viewer`` may see it."""
    wanted = _as_uuid(resource_id)
    if wanted is None:
        return None
    column = sql.Identifier("r", FILTERS[resource_type]["_id"])
    query = sql.SQL("SELECT r.* FROM {rows} WHERE {exists} AND {column} = %s").format(
        rows=_rows(viewer), exists=_exists(resource_type), column=column
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, (wanted,)).fetchone()
    return None if row is None else _record(row)
