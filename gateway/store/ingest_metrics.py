"""The ingest counters behind ``/metrics``, and each worker's heartbeat behind ``/healthz``: written by
the ingest workers, read by the web API (``worker_counters``, ``rejection_counts``, ``stalled_workers``).

Counters: each worker adds to its own row, in its batch's transaction. So the counts are exactly what
was committed (a batch rolled back counts nothing), they survive restarts, and workers on several hosts
are summed by any gateway process; one row per worker means no worker waits on another's row lock
(``gateway.api.metrics`` says why this beats an in-process registry).

Heartbeats: each worker writes its own row of ``ingest_workers`` every few seconds (how many messages it
holds, and since when it has held some without committing), outside any batch, so a worker stuck on a
batch or hung shows as stalled to any gateway process, on any host (``stalled_workers``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg


def record_batch(
    conn: psycopg.Connection[Any],
    worker: str,
    *,
    lags_s: Sequence[float],
    stored: int,
    duplicates: int,
    rejected: Mapping[str, int],
) -> None:
    """Add one committed batch to ``worker``'s counters: one lag per message (seconds from its arrival at
    the worker to the store), new rows, duplicates, and rejections by code. Call inside the batch's
    transaction."""
    conn.execute(
        "INSERT INTO ingest_metrics AS m (worker, messages_received, observations_stored, duplicates,"
        " batches, lag_seconds_sum, lag_seconds_count, lag_seconds_last_max)"
        " VALUES (%s, %s, %s, %s, 1, %s, %s, %s)"
        " ON CONFLICT (worker) DO UPDATE SET"
        " messages_received = m.messages_received + EXCLUDED.messages_received,"
        " observations_stored = m.observations_stored + EXCLUDED.observations_stored,"
        " duplicates = m.duplicates + EXCLUDED.duplicates, batches = m.batches + 1,"
        " lag_seconds_sum = m.lag_seconds_sum + EXCLUDED.lag_seconds_sum,"
        " lag_seconds_count = m.lag_seconds_count + EXCLUDED.lag_seconds_count,"
        " lag_seconds_last_max = EXCLUDED.lag_seconds_last_max, updated_at = now()",
        (worker, len(lags_s), stored, duplicates, sum(lags_s), len(lags_s), max(lags_s, default=0.0)),
    )
    if rejected:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ingest_rejections AS r (worker, reason, count) VALUES (%s, %s, %s)"
                " ON CONFLICT (worker, reason) DO UPDATE SET count = r.count + EXCLUDED.count",
                [(worker, code, n) for code, n in sorted(rejected.items())],
            )


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What an ingest worker last said of itself (``ingest_workers``, migration 0004)."""

    worker: str
    in_hand: int
    waiting_since: datetime | None  # since then it has held messages without committing any
    last_progress: datetime
    heartbeat: datetime


def record_heartbeat(
    conn: psycopg.Connection[Any],
    worker: str,
    *,
    in_hand: int,
    waiting_since: datetime | None,
    last_progress: datetime,
) -> None:
    """Write ``worker``'s state (one upsert; autocommit or the caller's transaction)."""
    conn.execute(
        "INSERT INTO ingest_workers AS w (worker, in_hand, waiting_since, last_progress, heartbeat)"
        " VALUES (%s, %s, %s, %s, now())"
        " ON CONFLICT (worker) DO UPDATE SET in_hand = EXCLUDED.in_hand,"
        " waiting_since = EXCLUDED.waiting_since, last_progress = EXCLUDED.last_progress,"
        " heartbeat = EXCLUDED.heartbeat",
        (worker, in_hand, waiting_since, last_progress),
    )


# A worker row not heard of for a day belongs to a slot nobody runs any more (``--workers`` lowered, a
# host retired): it is no longer judged.
FORGET_AFTER = timedelta(days=1)


def stalled_workers(conn: psycopg.Connection[Any], stall_after: timedelta) -> list[WorkerState]:
    """Workers that have held messages for longer than ``stall_after`` without committing any: a
    worker stuck on a batch, hung, or killed with messages in hand and not restarted."""
    rows = conn.execute(
        "SELECT worker, in_hand, waiting_since, last_progress, heartbeat FROM ingest_workers"
        " WHERE in_hand > 0 AND waiting_since < now() - %s AND heartbeat > now() - %s"
        " ORDER BY worker",
        (stall_after, FORGET_AFTER),
    ).fetchall()
    return [WorkerState(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class IngestTotals:
    """What some ingest workers did, summed over their rows (``ingest_totals``)."""

    messages_received: int = 0  # messages in committed batches (redeliveries counted again)
    observations_stored: int = 0  # new rows
    duplicates: int = 0  # Observations already stored
    rejected: int = 0  # rejections of every code: an Observation each, or a whole unreadable message
    in_hand: int = 0  # messages taken but not committed, as of each worker's last heartbeat

    def since(self, earlier: IngestTotals) -> IngestTotals:
        """The counters' growth since ``earlier`` (``in_hand`` is a level, kept as it is)."""
        return IngestTotals(
            self.messages_received - earlier.messages_received,
            self.observations_stored - earlier.observations_stored,
            self.duplicates - earlier.duplicates,
            self.rejected - earlier.rejected,
            self.in_hand,
        )


def ingest_totals(conn: psycopg.Connection[Any], workers: Sequence[str]) -> IngestTotals:
    """The counters and messages in hand of ``workers`` (client ids), summed: what they committed, read
    from any process (the workers write these rows themselves)."""
    counted = conn.execute(
        "SELECT coalesce(sum(messages_received), 0), coalesce(sum(observations_stored), 0),"
        " coalesce(sum(duplicates), 0) FROM ingest_metrics WHERE worker = ANY(%s)",
        (list(workers),),
    ).fetchone()
    rejected = conn.execute(
        "SELECT coalesce(sum(count), 0) FROM ingest_rejections WHERE worker = ANY(%s)", (list(workers),)
    ).fetchone()
    in_hand = conn.execute(
        "SELECT coalesce(sum(in_hand), 0) FROM ingest_workers WHERE worker = ANY(%s)", (list(workers),)
    ).fetchone()
    assert counted is not None and rejected is not None and in_hand is not None
    return IngestTotals(int(counted[0]), int(counted[1]), int(counted[2]), int(rejected[0]), int(in_hand[0]))


@dataclass(frozen=True, slots=True)
class WorkerMetrics:
    """One worker's row of ``ingest_metrics``."""

    worker: str
    messages_received: int
    observations_stored: int
    duplicates: int
    batches: int
    lag_seconds_sum: float
    lag_seconds_count: int
    lag_seconds_last_max: float


def worker_counters(conn: psycopg.Connection[Any]) -> list[WorkerMetrics]:
    """Every worker's counters, as committed."""
    rows = conn.execute(
        "SELECT worker, messages_received, observations_stored, duplicates, batches,"
        " lag_seconds_sum, lag_seconds_count, lag_seconds_last_max FROM ingest_metrics"
    ).fetchall()
    return [
        WorkerMetrics(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), float(r[5]), int(r[6]),
                      float(r[7]))
        for r in rows
    ]  # fmt: skip


def rejection_counts(conn: psycopg.Connection[Any]) -> list[tuple[str, str, int]]:
    """Every ``(worker, reason, count)`` of rejected Observations or messages."""
    rows = conn.execute("SELECT worker, reason, count FROM ingest_rejections").fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]
