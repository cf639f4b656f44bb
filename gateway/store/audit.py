"""The audit log: who saw or changed which patient's data, when, from where, in which role, and how.

``record_audit`` is the one writer. Every view of patient data, export, review and acknowledgement
writes rows here (one per patient seen), in the same transaction as the change when there is one, and
so do logins (``login``, ``login-failed``) and logouts. Each row records the actor's municipality and
role, the client's address, and the municipality of the patient (looked up here, so a GP's view of a
patient in another municipality is that municipality's business too). The table is append-only
(migration 0009: a trigger refuses UPDATE, DELETE and TRUNCATE).

``audit_page`` reads it back for the administrator's page, newest first, filtered and paged by id.
Deciding what counts as a view, and who may read which rows, is left to the routes (``gateway.api``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg import sql

# Actions of logging in and out (the routes' own actions are named where they are recorded).
LOGIN = "login"
LOGIN_FAILED = "login-failed"
LOGOUT = "logout"


class Actor(Protocol):
    """Whoever acted: a user of one municipality with one role (``gateway.api.auth.User`` is one), or
    someone who tried to log in (``Attempt``: perhaps nobody's name, then of no municipality)."""

    @property
    def username(self) -> str: ...

    @property
    def municipality_id(self) -> str | None: ...

    @property
    def role(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Attempt:
    """Someone who tried to log in: the name as typed, and that user's municipality and role if any."""

    username: str
    municipality_id: str | None = None
    role: str | None = None


def record_audit(
    conn: psycopg.Connection[Any],
    actor: Actor,
    action: str,
    patient_ids: Iterable[str | None],
    detail: str | None = None,
    *,
    client: str | None,
) -> None:
    """One audit_log row per patient whose data ``actor`` saw or changed (None: no single patient),
    with the client's address (``client``; None only where there is no request, e.g. a job)."""
    ids = list(dict.fromkeys(patient_ids)) or [None]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO audit_log (username, municipality_id, role, client, action, patient_id,"
            " patient_municipality_id, detail)"
            " VALUES (%(u)s, %(m)s, %(r)s, %(c)s, %(a)s, %(p)s,"
            " (SELECT municipality_id FROM patients WHERE id = %(p)s), %(d)s)",
            [
                {
                    "u": actor.username,
                    "m": actor.municipality_id,
                    "r": actor.role,
                    "c": client,
                    "a": action,
                    "p": pid,
                    "d": detail,
                }
                for pid in ids
            ],
        )


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What the administrator filters by; None is no filter. ``until`` is exclusive."""

    username: str | None = None
    patient_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    username: str
    role: str | None
    municipality_id: str | None
    client: str | None
    action: str
    patient_id: str | None
    patient_municipality_id: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class AuditPage:
    """Rows newest first, and the id to read older rows before (None: these are the oldest)."""

    rows: tuple[AuditRow, ...]
    older_than: int | None


def audit_page(
    conn: psycopg.Connection[Any],
    municipality_id: str | None,
    wanted: AuditFilter,
    *,
    before_id: int | None = None,
    size: int = 50,
) -> AuditPage:
    """A page of the rows about ``municipality_id`` (its users' actions, and any action on its patients;
    None: every municipality's) matching ``wanted``, newest first, older than ``before_id``."""
    conditions: list[sql.Composable] = []
    if municipality_id is not None:
        m = sql.Literal(municipality_id)
        conditions.append(sql.SQL("(municipality_id = {m} OR patient_municipality_id = {m})").format(m=m))
    for column, value in (
        ("username", wanted.username),
        ("patient_id", wanted.patient_id),
        ("action", wanted.action),
    ):
        if value is not None:
            conditions.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(value)))
    if wanted.since is not None:
        conditions.append(sql.SQL("at >= {}").format(sql.Literal(wanted.since)))
    if wanted.until is not None:
        conditions.append(sql.SQL("at < {}").format(sql.Literal(wanted.until)))
    if before_id is not None:
        conditions.append(sql.SQL("id < {}").format(sql.Literal(before_id)))
    where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")
    query = sql.SQL(
        "SELECT id, at, username, role, municipality_id, client, action, patient_id,"
        " patient_municipality_id, detail FROM audit_log WHERE {where} ORDER BY id DESC LIMIT {limit}"
    ).format(where=where, limit=sql.Literal(size + 1))
    rows = [AuditRow(*row) for row in conn.execute(query).fetchall()]
    page = tuple(rows[:size])
    return AuditPage(page, page[-1].id if len(rows) > size else None)
