"""Monthly partitions of the ``observations`` table, with native PostgreSQL declarative partitioning.

Migration 0001 makes ``observations`` ``PARTITION BY RANGE (effective)`` with one DEFAULT partition, so
a row always has somewhere to go. This module adds one partition per calendar month (UTC) as data for
that month arrives: ``observations_y2026m11`` holds ``[2026-11-01, 2026-12-01)``. Old months can then be
detached or dropped whole, and a query for one patient's last days touches only a few partitions.

Rules:

- Only months inside a horizon (``PAST_HORIZON_MONTHS`` back, ``FUTURE_HORIZON_MONTHS`` ahead of now)
  get a partition. A device with an unset clock (year 2000) or a clock far ahead must not make us create
  partitions for arbitrary months; those rows land in the DEFAULT partition and stay queryable.
- If the DEFAULT partition already holds rows of a month (inserted before its partition existed), they
  are moved into the new partition in the same transaction: PostgreSQL refuses to attach a partition
  whose range overlaps rows in the DEFAULT partition.
- Creation is serialised between processes by a transaction-level advisory lock; the caller owns the
  transaction, so a rolled-back creation simply did not happen.
- A per-database cache remembers months known to exist, so the hot path costs nothing once a month has
  its partition. A month is cached only when it was found already there (never when created in the
  caller's still-open transaction, which may roll back). A stale cache is harmless: rows of a dropped
  month's partition fall into the DEFAULT partition.

Where migration 0002 made ``observations`` a TimescaleDB hypertable (``gateway.store.timescale``),
TimescaleDB makes its chunks itself: this module sees that the table is not declaratively partitioned
and creates nothing (checked once per database, then cached like the months).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

log = logging.getLogger(__name__)

PARENT = "observations"
DEFAULT_PARTITION = "observations_default"
_NAME = re.compile(r"^observations_y(\d{4})m(\d{2})$")
# Distinct from the migrator's lock (4242001): creating partitions never waits for a migration's lock.
_ADVISORY_LOCK = 4242002
# Five years back covers any backlog a hub or an import can bring; older stamps are clock errors.
PAST_HORIZON_MONTHS = 60
# A device clock a little ahead is common (no time sync); far ahead is an error, not a month to create.
FUTURE_HORIZON_MONTHS = 1

_cache_lock = threading.Lock()
_known: dict[tuple[str, str, str], set[date]] = {}
_partitioned: dict[tuple[str, str, str], bool] = {}


def month_of(moment: datetime) -> date:
    """First day of the UTC calendar month of ``moment`` (which must be time-zone aware)."""
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"observations_y{month.year:04d}m{month.month:02d}"


def within_horizon(month: date, now: datetime | None = None) -> bool:
    """Whether ``month`` may get its own partition (else its rows stay in the DEFAULT partition)."""
    current = month_of(now or datetime.now(UTC))
    return _add_months(current, -PAST_HORIZON_MONTHS) <= month <= _add_months(current, FUTURE_HORIZON_MONTHS)


def natively_partitioned(conn: psycopg.Connection[Any]) -> bool:
    """Whether ``observations`` is declaratively partitioned (False for a TimescaleDB hypertable)."""
    row = conn.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = %s::regclass", (PARENT,)).fetchone()
    return bool(row and row[0])


def existing_partitions(conn: psycopg.Connection[Any]) -> set[date]:
    """The months that have a partition of ``observations`` (visible to this transaction)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            (PARENT,),
        )
        months: set[date] = set()
        for (name,) in cur.fetchall():
            match = _NAME.match(name)
            if match:
                months.add(date(int(match[1]), int(match[2]), 1))
        return months


def ensure_partitions(conn: psycopg.Connection[Any], months: Iterable[date]) -> list[date]:
    """Create the monthly partitions missing among ``months`` (any day of a month names the month).

    Runs inside the caller's transaction (a savepoint when one is open). Returns the months created
    (none on a hypertable). Ignores the horizon: callers that take months from untrusted data use
    ``ensure_partitions_for``.
    """
    wanted = {date(m.year, m.month, 1) for m in months}
    if not wanted or not natively_partitioned(conn):
        return []
    created: list[date] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
        for month in sorted(wanted - existing_partitions(conn)):
            _create_partition(conn, month)
            created.append(month)
    if created:
        log.info("created observation partitions %s", ", ".join(partition_name(m) for m in created))
    return created


def _create_partition(conn: psycopg.Connection[Any], month: date) -> None:
    lower = datetime(month.year, month.month, 1, tzinfo=UTC)
    upper_month = _add_months(month, 1)
    upper = datetime(upper_month.year, upper_month.month, 1, tzinfo=UTC)
    name = sql.Identifier(partition_name(month))
    bounds = sql.SQL("FOR VALUES FROM ({}) TO ({})").format(
        sql.Literal(lower.isoformat()), sql.Literal(upper.isoformat())
    )
    stray = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE effective >= %s AND effective < %s)").format(
            sql.Identifier(DEFAULT_PARTITION)
        ),
        (lower, upper),
    ).fetchone()
    if stray is None or not stray[0]:
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} {}").format(name, sql.Identifier(PARENT), bounds)
        )
        return
    # Rows of this month already sit in the DEFAULT partition: move them into a new table, then attach
    # it (attaching checks that the DEFAULT partition no longer holds rows of the range).
    conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
            name, sql.Identifier(PARENT)
        )
    )
    conn.execute(
        sql.SQL(
            "WITH moved AS (DELETE FROM {} WHERE effective >= %s AND effective < %s RETURNING *)"
            " INSERT INTO {} SELECT * FROM moved"
        ).format(sql.Identifier(DEFAULT_PARTITION), name),
        (lower, upper),
    )
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(sql.Identifier(PARENT), name, bounds)
    )


def _database_key(conn: psycopg.Connection[Any]) -> tuple[str, str, str]:
    info = conn.info
    return (info.host, str(info.port), info.dbname)


def ensure_partitions_for(
    conn: psycopg.Connection[Any], effectives: Iterable[datetime], now: datetime | None = None
) -> None:
    """Make sure each month of ``effectives`` inside the horizon has its partition; cheap when cached."""
    months = {month_of(moment) for moment in effectives}
    months = {m for m in months if within_horizon(m, now)}
    key = _database_key(conn)
    with _cache_lock:
        missing = months - _known.get(key, set())
        partitioned = _partitioned.get(key)
    if not missing:
        return
    if partitioned is None:
        partitioned = natively_partitioned(conn)
        with _cache_lock:
            _partitioned[key] = partitioned
    if not partitioned:
        return
    created = ensure_partitions(conn, missing)
    with _cache_lock:
        _known.setdefault(key, set()).update(missing - set(created))


def forget_cached_partitions() -> None:
    """Drop the cache of known partitions (after partitions were dropped or detached by hand)."""
    with _cache_lock:
        _known.clear()
        _partitioned.clear()
