"""The web app's connection pool, opened the same way by every process that serves it.

``create_app`` takes a pool its caller owns; ``open_pool`` is how the composition root
(``gateway.service``) opens one. Each connection is checked as it is lent out (psycopg_pool's ``check``, one
round trip), so after PostgreSQL ends its sessions (a restart, a failover, ``pg_terminate_backend``) a
request gets a working connection instead of a dead one and a 500.

psycopg_pool waits 1 s, 2 s, 4 s ... between failed checks, so with eight dead connections in the pool
the first request would wait longer than the pool's 30 s timeout. Sessions die together, so the first
dead connection found makes the pool check all its idle ones at once (``ConnectionPool.check``), which
discards the dead ones and opens new ones in the background: the request waits about one back-off step.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

# One connection is enough for an idle gateway; eight covers the request threads that can hold one at
# once on a small server without crowding out ingest and the scorer in PostgreSQL's max_connections.
MIN_CONNECTIONS = 1
MAX_CONNECTIONS = 8


def _check_all_when_one_is_dead(pool: ConnectionPool[Any], conn: psycopg.Connection[Any]) -> None:
    """psycopg_pool's check of ``conn``; when it fails, the pool's other idle connections are checked too."""
    try:
        ConnectionPool.check_connection(conn)
    except psycopg.Error:
        pool.check()
        raise


def open_pool(database_url: str) -> ConnectionPool[Any]:
    """An open pool over ``database_url`` that lends only connections that work; the caller closes it."""
    pool: ConnectionPool[Any] = ConnectionPool(
        database_url,
        min_size=MIN_CONNECTIONS,
        max_size=MAX_CONNECTIONS,
        open=False,
        check=lambda conn: _check_all_when_one_is_dead(pool, conn),
    )
    pool.open()
    return pool
