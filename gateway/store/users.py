"""The people who may log in: username, municipality, role and password hash (table ``users``).

Hashing and checking passwords, and the rules a new user must meet, are left to ``gateway.api.auth``;
this module only stores and reads rows. Callers own transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class StoredUser:
    """A ``users`` row: who, which municipality they may see, their role and their password's hash."""

    username: str
    municipality_id: str
    role: str
    password_hash: str


def insert_user(
    conn: psycopg.Connection[Any], username: str, municipality_id: str, role: str, password_hash: str
) -> None:
    """Add a user; the municipality must exist and the username be new (else a psycopg error)."""
    conn.execute(
        "INSERT INTO users (username, municipality_id, role, password_hash) VALUES (%s, %s, %s, %s)",
        (username, municipality_id, role, password_hash),
    )


def user_by_name(conn: psycopg.Connection[Any], username: str) -> StoredUser | None:
    """The user called ``username``, else None."""
    row = conn.execute(
        "SELECT username, municipality_id, role, password_hash FROM users WHERE username = %s", (username,)
    ).fetchone()
    return None if row is None else StoredUser(*row)


def user_exists(conn: psycopg.Connection[Any], username: str, municipality_id: str, role: str) -> bool:
    """Whether ``users`` has ``username`` in that municipality and with that role."""
    row = conn.execute(
        "SELECT 1 FROM users WHERE username = %s AND municipality_id = %s AND role = %s",
        (username, municipality_id, role),
    ).fetchone()
    return row is not None
