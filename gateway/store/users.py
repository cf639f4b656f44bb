"""The people who may log in: username, municipality, role and password hash (table ``users``).

Hashing and checking passwords, and the rules a new user must meet, are left to ``gateway.api.auth``;
this module only stores and reads rows. Callers own transactions.
"""

from __future__ import annotations

import re
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


# An e-mail address as migration 0013 checks it (users.email, alert_settings.on_call_email): one '@'
# between non-blank parts; whether anyone reads it is the mail server's to say.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def insert_user(
    conn: psycopg.Connection[Any],
    username: str,
    municipality_id: str,
    role: str,
    password_hash: str,
    email: str | None = None,
) -> None:
    """Add a user (with the e-mail address alerts reach them at, if any); the municipality must exist,
    the username be new and the address look like one (else a psycopg error)."""
    conn.execute(
        "INSERT INTO users (username, municipality_id, role, password_hash, email)"
        " VALUES (%s, %s, %s, %s, %s)",
        (username, municipality_id, role, password_hash, email),
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


def create_care_team(conn: psycopg.Connection[Any], municipality_id: str, team_id: str, name: str) -> None:
    """Create a care team in ``municipality_id`` or rename it (a team id held elsewhere is an error)."""
    row = conn.execute(
        "INSERT INTO care_teams (municipality_id, id, name) VALUES (%s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name"
        " WHERE care_teams.municipality_id = EXCLUDED.municipality_id RETURNING id",
        (municipality_id, team_id, name),
    ).fetchone()
    if row is None:
        raise ValueError(f"care team {team_id!r} belongs to another municipality")


def join_care_team(conn: psycopg.Connection[Any], municipality_id: str, team_id: str, username: str) -> None:
    """Make ``username`` a member of the team (both of ``municipality_id``, else a psycopg error)."""
    conn.execute(
        "INSERT INTO care_team_members (municipality_id, care_team_id, username) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (municipality_id, team_id, username),
    )


def care_teams_of(conn: psycopg.Connection[Any], username: str) -> list[str]:
    """The ids of the care teams ``username`` belongs to."""
    rows = conn.execute(
        "SELECT care_team_id FROM care_team_members WHERE username = %s ORDER BY care_team_id", (username,)
    ).fetchall()
    return [row[0] for row in rows]
