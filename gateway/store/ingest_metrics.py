"""The ingest counters behind ``/metrics``: each worker adds to its own row, in its batch's transaction.

So the counts are exactly what was committed (a batch rolled back counts nothing), they survive
restarts, and workers on several hosts are summed by any gateway process; one row per worker means no
worker waits on another's row lock (``gateway.api.metrics`` says why this beats an in-process registry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
