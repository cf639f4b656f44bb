"""How fast ``repository.insert_observation_batch`` stores validated Observations on a real PostgreSQL.

An embedded PostgreSQL with the current schema; one enrolled home per ``--patients``; distinct SpO2 and
pulse Observations (built and validated with the contract, as ingest does) stored in batches of
``--batch``, one transaction (commit) per batch, as the ingest worker does. Three figures in rows/s:

- new: every row is new (COPY into staging, key insert, move into ``observations``);
- resent: the same batches again (every row a duplicate: what a redelivery costs);
- corrected: the same readings with their effective time moved by a clock correction (duplicates found
  through the key table only).

Validation is done before the clock starts: only storage is timed.

    .venv/bin/python bench/repository_insert.py [--rows 50000] [--batch 1000] [--patients 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from fhir_contract.observation import build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.store.embedded import EmbeddedPostgres
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.migrate import migrate
from gateway.store.repository import (
    DeliveredObservation,
    Municipality,
    Patient,
    insert_observation_batch,
)

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
MUNICIPALITY = "0101"


def enroll(conn: psycopg.Connection[tuple[object, ...]], patients: int) -> None:
    homes = [
        Home(
            Patient(MUNICIPALITY, f"p{n}", f"Patient {n}"),
            f"hub{n}",
            (HomeDevice(f"OXI{n}", "pulse-oximeter"),),
        )
        for n in range(patients)
    ]
    enroll_homes(conn, [Municipality(MUNICIPALITY, "Bench")], homes)


def rows(count: int, patients: int) -> list[DeliveredObservation]:
    out = []
    for i in range(count):
        n = i % patients
        kind, value, unit = (
            ("spo2", 90 + i % 9, "%") if i % 2 == 0 else ("pulse-rate-oximeter", 60 + i % 30, "/min")
        )
        resource = build_observation(
            Reading(kind, Quantity(Decimal(value), unit)),
            patient_id=f"p{n}",
            device_id=f"OXI{n}",
            hub_id=f"hub{n}",
            effective=START + timedelta(seconds=i),
        )
        out.append(DeliveredObservation(MUNICIPALITY, f"hub{n}", validate_observation(resource)))
    return out


def corrected(batch: Sequence[DeliveredObservation]) -> list[DeliveredObservation]:
    """The same readings (same identifiers) with the effective time moved by a clock correction."""
    return [
        dataclasses.replace(
            row,
            observation=dataclasses.replace(
                row.observation, effective=row.observation.effective + timedelta(seconds=7)
            ),
        )
        for row in batch
    ]


def store(url: str, data: Sequence[DeliveredObservation], batch: int) -> tuple[float, int]:
    """rows/s and the number of new rows, committing once per batch."""
    inserted = 0
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for at in range(0, len(data), batch):
            with conn.transaction():
                inserted += insert_observation_batch(conn, data[at : at + batch]).inserted
        elapsed = time.perf_counter() - started
    return len(data) / elapsed, inserted


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--patients", type=int, default=20)
    args = parser.parse_args()
    data = rows(args.rows, args.patients)
    with EmbeddedPostgres() as admin_url:
        url = admin_url
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            enroll(conn, args.patients)
        # Warm the session (staging table, partitions, plans) outside the timed runs.
        store(url, data[:1], 1)
        new_rate, inserted = store(url, data[1:], args.batch)
        resent_rate, again = store(url, data, args.batch)
        corrected_rate, moved = store(url, corrected(data), args.batch)
    print(f"rows={args.rows} batch={args.batch} patients={args.patients}")
    print(f"new:       {new_rate:10,.0f} rows/s  ({inserted} inserted)")
    print(f"resent:    {resent_rate:10,.0f} rows/s  ({again} inserted)")
    print(f"corrected: {corrected_rate:10,.0f} rows/s  ({moved} inserted)")


if __name__ == "__main__":
    main()
