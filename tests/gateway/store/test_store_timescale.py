"""TimescaleDB when the server has it, native partitions and a plain ``observation_daily`` view when not.

This machine's PostgreSQL has no TimescaleDB (neither Debian nor PyPI ships it here), so the plain path
runs for real and the Timescale branch is proven to be chosen only when the extension is available.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from observation_factory import BASE_TIME, Home

from fhir_contract.observation import build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.store.migrate import migrate
from gateway.store.partitions import ensure_partitions_for, forget_cached_partitions, natively_partitioned
from gateway.store.repository import insert_observations
from gateway.store.timescale import (
    OBSERVATIONS_TABLE,
    StoragePlan,
    decide,
    plan_storage,
    prepare_observation_storage,
    timescaledb_available,
)

HOME = Home()
OTHER = Home(municipality_id="0147", patient_id="p2", hub_id="hub2", oximeter_id="OXI2", cuff_id="BPC2")

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as connection:  # closed after the test
        HOME.enroll(connection)
        OTHER.enroll(connection)
        yield connection


def test_timescaledb_branch_is_chosen_only_when_the_extension_is_available(conn: Conn) -> None:
    plan = plan_storage(conn)
    if timescaledb_available(conn):
        assert plan is not StoragePlan.NOT_AVAILABLE
    else:
        assert plan is StoragePlan.NOT_AVAILABLE and plan == "not available"
        assert not plan.uses_timescaledb
    # This machine's PostgreSQL (the embedded wheel) has no TimescaleDB: the plain path is what runs here.
    assert not timescaledb_available(conn)


@pytest.mark.parametrize(
    ("available", "loadable", "partitioned", "has_rows"), list(itertools.product((False, True), repeat=4))
)
def test_decision_uses_timescaledb_only_when_installed_loadable_and_the_table_allows(
    available: bool, loadable: bool, partitioned: bool, has_rows: bool
) -> None:
    plan = decide(available, loadable, partitioned, has_rows)
    assert plan.uses_timescaledb == (available and loadable and (not partitioned or not has_rows))
    if not available:
        assert plan is StoragePlan.NOT_AVAILABLE
    elif available and loadable and partitioned and has_rows:
        assert plan is StoragePlan.KEEP_NATIVE_TABLE


def test_migration_without_timescaledb_logs_one_info_line_and_keeps_native_partitions(
    empty_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="gateway.store.timescale"),
        psycopg.connect(empty_database_url, autocommit=True) as conn,
    ):
        migrate(conn)
        assert natively_partitioned(conn)
        kind = conn.execute(
            "SELECT relkind FROM pg_class WHERE oid = 'observation_daily'::regclass"
        ).fetchone()
    lines = [r for r in caplog.records if r.name == "gateway.store.timescale"]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (logging.INFO, "TimescaleDB is not available: observations stay natively partitioned")
    ]
    assert kind == ("v",)


def _spo2(value: float, at: datetime, home: Home = HOME, *, preliminary: bool = False) -> dict[str, Any]:
    return build_observation(
        Reading("spo2", Quantity(Decimal(str(value)), "%")),
        patient_id=home.patient_id,
        device_id=home.oximeter_id,
        hub_id=home.hub_id,
        effective=at,
        preliminary=preliminary,
    )


def test_observation_daily_summarises_each_patient_kind_and_utc_day(conn: Conn) -> None:
    day1 = datetime(2026, 11, 20, tzinfo=UTC)
    day2 = day1 + timedelta(days=1)
    resources = [
        _spo2(90, day1 + timedelta(hours=8)),
        _spo2(94, day1 + timedelta(hours=23, minutes=59)),
        _spo2(80, day1 + timedelta(hours=9), preliminary=True),  # never summarised
        _spo2(96, day2 + timedelta(minutes=1)),
        HOME.blood_pressure(120, 80, day1 + timedelta(hours=8)),
        HOME.blood_pressure(140, 90, day1 + timedelta(hours=20)),
    ]
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, [validate_observation(r) for r in resources])
    insert_observations(
        conn, OTHER.municipality_id, OTHER.hub_id, [validate_observation(_spo2(70, day1, OTHER))]
    )
    rows = conn.execute(
        "SELECT patient_id, kind, day, readings, min_value, avg_value, max_value FROM observation_daily"
        " WHERE municipality_id = %s ORDER BY kind, day",
        (HOME.municipality_id,),
    ).fetchall()
    assert rows == [
        (HOME.patient_id, "blood-pressure", day1, 2, 120.0, 130.0, 140.0),  # systolic is the main value
        (HOME.patient_id, "spo2", day1, 2, 90.0, 92.0, 94.0),
        (HOME.patient_id, "spo2", day2, 1, 96.0, 96.0, 96.0),
    ]
    other = conn.execute(
        "SELECT patient_id, readings, avg_value FROM observation_daily WHERE municipality_id = %s",
        (OTHER.municipality_id,),
    ).fetchall()
    assert other == [(OTHER.patient_id, 1, 70.0)]


def test_migration_and_its_step_run_again_change_nothing(conn: Conn) -> None:
    insert_observations(conn, HOME.municipality_id, HOME.hub_id, [validate_observation(_spo2(95, BASE_TIME))])
    before = conn.execute("SELECT * FROM observation_daily").fetchall()
    assert migrate(conn) == []
    with conn.transaction():
        assert prepare_observation_storage(conn) is StoragePlan.NOT_AVAILABLE
    assert conn.execute("SELECT * FROM observation_daily").fetchall() == before
    assert natively_partitioned(conn)


def test_partitions_are_not_created_for_a_table_that_is_not_declaratively_partitioned(
    empty_database_url: str,
) -> None:
    # As on a hypertable: the table is a plain one, and TimescaleDB (not this module) makes its chunks.
    forget_cached_partitions()
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE observations (effective timestamptz NOT NULL)")
        assert not natively_partitioned(conn)
        with conn.transaction():
            ensure_partitions_for(conn, [BASE_TIME, BASE_TIME - timedelta(days=40)])
        tables = conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'observations_y%'").fetchone()
    assert tables == (0,)


def test_hypertable_has_exactly_the_columns_and_key_of_the_migrated_table(database_url: str) -> None:
    # The Timescale branch drops 0001's empty table and creates it again with the key migration 0004 gives
    # the plain table and the columns 0006 adds to it: the two must not drift apart.
    def shape(conn: Conn, schema: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = 'observations' ORDER BY ordinal_position",
            (schema,),
        ).fetchall()
        key = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = %s::regclass"
            " ORDER BY a.attname",
            (f"{schema}.observations",),
        ).fetchall()
        return columns, key

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA scratch")
        conn.execute("SET search_path = scratch")
        conn.execute(OBSERVATIONS_TABLE)
        recreated = shape(conn, "scratch")
        assert recreated == shape(conn, "public")
    key = [("device_id",), ("effective",), ("identifier",), ("municipality_id",)]
    assert len(recreated[0]) == 16 and recreated[1] == key
