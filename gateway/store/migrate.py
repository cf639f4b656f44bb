"""Versioned schema migrations: ``migrations/NNNN_name.sql`` applied in order, each in one transaction.

``schema_migrations`` records what is applied, so running ``migrate`` again is a no-op and a new file
is applied exactly once. Migrations only go forward; a failed one rolls back and stops.

A migration may also have a Python step (``PYTHON_STEPS``, keyed by the file's name without ``.sql``) for
work SQL cannot decide alone: 0002 asks the server whether TimescaleDB is there
(``gateway.store.timescale``). The step runs in the migration's transaction, just before its SQL, so a
failure of either rolls back both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from gateway.store.errors import DatabaseUnavailable, MigrationError, StoreError
from gateway.store.timescale import prepare_observation_storage

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# A server that does not answer the first connection within this is reported, not waited for.
CONNECT_TIMEOUT_S = 5
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

PythonStep = Callable[[psycopg.Connection[Any]], object]
# Migration file name (without .sql) -> its Python step, run in its transaction before its SQL.
PYTHON_STEPS: Mapping[str, PythonStep] = {"0002_observation_keys": prepare_observation_storage}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in version order; a gap or a duplicate version is a programming error."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file name {path.name!r} is not NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migration versions must be 1..n without gaps, found {versions}")
    return found


def migrate(
    conn: psycopg.Connection[Any],
    directory: Path = MIGRATIONS_DIR,
    steps: Mapping[str, PythonStep] = PYTHON_STEPS,
) -> list[int]:
    """Apply the migrations not yet applied (with their Python steps); return their versions."""
    with conn.transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
    done: list[int] = []
    for migration in load_migrations(directory):
        try:
            with conn.transaction():
                # The lock serialises concurrent migrators (several workers starting at once); the check
                # after it makes the loser skip what the winner applied.
                conn.execute("SELECT pg_advisory_xact_lock(4242001)")
                if conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
                ).fetchone():
                    continue
                step = steps.get(f"{migration.version:04d}_{migration.name}")
                if step is not None:
                    step(conn)
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
        except psycopg.Error as exc:
            raise MigrationError(migration.version, migration.name, str(exc).strip()) from exc
        done.append(migration.version)
    return done


def migrate_database(database_url: str) -> list[int]:
    """Connect to ``database_url`` and bring its schema up to date (``migrate``); return the versions
    applied. DatabaseUnavailable when it cannot be reached, StoreError when the URL is no PostgreSQL URL,
    MigrationError when a migration fails: each message is one line for the person who started it."""
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            return migrate(conn)
    except psycopg.ProgrammingError as exc:  # not a connection string at all
        raise StoreError(f"--database-url is not a PostgreSQL URL: {str(exc).strip()}") from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {str(exc).strip()}") from exc
