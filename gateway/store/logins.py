"""The state of logging in that every gateway process shares: failed-login counters and revoked sessions.

Several gateway processes (and hosts) answer logins and verify tokens, so what one of them learns (a
failed password, a logout) must be seen by all: it lives here, in PostgreSQL (migration 0005).

- ``login_throttle``: one counter per account and per client address. ``locked_counter`` reads one under
  a row lock, so concurrent attempts on the same account or address are decided one after another;
  ``save_counter`` writes what the caller decided, in the same transaction. How many failures are free
  and how long a block lasts is the caller's policy (``gateway.api.login_throttle``).
- ``revoked_sessions``: session ids ended by logout, kept until the token would have expired anyway.

Callers own transactions: ``locked_counter`` and ``save_counter`` belong inside one ``conn.transaction()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

Scope = Literal["account", "address"]


@dataclass(frozen=True, slots=True)
class Counter:
    """Failed logins of one account or address: how many, until when attempts are refused, the last one."""

    failures: int = 0
    blocked_until: datetime | None = None
    last_failure: datetime | None = None


def locked_counter(conn: psycopg.Connection[Any], scope: Scope, key: str) -> tuple[Counter, datetime]:
    """The counter of ``(scope, key)`` (zero when there is none), row-locked until the transaction ends;
    and the database's clock, so that every gateway host judges time by one clock."""
    # The no-op update takes the row lock and returns the row whether it was there or not (also when
    # another transaction deletes it meanwhile: PostgreSQL then inserts it).
    row = conn.execute(
        "INSERT INTO login_throttle AS t (scope, key) VALUES (%s, %s)"
        " ON CONFLICT (scope, key) DO UPDATE SET key = t.key"
        " RETURNING failures, blocked_until, last_failure, now()",
        (scope, key),
    ).fetchone()
    assert row is not None  # INSERT ... ON CONFLICT DO UPDATE ... RETURNING always returns the row
    return Counter(row[0], row[1], row[2]), row[3]


def save_counter(conn: psycopg.Connection[Any], scope: Scope, key: str, counter: Counter) -> None:
    """Store the counter of ``(scope, key)``; a zero counter deletes the row."""
    if counter == Counter():
        conn.execute("DELETE FROM login_throttle WHERE scope = %s AND key = %s", (scope, key))
        return
    conn.execute(
        "UPDATE login_throttle SET failures = %s, blocked_until = %s, last_failure = %s"
        " WHERE scope = %s AND key = %s",
        (counter.failures, counter.blocked_until, counter.last_failure, scope, key),
    )


def forget_idle(conn: psycopg.Connection[Any], idle: timedelta) -> int:
    """Delete counters without a failure for ``idle`` and not blocking; return how many.

    Rows of names that were tried once would otherwise stay forever. A row another transaction holds
    is left for next time, so this never waits.
    """
    deleted = conn.execute(
        "DELETE FROM login_throttle WHERE ctid IN (SELECT ctid FROM login_throttle"
        " WHERE last_failure < now() - %s"
        " AND (blocked_until IS NULL OR blocked_until < now()) FOR UPDATE SKIP LOCKED)",
        (idle,),
    )
    return deleted.rowcount


def revoke_session(conn: psycopg.Connection[Any], session_id: str, expires_at: datetime) -> None:
    """Record that a session ended before ``expires_at`` (and drop revocations no longer needed)."""
    conn.execute("DELETE FROM revoked_sessions WHERE expires_at < now()")
    conn.execute(
        "INSERT INTO revoked_sessions (session_id, expires_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (session_id, expires_at),
    )


def session_revoked(conn: psycopg.Connection[Any], session_id: str) -> bool:
    """Whether the session was ended by logout."""
    row = conn.execute("SELECT 1 FROM revoked_sessions WHERE session_id = %s", (session_id,)).fetchone()
    return row is not None
