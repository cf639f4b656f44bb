"""The patients' "contact my nurse" requests (migration 0021): stored once, listed for the care team, worked.

``insert_requests`` stores what ingest accepted (``gateway.ingest.processing`` rule 7 decided it, the
contract ``fhir_contract.contact`` checked it). A request is keyed by its identifier within the hub that
sent it and its municipality, as a questionnaire response is (``gateway.store.questionnaires``): a
request sent again is a duplicate and a no-op; one whose key is stored with other content (another
patient or reason) is a conflict, reported by position for the caller to quarantine.

The care team's side, every read scoped by ``access.patient_scope``: ``open_requests`` (the worklist's
top: urgent first, then the longest waiting), ``patient_requests`` (a patient's history, newest first),
and ``take_request`` / ``complete_request``, which change a request and write the audit row in one
transaction (a request of a patient the viewer may not see is "not found", as if it did not exist).
The FHIR API's reads (``search_requests``, ``request_by_public_id``) are here too. Wording is left to
the web layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from gateway.store import access
from gateway.store.audit import record_audit
from gateway.store.entry_batches import EntryBatchResult, insert_entries
from gateway.store.synthetic import patient_enrolled_synthetic

if TYPE_CHECKING:
    from fhir_contract.contact import ValidContactRequest

OPEN, IN_PROGRESS, DONE = "open", "in-progress", "done"
Status = Literal["open", "in-progress", "done"]
AUDIT_TAKE = "take-contact-request"
AUDIT_DONE = "complete-contact-request"
# More open requests than a worklist shows at once is a team with a problem the list cannot solve.
OPEN_LIMIT = 50
HISTORY_LIMIT = 20


@dataclass(frozen=True, slots=True)
class DeliveredRequest:
    """A validated contact request with the hub (and its municipality) that delivered it."""

    municipality_id: str
    hub_id: str
    request: ValidContactRequest


_INSERT = (
    "INSERT INTO contact_requests (municipality_id, patient_id, hub_id, identifier, authored, reason,"
    " urgent, resource) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (municipality_id, hub_id, identifier) DO NOTHING RETURNING id"
)
# Whether the stored request under a key says the same as a new copy (who asks, and why).
_SAME = (
    "SELECT patient_id = %s AND reason IS NOT DISTINCT FROM %s"
    " FROM contact_requests WHERE municipality_id = %s AND hub_id = %s AND identifier = %s"
)


def _insert_params(row: DeliveredRequest) -> tuple[Any, ...]:
    r = row.request
    return (
        row.municipality_id,
        r.patient_id,
        row.hub_id,
        r.identifier,
        r.authored,
        r.reason,
        r.urgent,
        Jsonb(r.resource),
    )


def _same_params(row: DeliveredRequest) -> tuple[Any, ...]:
    r = row.request
    return (r.patient_id, r.reason, row.municipality_id, row.hub_id, r.identifier)


def insert_requests(conn: psycopg.Connection[Any], rows: Sequence[DeliveredRequest]) -> EntryBatchResult:
    """Store the requests not stored yet, in the caller's transaction (one savepoint for them all)."""
    return insert_entries(conn, rows, (_INSERT, _insert_params), (_SAME, _same_params))


# --- the care team's side ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactRequest:
    """A stored request as the pages read it."""

    id: int
    public_id: str
    municipality_id: str
    patient_id: str
    patient_name: str
    hub_id: str
    authored: datetime
    reason: str | None  # a key of fhir_contract.contact.REASONS
    urgent: bool
    status: Status
    taken_by: str | None
    taken_by_name: str | None
    taken_at: datetime | None
    done_by: str | None
    done_by_name: str | None
    done_at: datetime | None
    synthetic: bool
    resource: dict[str, Any]


def _select(where: sql.Composable, order: sql.Composable, viewer: access.Viewer) -> sql.Composed:
    return sql.SQL(
        "SELECT c.id, c.public_id::text, c.municipality_id, c.patient_id, p.name, c.hub_id, c.authored,"
        " c.reason, c.urgent, c.status, c.taken_by, tu.full_name, c.taken_at, c.done_by, du.full_name,"
        " c.done_at, {synthetic}, c.resource"
        " FROM contact_requests c"
        " JOIN patients p ON p.municipality_id = c.municipality_id AND p.id = c.patient_id"
        " LEFT JOIN users tu ON tu.username = c.taken_by LEFT JOIN users du ON du.username = c.done_by"
        " WHERE {scope} AND {where} ORDER BY {order}"
    ).format(
        synthetic=patient_enrolled_synthetic("p"),
        scope=access.patient_scope(viewer, "p"),
        where=where,
        order=order,
    )


def open_requests(
    conn: psycopg.Connection[Any], viewer: access.Viewer, limit: int = OPEN_LIMIT
) -> list[ContactRequest]:
    """The requests not done yet of the patients ``viewer`` may see: urgent first, then oldest first
    (the one waiting longest is called first)."""
    query = _select(
        sql.SQL("c.status <> 'done'"),
        sql.SQL("c.urgent DESC, c.authored, c.id LIMIT {}").format(sql.Literal(limit)),
        viewer,
    )
    return [ContactRequest(*row) for row in conn.execute(query).fetchall()]


def patient_requests(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str, limit: int = HISTORY_LIMIT
) -> list[ContactRequest]:
    """The newest requests of one patient ``viewer`` may see (none otherwise), newest first."""
    query = _select(
        sql.SQL("p.id = %s"),
        sql.SQL("c.authored DESC, c.id DESC LIMIT {}").format(sql.Literal(limit)),
        viewer,
    )
    return [ContactRequest(*row) for row in conn.execute(query, (patient_id,)).fetchall()]


def request_of(
    conn: psycopg.Connection[Any], viewer: access.Viewer, patient_id: str, request_id: int
) -> ContactRequest | None:
    """One request of a patient ``viewer`` may see, or None."""
    query = _select(sql.SQL("p.id = %s AND c.id = %s"), sql.SQL("c.id"), viewer)
    row = conn.execute(query, (patient_id, request_id)).fetchone()
    return None if row is None else ContactRequest(*row)


@dataclass(frozen=True, slots=True)
class Worked:
    """What a take or a completion did: the request as it is now (None: not found for this viewer), and
    whether it changed (False: it was taken or done already)."""

    request: ContactRequest | None
    changed: bool


def _work(
    conn: psycopg.Connection[Any],
    viewer: access.Viewer,
    patient_id: str,
    request_id: int,
    update: sql.Composed,
    action: str,
    client: str | None,
) -> Worked:
    with conn.transaction():
        # Locked, so two nurses taking the same request take turns and the second sees it taken.
        found = conn.execute(
            sql.SQL(
                "SELECT c.id FROM contact_requests c JOIN patients p"
                " ON p.municipality_id = c.municipality_id AND p.id = c.patient_id"
                " WHERE p.id = %s AND c.id = %s AND {scope} FOR UPDATE OF c"
            ).format(scope=access.patient_scope(viewer, "p")),
            (patient_id, request_id),
        ).fetchone()
        if found is None:
            return Worked(None, False)
        changed = conn.execute(update, {"id": request_id, "by": viewer.username}).rowcount == 1
        if changed:
            record_audit(conn, viewer, action, [patient_id], f"contact request {request_id}", client=client)
    return Worked(request_of(conn, viewer, patient_id, request_id), changed)


def take_request(
    conn: psycopg.Connection[Any],
    viewer: access.Viewer,
    patient_id: str,
    request_id: int,
    *,
    at: datetime,
    client: str | None,
) -> Worked:
    """``viewer`` takes an open request (in progress, theirs); audited. A request taken or done already
    is left as it is (``changed`` False)."""
    update = sql.SQL(
        "UPDATE contact_requests SET status = 'in-progress', taken_by = %(by)s, taken_at = {at}"
        " WHERE id = %(id)s AND status = 'open'"
    ).format(at=sql.Literal(at))
    return _work(conn, viewer, patient_id, request_id, update, AUDIT_TAKE, client)


def complete_request(
    conn: psycopg.Connection[Any],
    viewer: access.Viewer,
    patient_id: str,
    request_id: int,
    *,
    at: datetime,
    client: str | None,
) -> Worked:
    """``viewer`` marks a request done (taken or not); audited. One done already stays as it was."""
    update = sql.SQL(
        "UPDATE contact_requests SET status = 'done', done_by = %(by)s, done_at = {at}"
        " WHERE id = %(id)s AND status <> 'done'"
    ).format(at=sql.Literal(at))
    return _work(conn, viewer, patient_id, request_id, update, AUDIT_DONE, client)
