"""``GET /healthz``: the process answers, and whether the database does.

It borrows a connection with a short timeout and runs ``SELECT 1``; a database that is down or a pool
that is exhausted shows as ``"database": false`` instead of hanging or failing the probe.
"""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Request
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import BaseModel

router = APIRouter(tags=["health"])

# A probe must answer well within a load balancer's usual 5 s timeout.
_DB_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    """The service's health."""

    status: str
    database: bool


def database_ok(pool: ConnectionPool[Any]) -> bool:
    """Whether the database answers ``SELECT 1`` through the pool."""
    try:
        with pool.connection(timeout=_DB_TIMEOUT_SECONDS) as conn:
            conn.execute("SELECT 1")
    except (psycopg.Error, PoolTimeout):
        return False
    return True


@router.get("/healthz", response_model=Health)
def healthz(request: Request) -> Health:
    """Liveness, and whether the database answers."""
    return Health(status="ok", database=database_ok(request.app.state.pool))
