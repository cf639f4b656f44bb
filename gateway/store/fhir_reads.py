"""The FHIR API's reads: searches (a page, whether more exist, and the total) and reads by id.

Every query takes the user's municipality and filters on it: another municipality's row is, here, a
row that does not exist (so neither found, nor counted in a total). Criteria, order and cursor arrive
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

from gateway.store.fhir_query import Period, Reference, ResourceId, Search, SearchValue, Token
from gateway.store.patient_views import PatientRow, patient_columns, patient_row
from gateway.store.synthetic import patient_of_row_synthetic

Conn = psycopg.Connection[Any]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredResource:
    """A stored FHIR resource with its patient, its keyset position (time, key), and whether its patient
    was enrolled as synthetic."""

    patient_id: str
    resource: dict[str, Any]
    at: datetime
    key: str
    synthetic: bool


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


def _total(conn: Conn, municipality_id: str, search: Search) -> int:
    """How many rows of the municipality match ``search``'s criteria (whatever the page)."""
    table, alias = _TABLES[search.resource_type]
    query = sql.SQL("SELECT count(*) FROM {table} {alias} WHERE {alias}.municipality_id = %s AND {c}").format(
        table=sql.Identifier(table), alias=sql.Identifier(alias), c=_criteria(search)
    )
    row = conn.execute(query, (municipality_id,)).fetchone()
    return 0 if row is None else int(row[0])


def _page(conn: Conn, query: sql.Composed, municipality_id: str, search: Search) -> Page[tuple[Any, ...]]:
    """Run a page query (one row more than the page, to know whether more follow) and count the total."""
    rows = conn.execute(query, (municipality_id, search.count + 1)).fetchall()
    page = tuple(rows[: search.count])
    has_more = len(rows) > search.count
    # A first page that holds everything needs no count.
    total = len(page) if search.cursor is None and not has_more else _total(conn, municipality_id, search)
    return Page(page, has_more, total)


def search_observations(conn: Conn, municipality_id: str, search: Search) -> Page[StoredResource]:
    """A page of the municipality's Observations matching ``search``, in its order.

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
        "SELECT o.patient_id, o.resource, o.effective, o.device_id || '/' || o.identifier, {synthetic}"
        " FROM observations o WHERE o.municipality_id = %s AND {criteria} AND {after}"
        " ORDER BY o.effective {direction}, o.device_id {direction}, o.identifier {direction} LIMIT %s"
    ).format(
        synthetic=patient_of_row_synthetic("o"), criteria=_criteria(search), after=after, direction=direction
    )
    page = _page(conn, query, municipality_id, search)
    return Page(tuple(StoredResource(*row) for row in page.rows), page.has_more, page.total)


def reading_of_key(key: str) -> tuple[str, str]:
    """The device id and identifier of an Observation row's key (``search_observations``)."""
    device_id, _, identifier = key.partition("/")
    return device_id, identifier


def observation_by_id(conn: Conn, municipality_id: str, observation_id: str) -> StoredResource | None:
    """The municipality's Observation whose id (``fhir_model.observation_id``) is ``observation_id``; its
    ``key`` is the reading's identifier.

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
    query = sql.SQL(
        "SELECT o.patient_id, o.resource, o.effective, o.identifier, {synthetic}"
        " FROM observations o WHERE o.municipality_id = %s AND o.device_id = %s AND o.identifier = %s"
        " AND o.effective = %s"
    ).format(synthetic=patient_of_row_synthetic("o"))
    row = conn.execute(query, (municipality_id, key[0], key[1], key[2])).fetchone()
    return None if row is None else StoredResource(*row)


def search_risk_assessments(conn: Conn, municipality_id: str, search: Search) -> Page[StoredResource]:
    """A page of the municipality's stored RiskAssessments matching ``search``, newest first.

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
        "SELECT s.patient_id, s.resource, s.computed_at, s.public_id::text, {synthetic} FROM scores s"
        " WHERE s.municipality_id = %s AND {criteria} AND {after}"
        " ORDER BY s.computed_at DESC, s.public_id DESC LIMIT %s"
    ).format(synthetic=patient_of_row_synthetic("s"), criteria=_criteria(search), after=after)
    page = _page(conn, query, municipality_id, search)
    return Page(tuple(StoredResource(*row) for row in page.rows), page.has_more, page.total)


def risk_assessment_by_id(conn: Conn, municipality_id: str, public_id: str) -> StoredResource | None:
    """The municipality's stored RiskAssessment whose id is ``public_id``; None for any other text."""
    try:
        wanted = uuid.UUID(public_id)
    except ValueError:
        return None  # no score has it
    query = sql.SQL(
        "SELECT s.patient_id, s.resource, s.computed_at, s.public_id::text, {synthetic} FROM scores s"
        " WHERE s.municipality_id = %s AND s.public_id = %s"
    ).format(synthetic=patient_of_row_synthetic("s"))
    row = conn.execute(query, (municipality_id, wanted)).fetchone()
    return None if row is None else StoredResource(*row)


def search_patients(conn: Conn, municipality_id: str, search: Search) -> Page[PatientRow]:
    """A page of the municipality's patients matching ``search``, by id."""
    after: sql.Composable = sql.SQL("true")
    if search.cursor is not None:
        after = sql.SQL("p.id > {}").format(sql.Literal(search.cursor.key))
    query = sql.SQL(
        "SELECT {columns} FROM patients p JOIN municipalities m ON m.id = p.municipality_id"
        " WHERE p.municipality_id = %s AND {criteria} AND {after} ORDER BY p.id LIMIT %s"
    ).format(columns=patient_columns(), criteria=_criteria(search), after=after)
    page = _page(conn, query, municipality_id, search)
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


def device(conn: Conn, municipality_id: str, device_id: str) -> DeviceRow | None:
    """The municipality's sensor or hub with this id (what ``Observation.device`` and the
    gatewayDevice extension reference); a sensor when a hub has the same id; else None."""
    query = sql.SQL(
        "SELECT d.id, d.hub_id, d.patient_id, d.kind, d.address, false AS is_hub, {d_synthetic}"
        " FROM devices d WHERE d.municipality_id = %(m)s AND d.id = %(id)s"
        " UNION ALL"
        " SELECT h.id, h.id, h.patient_id, NULL, NULL, true, {h_synthetic}"
        " FROM hubs h WHERE h.municipality_id = %(m)s AND h.id = %(id)s"
        " ORDER BY is_hub LIMIT 1"
    ).format(d_synthetic=patient_of_row_synthetic("d"), h_synthetic=patient_of_row_synthetic("h"))
    row = conn.execute(query, {"m": municipality_id, "id": device_id}).fetchone()
    return None if row is None else DeviceRow(*row)
