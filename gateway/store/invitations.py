"""Invitations to set a password once (table ``invitations``, migration 0018).

A row holds the SHA-256 of a link's random token (never the token), who the link is for, who made it,
when it expires and when it was used. A user has at most one open (unused) invitation: ``open_invitation``
gives an open row a new token and expiry instead of adding a second one, so only the newest link works.

Making the token, hashing the password, the rules a password must meet and the audit rows are left to
``gateway.administration.users``; this module only stores and reads rows. Callers own transactions:
``locked_invitation`` and ``use_invitation`` belong inside one ``conn.transaction()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

# What a link is worth now: it may set a password, it did already, or it is too old.
State = Literal["open", "used", "expired"]


@dataclass(frozen=True, slots=True)
class FoundInvitation:
    """An invitation found by its token's hash: its row, its user, and its state by the database's clock."""

    id: int
    username: str
    municipality_id: str
    role: str
    expires_at: datetime
    used_at: datetime | None
    state: State


@dataclass(frozen=True, slots=True)
class InvitedUser:
    """A user as an invitation sees her: where and what she is, her address, and her invitations so far
    (``unused``: rows never used, open or expired; ``used``: rows used, so she has set a password)."""

    username: str
    municipality_id: str
    role: str
    email: str | None
    unused: int
    used: int


_FOUND = (
    "SELECT i.id, i.username, u.municipality_id, u.role, i.expires_at, i.used_at,"
    " CASE WHEN i.used_at IS NOT NULL THEN 'used' WHEN i.expires_at <= now() THEN 'expired' ELSE 'open' END"
    " FROM invitations i JOIN users u ON u.username = i.username WHERE i.token_sha256 = %s"
)


def open_invitation(
    conn: psycopg.Connection[Any], username: str, token_sha256: bytes, created_by: str, lifetime: timedelta
) -> datetime:
    """Give ``username`` an open invitation under ``token_sha256``, valid for ``lifetime`` from now (the
    database's clock): a new row, or her open one with the new token (the old token stops working).
    Return when it expires."""
    row = conn.execute(
        "INSERT INTO invitations (username, token_sha256, created_by, expires_at)"
        " VALUES (%s, %s, %s, now() + %s)"
        " ON CONFLICT (username) WHERE used_at IS NULL DO UPDATE SET token_sha256 = EXCLUDED.token_sha256,"
        " created_by = EXCLUDED.created_by, created_at = now(), expires_at = EXCLUDED.expires_at"
        " RETURNING expires_at",
        (username, token_sha256, created_by, lifetime),
    ).fetchone()
    assert row is not None  # INSERT ... ON CONFLICT DO UPDATE ... RETURNING always returns the row
    expires_at: datetime = row[0]
    return expires_at


def invitation_by_token(conn: psycopg.Connection[Any], token_sha256: bytes) -> FoundInvitation | None:
    """The invitation whose token hashes to ``token_sha256``, else None."""
    row = conn.execute(_FOUND, (token_sha256,)).fetchone()
    return None if row is None else FoundInvitation(*row)


def locked_invitation(conn: psycopg.Connection[Any], token_sha256: bytes) -> FoundInvitation | None:
    """As ``invitation_by_token``, with the row locked until the transaction ends, so two requests with
    one link are decided one after the other (the second sees it used)."""
    row = conn.execute(_FOUND + " FOR UPDATE OF i", (token_sha256,)).fetchone()
    return None if row is None else FoundInvitation(*row)


def use_invitation(conn: psycopg.Connection[Any], invitation_id: int, password_hash: str) -> None:
    """Store the invited user's password hash and mark the invitation used (now, the database's clock)."""
    conn.execute(
        "UPDATE users SET password_hash = %s"
        " WHERE username = (SELECT username FROM invitations WHERE id = %s)",
        (password_hash, invitation_id),
    )
    conn.execute("UPDATE invitations SET used_at = now() WHERE id = %s", (invitation_id,))


def invited_user(conn: psycopg.Connection[Any], username: str) -> InvitedUser | None:
    """The user called ``username`` with the count of her invitations, else None."""
    row = conn.execute(
        "SELECT u.username, u.municipality_id, u.role, u.email,"
        " count(i.id) FILTER (WHERE i.used_at IS NULL), count(i.id) FILTER (WHERE i.used_at IS NOT NULL)"
        " FROM users u LEFT JOIN invitations i ON i.username = u.username WHERE u.username = %s"
        " GROUP BY u.username",
        (username,),
    ).fetchone()
    return None if row is None else InvitedUser(*row)


def care_teams_in(conn: psycopg.Connection[Any], municipality_id: str) -> list[tuple[str, str]]:
    """(id, name) of the care teams of ``municipality_id``, by id: what a nurse may be invited to."""
    rows = conn.execute(
        "SELECT id, name FROM care_teams WHERE municipality_id = %s ORDER BY id", (municipality_id,)
    ).fetchall()
    return [(str(i), str(n)) for i, n in rows]
