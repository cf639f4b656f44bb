"""TimescaleDB for ``observations`` when the server has it; native partitions and a plain view when not.

Migration 0002 calls ``prepare_observation_storage`` (in its transaction, before its SQL). It decides once,
from the server it runs on (``plan_storage``):

- TimescaleDB absent (or present but not in ``shared_preload_libraries``): ``observations`` stays natively
  partitioned (``gateway.store.partitions`` adds monthly partitions), one INFO line says so, and
  ``observation_daily`` is a plain view.
- TimescaleDB present and ``observations`` still empty (a new database): the extension is created, the
  partitioned table of migration 0001 is replaced by the same table as a hypertable (a declaratively
  partitioned table cannot be converted), compressed after 7 days (segments: municipality, patient,
  kind), and ``observation_daily`` is a continuous aggregate refreshed by a policy (real-time: it also
  shows rows not yet materialised).
- TimescaleDB present but ``observations`` already holds rows: the table is left natively partitioned
  (converting means copying every row, which is no job for a migration's transaction) and a WARNING says
  so; ``observation_daily`` is the plain view. docs/storage.md describes the offline conversion.

Either way ``observation_daily`` has the same columns, so its readers do not care which it is: per
municipality, patient, kind and UTC day, ``readings`` (count) and ``min_value``, ``avg_value``,
``max_value`` of the main value (``value``, or the systolic pressure of a blood-pressure panel).
Preliminary Observations (a cuff's pressure while it inflates) are left out, as in scoring.

Left to others: the keys table and its back-fill (the migration's SQL), monthly partitions
(``gateway.store.partitions``, which skips a hypertable).
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

import psycopg

log = logging.getLogger(__name__)

COMPRESS_AFTER = "7 days"
# Chunks of a week: a patient's last days, what scoring and the worklist read, sit in one or two chunks.
CHUNK_INTERVAL = "7 days"

# The main numeric value of a reading: its value, or the systolic pressure of a blood-pressure panel (the
# only panel in the terminology). Preliminary rows never count (see the module docstring).
_MAIN_VALUE = "coalesce(value, (components ->> 'systolic')::double precision)"
_NOT_PRELIMINARY = "(resource ->> 'status') IS DISTINCT FROM 'preliminary'"

_PLAIN_VIEW = f"""
CREATE OR REPLACE VIEW observation_daily AS
SELECT municipality_id, patient_id, kind, date_trunc('day', effective, 'UTC') AS day,
       count(*) AS readings, min({_MAIN_VALUE}) AS min_value, avg({_MAIN_VALUE}) AS avg_value,
       max({_MAIN_VALUE}) AS max_value
FROM observations
WHERE {_NOT_PRELIMINARY}
GROUP BY municipality_id, patient_id, kind, date_trunc('day', effective, 'UTC')
"""

_CONTINUOUS_AGGREGATE = f"""
CREATE MATERIALIZED VIEW observation_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT municipality_id, patient_id, kind, time_bucket(INTERVAL '1 day', effective) AS day,
       count(*) AS readings, min({_MAIN_VALUE}) AS min_value, avg({_MAIN_VALUE}) AS avg_value,
       max({_MAIN_VALUE}) AS max_value
FROM observations
WHERE {_NOT_PRELIMINARY}
GROUP BY municipality_id, patient_id, kind, time_bucket(INTERVAL '1 day', effective)
WITH NO DATA
"""

# Migration 0001's table, as a plain table to become a hypertable (0002 runs right after 0001, so this
# is the whole table at that point), with the primary key migration 0004 gives the plain table (a reading
# is scoped by municipality and device) and the canonical columns migration 0006 adds to it (which
# 0006 then finds there).
OBSERVATIONS_TABLE = """
CREATE TABLE observations (
    municipality_id text NOT NULL,
    identifier  text NOT NULL,
    patient_id  text NOT NULL,
    hub_id      text NOT NULL,
    device_id   text NOT NULL,
    kind        text NOT NULL,
    loinc       text NOT NULL,
    effective   timestamptz NOT NULL,
    value       double precision,
    unit        text,
    components  jsonb,
    resource    jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    canonical_value double precision,
    canonical_unit text,
    canonical_components jsonb,
    PRIMARY KEY (municipality_id, device_id, identifier, effective)
)
"""


class StoragePlan(StrEnum):
    """What migration 0002 does with ``observations`` on this server."""

    NOT_AVAILABLE = "not available"
    NOT_PRELOADED = "available but not in shared_preload_libraries"
    CONVERT_EMPTY_TABLE = "convert the empty table to a hypertable"
    ALREADY_HYPERTABLE = "already a hypertable"
    KEEP_NATIVE_TABLE = "native table already holds rows"

    @property
    def uses_timescaledb(self) -> bool:
        return self in (StoragePlan.CONVERT_EMPTY_TABLE, StoragePlan.ALREADY_HYPERTABLE)


def decide(available: bool, loadable: bool, partitioned: bool, has_rows: bool) -> StoragePlan:
    """The plan from the facts: is TimescaleDB installable, loadable, and what ``observations`` is now."""
    if not available:
        return StoragePlan.NOT_AVAILABLE
    if not loadable:
        return StoragePlan.NOT_PRELOADED
    if not partitioned:
        return StoragePlan.ALREADY_HYPERTABLE
    return StoragePlan.KEEP_NATIVE_TABLE if has_rows else StoragePlan.CONVERT_EMPTY_TABLE


def timescaledb_available(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server has the ``timescaledb`` extension installed (``pg_available_extensions``)."""
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return row is not None


def _timescaledb_loadable(conn: psycopg.Connection[Any]) -> bool:
    # CREATE EXTENSION timescaledb fails unless the library is preloaded (or the extension exists already).
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
        " OR current_setting('shared_preload_libraries') ~ '(^|[ ,])timescaledb'"
    ).fetchone()
    return bool(row and row[0])


def plan_storage(conn: psycopg.Connection[Any]) -> StoragePlan:
    """Look at the server and the ``observations`` table (which must exist) and decide."""
    if not timescaledb_available(conn):
        return StoragePlan.NOT_AVAILABLE
    row = conn.execute(
        "SELECT c.relkind = 'p', EXISTS (SELECT 1 FROM observations)"
        " FROM pg_class c WHERE c.oid = 'observations'::regclass"
    ).fetchone()
    partitioned, has_rows = (bool(row[0]), bool(row[1])) if row else (True, False)
    return decide(True, _timescaledb_loadable(conn), partitioned, has_rows)


def prepare_observation_storage(conn: psycopg.Connection[Any]) -> StoragePlan:
    """Migration 0002's Python part: choose the engine for ``observations``, create ``observation_daily``."""
    plan = plan_storage(conn)
    if plan is StoragePlan.NOT_AVAILABLE:
        log.info("TimescaleDB is not available: observations stay natively partitioned")
    elif plan is StoragePlan.NOT_PRELOADED:
        log.warning("TimescaleDB is installed but not preloaded: observations stay natively partitioned")
    elif plan is StoragePlan.KEEP_NATIVE_TABLE:
        log.warning(
            "TimescaleDB is available but observations already holds rows: the table stays natively"
            " partitioned (docs/storage.md says how to convert it offline)"
        )
    if not plan.uses_timescaledb:
        conn.execute(_PLAIN_VIEW)
        return plan
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    if plan is StoragePlan.CONVERT_EMPTY_TABLE:
        _replace_with_hypertable(conn)
    daily = conn.execute(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass('observation_daily')"
    ).fetchone()
    if daily is None or daily[0] == "v":  # none yet, or the plain view of an earlier native table
        conn.execute("DROP VIEW IF EXISTS observation_daily")
        conn.execute(_CONTINUOUS_AGGREGATE)
        # Refresh the last 30 days hourly; older days are final (a week-long backlog still fits).
        conn.execute(
            "SELECT add_continuous_aggregate_policy('observation_daily', start_offset => INTERVAL '30 days',"
            " end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => true)"
        )
    log.info("observations is a TimescaleDB hypertable with compression and observation_daily")
    return plan


def _replace_with_hypertable(conn: psycopg.Connection[Any]) -> None:
    """Swap migration 0001's empty partitioned table for the same table as a compressed hypertable."""
    conn.execute("DROP TABLE observations CASCADE")  # empty: its partitions and indexes go with it
    conn.execute(OBSERVATIONS_TABLE)
    conn.execute(
        "CREATE INDEX observations_patient_time ON observations"
        " (municipality_id, patient_id, kind, effective DESC)"
    )
    conn.execute(
        "SELECT create_hypertable('observations', 'effective',"
        f" chunk_time_interval => INTERVAL '{CHUNK_INTERVAL}')"
    )
    conn.execute(
        "ALTER TABLE observations SET (timescaledb.compress,"
        " timescaledb.compress_segmentby = 'municipality_id, patient_id, kind',"
        " timescaledb.compress_orderby = 'effective DESC, identifier')"
    )
    conn.execute(
        f"SELECT add_compression_policy('observations', INTERVAL '{COMPRESS_AFTER}', if_not_exists => true)"
    )
