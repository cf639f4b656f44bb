"""The quarantine's review: list, read and resolve the rows of refused input (migration 0017).

Ingest writes the rows (``repository.quarantine_many``); this module is how administrators read them back
and record what became of each: re-processed after an enrolment fix (``gateway.ingest.reprocess`` runs
the live rules and calls ``resolve``), or dismissed with a reason. A row is never deleted or changed but
for its review columns, and every review is audited in the same transaction (``gateway.store.audit``).

Who sees which rows is a ``Scope``: a municipality's rows are those its topic named; rows of no known
municipality (a topic that named none, or one nobody enrolled) belong to no municipality administrator
and are shown only to a system administrator who asks for them. A row outside the scope does not exist
for these functions. Deciding the scope of a user is left to the callers (``gateway.api``, the CLI).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from gateway.store.audit import Actor, record_audit
from gateway.store.errors import StoreError

# What became of a row (the CHECK of migration 0017).
REPROCESSED_STORED: Final = "reprocessed-stored"
REPROCESSED_PARTLY: Final = "reprocessed-partly"
STILL_REFUSED: Final = "still-refused"
DISMISSED: Final = "dismissed"
RESOLUTIONS: Final = (REPROCESSED_STORED, REPROCESSED_PARTLY, STILL_REFUSED, DISMISSED)
# The row states a listing may ask for.
OPEN, RESOLVED, ANY_STATE = "open", "resolved", "all"
STATES: Final = (OPEN, RESOLVED, ANY_STATE)
# Audit actions (the routes' and the CLI's; the audit page lists them as they are).
AUDIT_VIEW: Final = "view-quarantine"
AUDIT_REPROCESS: Final = "reprocess-quarantine"
AUDIT_DISMISS: Final = "dismiss-quarantine"
# Resolution notes are a sentence or two for the record.
NOTE_CHARS: Final = 1000


class QuarantineRefused(StoreError):
    """A review the row does not allow: ``kind`` is 'unknown' (no such row in the scope), 'resolved'
    (reviewed already), 'not-a-reading' (a hub status: the hub's next one replaces it) or 'failed'."""

    def __init__(self, row_id: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.row_id = row_id
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Scope:
    """Which rows a reader may see: of the municipality ``municipality_id`` (None: of every known
    municipality) when ``owned``, and those of no known municipality when ``unowned``."""

    municipality_id: str | None
    owned: bool = True
    unowned: bool = False

    @classmethod
    def everything(cls) -> Scope:
        """Every row (the CLI without --municipality: whoever runs it runs the server)."""
        return cls(None, True, True)


@dataclass(frozen=True, slots=True)
class QuarantineFilter:
    """What the reader filters by; None is no filter. ``until`` is exclusive."""

    code: str | None = None
    hub_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    state: str = OPEN


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """A quarantined message or Observation and its review. ``payload`` is '' in a listing."""

    id: int
    received_at: datetime
    topic: str
    municipality_id: str | None
    hub_id: str | None
    code: str
    reason: str
    payload_chars: int
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    resolution_note: str | None
    reprocessed_from: int | None
    # The hub as enrolled now: 'enrolled', 'revoked' or 'unknown' (none of that id in that municipality).
    hub_state: str
    # Whether the municipality its topic named exists (False: a row of no known municipality).
    municipality_known: bool
    payload: str = ""

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True, slots=True)
class QuarantinePage:
    rows: tuple[QuarantineRow, ...]
    # The id to page from for older rows (None: no older ones).
    older_than: int | None


_COLUMNS = sql.SQL(
    "q.id, q.received_at, q.topic, q.municipality_id, q.hub_id, q.code, q.reason, length(q.payload),"
    " q.resolved_at, q.resolved_by, q.resolution, q.resolution_note, q.reprocessed_from,"
    " CASE WHEN h.id IS NULL THEN 'unknown' WHEN h.revoked_at IS NOT NULL THEN 'revoked'"
    " ELSE 'enrolled' END, mu.id IS NOT NULL"
)
_FROM = sql.SQL(
    "quarantine q LEFT JOIN municipalities mu ON mu.id = q.municipality_id"
    " LEFT JOIN hubs h ON h.id = q.hub_id AND h.municipality_id = q.municipality_id"
)


def _scope(scope: Scope) -> sql.Composable:
    mine: sql.Composable = sql.SQL("mu.id IS NOT NULL")
    if scope.municipality_id is not None:
        # Spelled on the column itself, so the index quarantine_municipality serves it.
        mine = sql.SQL("q.municipality_id = {} AND mu.id IS NOT NULL").format(
            sql.Literal(scope.municipality_id)
        )
    parts: list[sql.Composable] = []
    if scope.owned:
        parts.append(sql.SQL("({})").format(mine))
    if scope.unowned:
        parts.append(sql.SQL("(mu.id IS NULL)"))
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts)) if parts else sql.SQL("false")


def _conditions(scope: Scope, wanted: QuarantineFilter) -> list[sql.Composable]:
    conditions = [_scope(scope)]
    if wanted.code is not None:
        conditions.append(sql.SQL("q.code = {}").format(sql.Literal(wanted.code)))
    if wanted.hub_id is not None:
        conditions.append(sql.SQL("q.hub_id = {}").format(sql.Literal(wanted.hub_id)))
    if wanted.since is not None:
        conditions.append(sql.SQL("q.received_at >= {}").format(sql.Literal(wanted.since)))
    if wanted.until is not None:
        conditions.append(sql.SQL("q.received_at < {}").format(sql.Literal(wanted.until)))
    if wanted.state == OPEN:
        conditions.append(sql.SQL("q.resolved_at IS NULL"))
    elif wanted.state == RESOLVED:
        conditions.append(sql.SQL("q.resolved_at IS NOT NULL"))
    elif wanted.state != ANY_STATE:
        raise ValueError(f"state must be one of {STATES}, not {wanted.state!r}")
    return conditions


def _row(values: tuple[Any, ...], payload: str = "") -> QuarantineRow:
    row_id, received_at, topic, municipality_id, hub_id, code, reason, chars, *review, hub, known = values
    resolved_at, resolved_by, resolution, note, reprocessed_from = review
    return QuarantineRow(
        row_id,
        received_at,
        topic,
        municipality_id,
        hub_id,
        code,
        reason,
        chars,
        resolved_at,
        resolved_by,
        resolution,
        note,
        reprocessed_from,
        hub,
        bool(known),
        payload,
    )


def quarantine_page(
    conn: psycopg.Connection[Any],
    scope: Scope,
    wanted: QuarantineFilter,
    *,
    before_id: int | None = None,
    size: int = 50,
) -> QuarantinePage:
    """A page of the rows in ``scope`` matching ``wanted``, newest first, older than ``before_id``."""
    conditions = _conditions(scope, wanted)
    if before_id is not None:
        conditions.append(sql.SQL("q.id < {}").format(sql.Literal(before_id)))
    query = sql.SQL("SELECT {columns} FROM {source} WHERE {where} ORDER BY q.id DESC LIMIT {limit}").format(
        columns=_COLUMNS,
        source=_FROM,
        where=sql.SQL(" AND ").join(conditions),
        limit=sql.Literal(size + 1),
    )
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = [_row(values) for values in cur.execute(query).fetchall()]
    page = tuple(rows[:size])
    return QuarantinePage(page, page[-1].id if len(rows) > size else None)


def open_counts(conn: psycopg.Connection[Any], scope: Scope) -> list[tuple[str, int]]:
    """How many open rows the scope holds per code, most first (the page's summary and quick filters)."""
    query = sql.SQL(
        "SELECT q.code, count(*) FROM {source} WHERE {scope} AND q.resolved_at IS NULL"
        " GROUP BY q.code ORDER BY count(*) DESC, q.code"
    ).format(source=_FROM, scope=_scope(scope))
    with conn.cursor(row_factory=tuple_row) as cur:
        return [(str(code), int(n)) for code, n in cur.execute(query).fetchall()]


def open_ids(
    conn: psycopg.Connection[Any], scope: Scope, wanted: QuarantineFilter, *, limit: int
) -> list[int]:
    """The open rows in ``scope`` matching ``wanted``, oldest first (what a bulk re-processing takes)."""
    conditions = _conditions(scope, QuarantineFilter(wanted.code, wanted.hub_id, wanted.since, wanted.until))
    query = sql.SQL("SELECT q.id FROM {source} WHERE {where} ORDER BY q.id LIMIT {limit}").format(
        source=_FROM, where=sql.SQL(" AND ").join(conditions), limit=sql.Literal(limit)
    )
    return [int(row[0]) for row in conn.execute(query).fetchall()]


def _one(conn: psycopg.Connection[Any], row_id: int, scope: Scope, *, lock: bool) -> QuarantineRow | None:
    query = sql.SQL("SELECT {columns}, q.payload FROM {source} WHERE q.id = {id} AND {scope}{lock}").format(
        columns=_COLUMNS,
        source=_FROM,
        id=sql.Literal(row_id),
        scope=_scope(scope),
        lock=sql.SQL(" FOR UPDATE OF q") if lock else sql.SQL(""),
    )
    with conn.cursor(row_factory=tuple_row) as cur:
        found = cur.execute(query).fetchone()
    return None if found is None else _row(found[:-1], found[-1])


def quarantine_row(conn: psycopg.Connection[Any], row_id: int, scope: Scope) -> QuarantineRow | None:
    """One row with its payload; None when there is none of that id in the scope."""
    return _one(conn, row_id, scope, lock=False)


def successors(conn: psycopg.Connection[Any], row_id: int) -> list[QuarantineRow]:
    """The rows its re-processing wrote (refused again), in order."""
    query = sql.SQL("SELECT {columns} FROM {source} WHERE q.reprocessed_from = {id} ORDER BY q.id").format(
        columns=_COLUMNS, source=_FROM, id=sql.Literal(row_id)
    )
    with conn.cursor(row_factory=tuple_row) as cur:
        return [_row(values) for values in cur.execute(query).fetchall()]


def take_open(conn: psycopg.Connection[Any], row_id: int, scope: Scope) -> QuarantineRow:
    """Lock an open row for its review, inside the caller's transaction (a second reviewer waits, then
    finds it resolved). QuarantineRefused when it is unknown in the scope or resolved already."""
    found = _one(conn, row_id, scope, lock=True)
    if found is None:
        raise QuarantineRefused(row_id, "unknown", f"there is no quarantined row {row_id} here")
    if not found.is_open:
        said = f"row {row_id} was resolved already ({found.resolution}, by {found.resolved_by})"
        raise QuarantineRefused(row_id, "resolved", said)
    return found


def mark_reprocessing(conn: psycopg.Connection[Any], row_id: int | None) -> None:
    """Name ``row_id`` as the row being re-processed (None: none) until the caller's transaction ends: the
    quarantine rows written meanwhile (its input refused again) get it as ``reprocessed_from`` (the
    column's DEFAULT, migration 0017)."""
    value = "" if row_id is None else str(row_id)
    conn.execute("SELECT set_config('homewatch.reprocessing', %s, true)", (value,))


def resolve(
    conn: psycopg.Connection[Any],
    row: QuarantineRow,
    resolution: str,
    note: str,
    *,
    actor: Actor,
    client: str | None,
    patient_ids: Iterable[str] = (),
) -> None:
    """Record what became of a row taken with ``take_open`` and audit it, in the caller's transaction.
    ``patient_ids``: the patients the row's readings name (the audit log's rows for their municipality)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, not {resolution!r}")
    note = note.replace("\x00", "")[:NOTE_CHARS]
    conn.execute(
        "UPDATE quarantine SET resolved_at = now(), resolved_by = %s, resolution = %s, resolution_note = %s"
        " WHERE id = %s AND resolved_at IS NULL",
        (actor.username, resolution, note, row.id),
    )
    action = AUDIT_DISMISS if resolution == DISMISSED else AUDIT_REPROCESS
    detail = f"quarantine row {row.id} ({row.code}, hub {row.hub_id or '-'}): {resolution}; {note}"
    record_audit(conn, actor, action, list(patient_ids) or [None], detail, client=client)
