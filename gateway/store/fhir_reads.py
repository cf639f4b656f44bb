"""The FHIR API's reads: searches (a page, whether more exist, and the total) and reads by id.

Every query takes the ``viewer`` and reaches its rows through their patient, filtered by
``access.patient_scope``: a row of a patient outside the viewer's assignment (another care team,
another municipality, not the GP's patient) is, here, a row that does not exist (so neither found, nor
counted in a total). A GP's patients may live in several municipalities, so each row says which one
it is stored under (an Observation's id depends on it). Criteria, order and cursor arrive
as the plain values of ``gateway.store.fhir_query``; parsing them from a query string, and building FHIR
resources and Bundles from the rows, is left to ``gateway.api``. Each row says whether its patient was
enrolled as synthetic, so that the API can label what it serves.

Paging is keyset: a page starts strictly after the cursor's row, in the search's order, so rows are
neither skipped nor repeated while others are added. Observations page on (effective, device,
identifier), RiskAssessments on (computed_at, public_id), Patients on their id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from gateway.store.access import Viewer, patient_scope
from gateway.store.fhir_query import Period, Reference, ResourceId, Search, SearchValue, Token
from gateway.store.patient_views import PatientRow, patient_columns, patient_row
from gateway.store.synthetic import patient_enrolled_synthetic, patient_of_row_synthetic

Conn = psycopg.Connection[Any]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredResource:
    """A stored FHIR resource with its patient, its keyset position (time, key), whether its patient
    was enrolled as synthetic, and the municipality it is stored under."""

    patient_id: str
    resource: dict[str, Any]
    at: datetime
    key: str
    synthetic: bool
    municipality_id: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a search: its rows, whether more follow, and how many match in all (every page)."""

    rows: tuple[T, ...]
    has_more: bool
    total: int


# Per resource type: its table's alias and the column each kind of value filters on (a token matches
# the stored resource's code.coding).
_TABLES: Mapping[str, tuple[str, str]] = {
    "Observation": ("observations", "o"),
    "RiskAssessment": ("scores", "s"),
    "Patient": ("patients", "p"),
}
_COLUMNS: Mapping[str, Mapping[type, str]] = {
    "Observation": {Reference: "patient_id", Period: "effective"},
    "RiskAssessment": {Reference: "patient_id"},
    "Patient": {ResourceId: "id"},
}


def _alternative(resource_type: str, value: SearchValue) -> sql.Composable:
    alias = _TABLES[resource_type][1]
    if isinstance(value, Token):
        coding = {"code": value.code}
        if value.system is not None:
            coding["system"] = value.system
        return sql.SQL("{}.resource -> 'code' -> 'coding' @> {}").format(
            sql.Identifier(alias), sql.Literal(Jsonb([coding]))
        )
    column = sql.Identifier(alias, _COLUMNS[resource_type][type(value)])
    if isinstance(value, Reference | ResourceId):
        return sql.SQL("{} = {}").format(column, sql.Literal(value.id))
    bounds: list[sql.Composable] = []
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


def _with_patient(alias: str) -> sql.Composable:
    """SQL: ``FROM``-clause text joining the patient ``p`` of the rows of ``alias`` (a table with
    ``municipality_id`` and ``patient_id``), for the ``WHERE`` that ``patient_scope`` adds."""
    a = sql.Identifier(alias)
    return sql.SQL(
        "JOIN patients p ON p.municipality_id = {a}.municipality_id AND p.id = {a}.patient_id"
    ).format(a=a)


def _rows_of(viewer: Viewer, resource_type: str) -> sql.Composable:
    """SQL: the rows of ``resource_type`` that ``viewer`` may see, as ``FROM ... WHERE scope`` (the
    patient row is ``p``; a Patient search reads ``patients p`` itself)."""
    table, alias = _TABLES[resource_type]
    joined = sql.SQL("") if alias == "p" else _with_patient(alias)
    return sql.SQL("{table} {alias} {joined} WHERE {scope}").format(
        table=sql.Identifier(table), alias=sql.Identifier(alias), joined=joined, scope=patient_scope(viewer)
    )


def _total(conn: Conn, viewer: Viewer, search: Search) -> int:
    """How many rows the viewer may see match ``search``'s criteria (whatever the page)."""
    query = sql.SQL("SELECT count(*) FROM {rows} AND {c}").format(
        rows=_rows_of(viewer, search.resource_type), c=_criteria(search)
    )
    row = conn.execute(query).fetchone()
    return 0 if row is None else int(row[0])


def _page(conn: Conn, query: sql.Composed, viewer: Viewer, search: Search) -> Page[tuple[Any, ...]]:
    """Run a page query (one row more than the page, to know whether more follow) and count the total."""
    rows = conn.execute(query, (search.count + 1,)).fetchall()
    page = tuple(rows[: search.count])
    has_more = len(rows) > search.count
    # A first page that holds everything needs no count.
    total = len(page) if search.cursor is None and not has_more else _total(conn, viewer, search)
    return Page(page, has_more, total)


def search_observations(conn: Conn, viewer: Viewer, search: Search) -> Page[StoredResource]:
    """A page of the Observations ``viewer`` may see matching ``search``, in its order.

    A row's key is ``{device_id}/{identifier}`` (a device id is a FHIR id, without '/'):
    ``reading_of_key`` splits it again. Rows that share a time (or, from different devices, an
    identifier) are still ordered, so each is returned once.
    """
    after: sql.Composable = sql.SQL("true")
    if search.cursor is not None:
        device_id, identifier = reading_of_key(search.cursor.key)
        after = sql.SQL("(o.effective, o.device_id, o.identifier) {} ({}, {}, {})").format(
            sql.SQL("<" if search.descending else ">"),
            sql.Literal(search.cursor.at),
            sql.Literal(device_id),
            sql.Literal(identifier),
        )
    direction = sql.SQL("DESC" if search.descending else "ASC")
    query = sql.SQL(
        "SELECT o.patient_id, o.resource, o.effective, o.device_id || '/' || o.identifier, {synthetic},"
        " o.municipality_id FROM {rows} AND {criteria} AND {after}"
        " ORDER BY o.effective {direction}, o.device_id {direction}, o.identifier {direction} LIMIT %s"
    ).format(
        synthetic=patient_enrolled_synthetic("p"),
        rows=_rows_of(viewer, "Observation"),
        criteria=_criteria(search),
        after=after,
        direction=direction,
    )
    page = _page(conn, query, viewer, search)
    return Page(tuple(StoredResource(*row) for row in page.rows), page.has_more, page.total)


def reading_of_key(key: str) -> tuple[str, str]:
    """The device id and identifier of an Observation row's key (``search_observations``)."""
    device_id, _, identifier = key.partition("/")
    return device_id, identifier


def observation_by_id(conn: Conn, viewer: Viewer, observation_id: str) -> StoredResource | None:
    """The Observation whose id (``fhir_model.observation_id``) is ``observation_id`` when ``viewer`` may
    see its patient; its ``key`` is the reading's identifier.

    Two index probes: ``observation_keys`` by id (its primary key; the key's patient in the viewer's
    scope) gives the reading's municipality, device, identifier and effective time; ``observations`` by
    its primary key (municipality, device, identifier, effective) with those as constants, so the
    planner reads only the one partition (or chunk) of that time.
    """
    key_query = sql.SQL(
        "SELECT k.municipality_id, k.device_id, k.identifier, k.effective FROM {rows} AND k.id = %s"
    ).format(rows=_rows_of_keys(viewer))
    key = conn.execute(key_query, (observation_id.lower(),)).fetchone()
    if key is None:
        return None
    query = sql.SQL(
        "SELECT o.patient_id, o.resource, o.effective, o.identifier, {synthetic}, o.municipality_id"
        " FROM observations o"
        " WHERE o.municipality_id = %s AND o.device_id = %s AND o.identifier = %s AND o.effective = %s"
    ).format(synthetic=patient_of_row_synthetic("o"))
    row = conn.execute(query, key).fetchone()
    return None if row is None else StoredResource(*row)


def _rows_of_keys(viewer: Viewer) -> sql.Composable:
    """SQL: the ``observation_keys k`` whose patient ``viewer`` may see, as ``FROM ... WHERE scope``."""
    return sql.SQL("observation_keys k {joined} WHERE {scope}").format(
        joined=_with_patient("k"), scope=patient_scope(viewer)
    )


def search_risk_assessments(conn: Conn, viewer: Viewer, search: Search) -> Page[StoredResource]:
    """A page of the stored RiskAssessments ``viewer`` may see matching ``search``, newest first.

    The key of a RiskAssessment (its FHIR id and its cursor key) is the score's random ``public_id``,
    never ``scores.id``: that one sequence serves every municipality, so its gaps would show another
    municipality's activity. ``gateway.api.fhir_search`` checks that a cursor's key is a uuid.
    """
    after: sql.Composable = sql.SQL("true")
    if search.cursor is not None:
        after = sql.SQL("(s.computed_at, s.public_id) < ({}, {}::uuid)").format(
            sql.Literal(search.cursor.at), sql.Literal(search.cursor.key)
        )
    query = sql.SQL(
        "SELECT s.patient_id, s.resource, s.computed_at, s.public_id::text, {synthetic}, s.municipality_id"
        " FROM {rows} AND {criteria} AND {after} ORDER BY s.computed_at DESC, s.public_id DESC LIMIT %s"
    ).format(
        synthetic=patient_enrolled_synthetic("p"),
        rows=_rows_of(viewer, "RiskAssessment"),
        criteria=_criteria(search),
        after=after,
    )
    page = _page(conn, query, viewer, search)
    return Page(tuple(StoredResource(*row) for row in page.rows), page.has_more, page.total)


def risk_assessment_by_id(conn: Conn, viewer: Viewer, public_id: str) -> StoredResource | None:
    """The stored RiskAssessment whose id is ``public_id`` when ``viewer`` may see its patient; None for
    any other text."""
    try:
        wanted = uuid.UUID(public_id)
    except ValueError:
        return None  # no score has it
    query = sql.SQL(
        "SELECT s.patient_id, s.resource, s.computed_at, s.public_id::text, {synthetic}, s.municipality_id"
        " FROM {rows} AND s.public_id = %s"
    ).format(synthetic=patient_enrolled_synthetic("p"), rows=_rows_of(viewer, "RiskAssessment"))
    row = conn.execute(query, (wanted,)).fetchone()
    return None if row is None else StoredResource(*row)


def search_patients(conn: Conn, viewer: Viewer, search: Search) -> Page[PatientRow]:
    """A page of the patients ``viewer`` may see matching ``search``, by id."""
    after: sql.Composable = sql.SQL("true")
    if search.cursor is not None:
        after = sql.SQL("p.id > {}").format(sql.Literal(search.cursor.key))
    query = sql.SQL(
        "SELECT {columns} FROM patients p JOIN municipalities m ON m.id = p.municipality_id"
        " WHERE {scope} AND {criteria} AND {after} ORDER BY p.id LIMIT %s"
    ).format(columns=patient_columns(), scope=patient_scope(viewer), criteria=_criteria(search), after=after)
    page = _page(conn, query, viewer, search)
    return Page(tuple(patient_row(row) for row in page.rows), page.has_more, page.total)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """An enrolled sensor, or a hub (``is_hub``: then ``hub_id`` is its own id and it has no kind or
    address), with the patient it is assigned to and whether that patient was enrolled as synthetic."""

    id: str
    hub_id: str
    patient_id: str
    kind: str | None
    address: str | None
    is_hub: bool
    synthetic: bool


def device(conn: Conn, viewer: Viewer, device_id: str) -> DeviceRow | None:
    """The sensor or hub with this id (what ``Observation.device`` and the gatewayDevice extension
    reference) when ``viewer`` may see its patient; a sensor when a hub has the same id; else None."""
    query = sql.SQL(
        "SELECT d.id, d.hub_id, d.patient_id, d.kind, d.address, false AS is_hub, {synthetic}"
        " FROM devices d {d_patient} WHERE {scope} AND d.id = %(id)s"
        " UNION ALL"
        " SELECT h.id, h.id, h.patient_id, NULL, NULL, true, {synthetic}"
        " FROM hubs h {h_patient} WHERE {scope} AND h.id = %(id)s"
        " ORDER BY is_hub LIMIT 1"
    ).format(
        synthetic=patient_enrolled_synthetic("p"),
        d_patient=_with_patient("d"),
        h_patient=_with_patient("h"),
        scope=patient_scope(viewer),
    )
    row = conn.execute(query, {"id": device_id}).fetchone()
    return None if row is None else DeviceRow(*row)
