"""What the patients sent from home, as the FHIR API reads it: contact requests (Task) and answers to the
daily symptom checks (QuestionnaireResponse), scoped by ``access.patient_scope`` like every read.

Both page on (time, public id), newest first unless ``_sort`` asks for the oldest, keyset-paged as the
alerts are (``alert_fhir_reads``), so the API can merge a page of contact-request Tasks with a page of
alert Tasks under one cursor. A contact request's Task status is ``requested`` (open), ``in-progress``
(taken) or ``completed`` (done); its last change (``_lastUpdated``) is when it was done, taken or
received. The ids are ``public_id`` uuids (migration 0021). Building the resources is
``gateway.api.request_resources``'.
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

from gateway.store import access
from gateway.store.alert_fhir_reads import TASK_STATUS_SYSTEM
from gateway.store.fhir_query import Criterion, Period, Reference, ResourceId, Search, Token
from gateway.store.fhir_reads import Page
from gateway.store.synthetic import patient_enrolled_synthetic

Conn = psycopg.Connection[Any]
QUESTIONNAIRE_RESPONSE = "QuestionnaireResponse"
TASK_STATUS = "CASE c.status WHEN 'open' THEN 'requested' WHEN 'done' THEN 'completed' ELSE c.status END"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A stored contact request with what its served Task says beyond what the hub sent."""

    public_id: str
    patient_id: str
    authored: datetime
    task_status: str  # requested, in-progress, completed
    updated_at: datetime
    owner: str | None  # who took it or finished it (username)
    owner_name: str | None
    synthetic: bool
    resource: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """A stored QuestionnaireResponse."""

    public_id: str
    patient_id: str
    authored: datetime
    received_at: datetime
    synthetic: bool
    resource: dict[str, Any]


# One table per kind: its rows (r.at is the paging time, r.key the public id) and the column each search
# parameter filters on.
_REQUESTS = sql.SQL(
    "(SELECT c.public_id AS key, c.authored AS at, c.patient_id, {status} AS task_status,"
    " greatest(c.received_at, c.taken_at, c.done_at) AS updated_at,"
    " coalesce(c.done_by, c.taken_by) AS owner, u.full_name AS owner_name, {synthetic} AS synthetic,"
    " c.resource FROM contact_requests c"
    " JOIN patients p ON p.municipality_id = c.municipality_id AND p.id = c.patient_id"
    " LEFT JOIN users u ON u.username = coalesce(c.done_by, c.taken_by) WHERE {scope}) r"
)
_RESPONSES = sql.SQL(
    "(SELECT q.public_id AS key, q.authored AS at, q.patient_id, q.received_at, {synthetic} AS synthetic,"
    " q.resource FROM questionnaire_responses q"
    " JOIN patients p ON p.municipality_id = q.municipality_id AND p.id = q.patient_id WHERE {scope}) r"
)
_FILTERS: Mapping[str, Mapping[str, str]] = {
    "Task": {
        "patient": "patient_id",
        "subject": "patient_id",
        "status": "task_status",
        "_id": "key",
        "authored-on": "at",
        "_lastUpdated": "updated_at",
    },
    QUESTIONNAIRE_RESPONSE: {
        "patient": "patient_id",
        "subject": "patient_id",
        "_id": "key",
        "authored": "at",
    },
}


def _rows(resource_type: str, viewer: access.Viewer) -> sql.Composable:
    table = _REQUESTS if resource_type == "Task" else _RESPONSES
    return table.format(
        status=sql.SQL(TASK_STATUS),
        synthetic=patient_enrolled_synthetic("p"),
        scope=access.patient_scope(viewer, "p"),
    )


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _alternative(resource_type: str, name: str, value: object) -> sql.Composable:
    column = sql.Identifier("r", _FILTERS[resource_type][name])
    if isinstance(value, Reference):
        return sql.SQL("{} = {}").format(column, sql.Literal(value.id))
    if isinstance(value, ResourceId):
        wanted = _as_uuid(value.id)
        return sql.SQL("false") if wanted is None else sql.SQL("{} = {}").format(column, sql.Literal(wanted))
    if isinstance(value, Token):
        if value.system not in (None, TASK_STATUS_SYSTEM):
            return sql.SQL("false")
        return sql.SQL("{} = {}").format(column, sql.Literal(value.code))
    assert isinstance(value, Period)
    bounds: list[sql.Composable] = [sql.SQL("true")]
    if value.lower is not None:
        bounds.append(sql.SQL("{} >= {}").format(column, sql.Literal(value.lower)))
    if value.upper is not None:
        bounds.append(sql.SQL("{} < {}").format(column, sql.Literal(value.upper)))
    return sql.SQL(" AND ").join(bounds)


def _criteria(resource_type: str, criteria: Sequence[Criterion]) -> sql.Composable:
    """SQL: every criterion (AND), each any of its alternatives (OR); a parameter this kind lacks
    matches nothing."""
    parts: list[sql.Composable] = [sql.SQL("true")]
    for criterion in criteria:
        if criterion.name not in _FILTERS[resource_type]:
            return sql.SQL("false")
        alternatives = (
            sql.SQL("({})").format(_alternative(resource_type, criterion.name, value))
            for value in criterion.alternatives
        )
        parts.append(sql.SQL("({})").format(sql.SQL(" OR ").join(alternatives)))
    return sql.SQL(" AND ").join(parts)


def _search(conn: Conn, viewer: access.Viewer, search: Search, resource_type: str) -> Page[dict[str, Any]]:
    matches = sql.SQL("FROM {rows} WHERE {criteria}").format(
        rows=_rows(resource_type, viewer), criteria=_criteria(resource_type, search.criteria)
    )
    after: sql.Composable = sql.SQL("true")
    if search.cursor is not None:
        after = sql.SQL("(r.at, r.key) {} ({}, {}::uuid)").format(
            sql.SQL("<" if search.descending else ">"),
            sql.Literal(search.cursor.at),
            sql.Literal(search.cursor.key),
        )
    direction = sql.SQL("DESC" if search.descending else "ASC")
    query = sql.SQL("SELECT r.* {matches} AND {after} ORDER BY r.at {d}, r.key {d} LIMIT %s").format(
        matches=matches, after=after, d=direction
    )
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, (search.count + 1,)).fetchall()
    page = tuple(rows[: search.count])
    has_more = len(rows) > search.count
    total = len(page)
    if search.cursor is not None or has_more:  # a first page that holds everything needs no count
        counted = conn.execute(sql.SQL("SELECT count(*) {}").format(matches)).fetchone()
        total = 0 if counted is None else int(counted[0])
    return Page(page, has_more, total)


def _request(row: Mapping[str, Any]) -> RequestRecord:
    return RequestRecord(
        str(row["key"]),
        row["patient_id"],
        row["at"],
        row["task_status"],
        row["updated_at"],
        row["owner"],
        row["owner_name"],
        bool(row["synthetic"]),
        row["resource"],
    )


def _response(row: Mapping[str, Any]) -> ResponseRecord:
    return ResponseRecord(
        str(row["key"]),
        row["patient_id"],
        row["at"],
        row["received_at"],
        bool(row["synthetic"]),
        row["resource"],
    )


def search_contact_requests(conn: Conn, viewer: access.Viewer, search: Search) -> Page[RequestRecord]:
    """A page of the contact requests ``viewer`` may see matching ``search`` (a Task search)."""
    page = _search(conn, viewer, search, "Task")
    return Page(tuple(_request(row) for row in page.rows), page.has_more, page.total)


def search_responses(conn: Conn, viewer: access.Viewer, search: Search) -> Page[ResponseRecord]:
    """A page of the QuestionnaireResponses ``viewer`` may see matching ``search``."""
    page = _search(conn, viewer, search, QUESTIONNAIRE_RESPONSE)
    return Page(tuple(_response(row) for row in page.rows), page.has_more, page.total)


def _by_id(conn: Conn, viewer: access.Viewer, resource_type: str, resource_id: str) -> dict[str, Any] | None:
    wanted = _as_uuid(resource_id)
    if wanted is None:
        return None
    query = sql.SQL("SELECT r.* FROM {rows} WHERE r.key = %s").format(rows=_rows(resource_type, viewer))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (wanted,)).fetchone()


def contact_request_by_id(conn: Conn, viewer: access.Viewer, resource_id: str) -> RequestRecord | None:
    """The contact request whose Task has the id ``resource_id``, when ``viewer`` may see it."""
    row = _by_id(conn, viewer, "Task", resource_id)
    return None if row is None else _request(row)


def response_by_id(conn: Conn, viewer: access.Viewer, resource_id: str) -> ResponseRecord | None:
    """The QuestionnaireResponse with the id ``resource_id``, when ``viewer`` may see it."""
    row = _by_id(conn, viewer, QUESTIONNAIRE_RESPONSE, resource_id)
    return None if row is None else _response(row)
