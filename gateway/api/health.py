"""``GET /healthz``: whether this gateway can do its job, for a load balancer or an orchestrator.

Healthy (200, ``"status": "ok"``) means: the database answers (the query for stalled workers), and no
ingest worker has held
messages for longer than ``ingest_stall_after_s`` without committing any (``ingest_workers``, the
heartbeat each worker writes wherever it runs: ``gateway.store.ingest_metrics``). Otherwise 503 with
``"status": "unhealthy"`` and what is wrong: a worker stuck on a batch, hung, or killed with messages in
hand stops ingest as surely as a dead database, and must not hide behind a process that still answers.

The probe borrows a connection with a short timeout, so a database that is down or a pool that is
exhausted shows as ``"database": false`` instead of hanging or failing the probe.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import BaseModel

from gateway.settings import GatewaySettings
from gateway.store.ingest_metrics import WorkerState, stalled_workers

router = APIRouter(tags=["health"])

# A probe must answer well within a load balancer's usual 5 s timeout.
_DB_TIMEOUT_SECONDS = 2.0


class StalledWorker(BaseModel):
    """An ingest worker holding messages without committing any."""

    worker: str
    in_hand: int
    stalled_for_s: float


class Health(BaseModel):
    """The service's health."""

    status: str  # "ok" or "unhealthy"
    database: bool
    stalled_workers: list[StalledWorker] = []


def _stalled(state: WorkerState, now: datetime) -> StalledWorker:
    since = state.waiting_since or state.last_progress
    return StalledWorker(
        worker=state.worker, in_hand=state.in_hand, stalled_for_s=round((now - since).total_seconds(), 1)
    )


def check(pool: ConnectionPool[Any], settings: GatewaySettings) -> Health:
    """The database's answer and the stalled workers, through ``pool``."""
    try:
        with pool.connection(timeout=_DB_TIMEOUT_SECONDS) as conn:
            stalled = stalled_workers(conn, timedelta(seconds=settings.ingest_stall_after_s))
    except (psycopg.Error, PoolTimeout):
        return Health(status="unhealthy", database=False)
    now = datetime.now(UTC)
    return Health(
        status="unhealthy" if stalled else "ok",
        database=True,
        stalled_workers=[_stalled(s, now) for s in stalled],
    )


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database or an ingest worker is failing"}},
)
def healthz(request: Request) -> JSONResponse:
    """Healthy when the database answers and no ingest worker is stalled (else 503)."""
    health = check(request.app.state.pool, request.app.state.settings)
    return JSONResponse(health.model_dump(), status_code=200 if health.status == "ok" else 503)
