"""Bytes on disk per stored reading, on the real schema: what a year of readings costs in PostgreSQL.

An embedded PostgreSQL with the schema migrated and ``--patients`` homes enrolled (hub, blood-pressure
monitor, pulse oximeter, scale, thermometer). Each patient follows the daily plan of
``models.cohort.profiles`` for ``--days`` days: in the morning weight (1 Observation), blood pressure
(the panel and the cuff's pulse: 2), SpO2 and the oximeter's pulse (2) and temperature (1); in the
evening blood pressure and SpO2 again (4): 10 Observations a day, built as the hub builds them (device
time, received time) and validated as ingest validates them, stored with
``repository.insert_observation_batch`` 1,000 a commit, as the ingest worker stores them. Then, after
``VACUUM ANALYZE``:

- ``observations``: heap and TOAST of every partition, and their indexes; ``observation_keys`` (one row
  per reading, not partitioned) and its indexes; in bytes per reading;
- the ``resource`` column alone (the Observation as received: ``pg_column_size``, as stored);
- a proxy for columnar compression (TimescaleDB is not installed here, so its ratio cannot be measured):
  the same rows regrouped as TimescaleDB's compression groups them with this schema's settings
  (``gateway.store.timescale``: segments by municipality, patient and kind, ordered by effective time,
  one chunk a week), each column of a segment as one array, stored in a plain table and so compressed by
  PostgreSQL's TOAST (pglz; lz4 too where PostgreSQL has it). TimescaleDB has its own encodings for
  numbers and times (delta, Gorilla), better than that; most of the bytes here are the JSON, for which a
  general-purpose compressor is what anyone has. An approximation, printed as an estimate.

    .venv/bin/python bench/storage_size.py [--patients 250] [--days 40]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.store.embedded import EmbeddedPostgres
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.migrate import migrate
from gateway.store.repository import DeliveredObservation, Municipality, Patient, insert_observation_batch

MUNICIPALITY = "0101"
BATCH = 1_000  # rows a commit, as the ingest worker takes them when it is behind
DEVICES = (
    ("bp", "blood-pressure-monitor"),
    ("ox", "pulse-oximeter"),
    ("sc", "weight-scale"),
    ("th", "thermometer"),
)
# (hour of the day, device, readings) of the daily plan (models.cohort.profiles.DAILY_PLAN)
PLAN = (
    (7.5, "sc", ("body-weight",)),
    (7.6, "bp", ("blood-pressure", "pulse-rate-cuff")),
    (7.7, "ox", ("spo2", "pulse-rate-oximeter")),
    (7.8, "th", ("body-temperature",)),
    (19.5, "bp", ("blood-pressure", "pulse-rate-cuff")),
    (19.6, "ox", ("spo2", "pulse-rate-oximeter")),
)
SEGMENT_ROWS = 1_000  # TimescaleDB's maximum rows per compressed segment row


def reading(kind: str, rng: Random, device_time: datetime) -> Reading:
    """A plausible value of ``kind`` with the precision devices send."""
    if kind == "blood-pressure":
        systolic = rng.randint(105, 165)
        diastolic = systolic - rng.randint(35, 65)
        return Reading(
            kind,
            components=(
                Component("systolic", Quantity(Decimal(systolic), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal(diastolic), "mm[Hg]")),
                Component("mean", Quantity(Decimal(diastolic + (systolic - diastolic) // 3), "mm[Hg]")),
            ),
            device_time=device_time,
        )
    value, unit = {
        "pulse-rate-cuff": (Decimal(rng.randint(55, 100)), "/min"),
        "pulse-rate-oximeter": (Decimal(rng.randint(55, 100)), "/min"),
        "spo2": (Decimal(rng.randint(89, 99)), "%"),
        "body-weight": (Decimal(rng.randint(45_000, 120_000)) / 1000, "kg"),
        "body-temperature": (Decimal(rng.randint(360, 385)) / 10, "Cel"),
    }[kind]
    return Reading(kind, Quantity(value, unit), device_time=device_time)


def readings(patients: int, days: int, start: datetime) -> Iterator[DeliveredObservation]:
    rng = Random(1)
    for day in range(days):
        for n in range(patients):
            for hour, device, kinds in PLAN:
                effective = start + timedelta(days=day, hours=hour + rng.uniform(-1, 1))
                for kind in kinds:
                    resource = build_observation(
                        reading(kind, rng, effective.replace(tzinfo=None, microsecond=0)),
                        patient_id=f"p{n}",
                        device_id=f"{device}{n}",
                        hub_id=f"hub{n}",
                        effective=effective,
                        received=effective + timedelta(seconds=rng.uniform(2, 30)),
                    )
                    yield DeliveredObservation(MUNICIPALITY, f"hub{n}", validate_observation(resource))


def fresh_database(admin_url: str, patients: int) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS storage_size")
        conn.execute("CREATE DATABASE storage_size")
    url = make_conninfo(admin_url, dbname="storage_size")
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        homes = [
            Home(
                Patient(MUNICIPALITY, f"p{n}", f"Patient {n}"),
                f"hub{n}",
                tuple(HomeDevice(f"{short}{n}", kind) for short, kind in DEVICES),
            )
            for n in range(patients)
        ]
        enroll_homes(conn, [Municipality(MUNICIPALITY, "Bench")], homes)
    return url


def one(conn: psycopg.Connection[tuple[Any, ...]], query: str) -> float:
    """The one number ``query`` returns (0 for NULL); the queries are this file's constants."""
    row = conn.execute(query.encode()).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


LEAVES = "SELECT relid FROM pg_partition_tree('observations') WHERE isleaf"


def regrouped_size(conn: psycopg.Connection[tuple[Any, ...]], compression: str) -> float:
    """Bytes of the rows regrouped as TimescaleDB's compression would group them (see the docstring)."""
    conn.execute(sql.SQL("SET default_toast_compression = {}").format(sql.Literal(compression)))
    conn.execute("DROP TABLE IF EXISTS regrouped")
    conn.execute(
        """
        CREATE TABLE regrouped AS
        SELECT municipality_id, patient_id, kind,
               array_agg(identifier ORDER BY effective DESC, identifier) AS identifier,
               array_agg(hub_id ORDER BY effective DESC, identifier) AS hub_id,
               array_agg(device_id ORDER BY effective DESC, identifier) AS device_id,
               array_agg(loinc ORDER BY effective DESC, identifier) AS loinc,
               array_agg(effective ORDER BY effective DESC, identifier) AS effective,
               array_agg(value ORDER BY effective DESC, identifier) AS value,
               array_agg(unit ORDER BY effective DESC, identifier) AS unit,
               array_agg(components ORDER BY effective DESC, identifier) AS components,
               array_agg(resource ORDER BY effective DESC, identifier) AS resource,
               array_agg(received_at ORDER BY effective DESC, identifier) AS received_at,
               array_agg(canonical_value ORDER BY effective DESC, identifier) AS canonical_value,
               array_agg(canonical_unit ORDER BY effective DESC, identifier) AS canonical_unit,
               array_agg(canonical_components ORDER BY effective DESC, identifier) AS canonical_components
        FROM (SELECT *, (row_number() OVER (PARTITION BY municipality_id, patient_id, kind,
                                                         date_bin('7 days', effective, '2000-01-03')
                                            ORDER BY effective DESC) - 1) / 1000 AS part,
                     date_bin('7 days', effective, '2000-01-03') AS chunk
              FROM observations) AS o
        GROUP BY municipality_id, patient_id, kind, chunk, part
        """
    )
    conn.execute("VACUUM ANALYZE regrouped")
    return one(conn, "SELECT pg_total_relation_size('regrouped')")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--patients", type=int, default=250, help="homes, one patient each")
    parser.add_argument("--days", type=int, default=40, help="days of the daily plan (10 readings a day)")
    args = parser.parse_args()
    start = (datetime.now(UTC) - timedelta(days=args.days + 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    with EmbeddedPostgres() as admin_url:
        url = fresh_database(admin_url, args.patients)
        rows = list(readings(args.patients, args.days, start))
        began = time.monotonic()
        with psycopg.connect(url) as conn:
            for i in range(0, len(rows), BATCH):
                with conn.transaction():
                    insert_observation_batch(conn, rows[i : i + BATCH])
        stored_s = time.monotonic() - began
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            count = one(conn, "SELECT count(*) FROM observations")
            heap = one(conn, f"SELECT sum(pg_table_size(relid)) FROM ({LEAVES}) l")
            indexes = one(conn, f"SELECT sum(pg_indexes_size(relid)) FROM ({LEAVES}) l")
            keys = one(conn, "SELECT pg_table_size('observation_keys')")
            key_indexes = one(conn, "SELECT pg_indexes_size('observation_keys')")
            resource = one(conn, "SELECT avg(pg_column_size(resource)) FROM observations")
            resource_text = one(conn, "SELECT avg(octet_length(resource::text)) FROM observations")
            partitions = one(conn, f"SELECT count(*) FROM ({LEAVES}) l")
            pglz = regrouped_size(conn, "pglz")
            try:
                lz4 = regrouped_size(conn, "lz4")
            except psycopg.errors.Error:
                lz4 = 0.0  # PostgreSQL built without lz4
            segments = one(conn, "SELECT count(*) FROM regrouped")
            version = conn.execute("SHOW server_version").fetchone()
    total = heap + indexes + keys + key_indexes
    print(
        f"{count:,.0f} Observations ({args.patients} patients x {args.days} days x 10), stored in "
        f"{stored_s:.1f} s in {partitions:.0f} partitions; PostgreSQL {version[0] if version else '?'}"
    )
    per = [
        ("observations: heap + TOAST", heap),
        ("observations: indexes (primary key, patient/kind/time)", indexes),
        ("observation_keys: heap", keys),
        ("observation_keys: indexes (id, identifier)", key_indexes),
        ("total", total),
    ]
    for label, size in per:
        print(f"  {label:55} {size / count:8.0f} bytes/reading  {size / 1e6:9.1f} MB")
    print(
        f"  resource column (jsonb as stored) {resource:,.0f} bytes; as JSON text {resource_text:,.0f} bytes"
    )
    print(
        f"proxy for columnar compression ({segments:,.0f} segments: patient x kind x week; estimate):\n"
        f"  regrouped, pglz: {pglz / count:6.0f} bytes/reading ({heap / pglz:.1f}x smaller than the heap)"
    )
    if lz4:
        print(
            f"  regrouped, lz4:  {lz4 / count:6.0f} bytes/reading ({heap / lz4:.1f}x smaller than the heap)"
        )


if __name__ == "__main__":
    main()
