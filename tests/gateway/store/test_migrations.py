"""The schema migrates from empty, re-running is a no-op, and a failing migration rolls back."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from observation_factory import BASE_TIME, Home, nurse_of
from psycopg.types.json import Jsonb

from gateway.api.fhir_model import observation_id
from gateway.store.errors import MigrationError
from gateway.store.fhir_reads import observation_by_id
from gateway.store.migrate import MIGRATIONS_DIR, load_migrations, migrate


def test_migrate_from_empty_then_again_is_a_noop(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        first = migrate(conn)
        second = migrate(conn)
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert first == [m.version for m in load_migrations()]
    assert second == []
    assert {"observations", "patients", "hubs", "devices", "quarantine", "scores", "alerts"} <= tables


def test_failing_migration_rolls_back_and_names_itself(empty_database_url: str, tmp_path: Path) -> None:
    for source in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / source.name).write_text(source.read_text())
    bad_version = len(load_migrations()) + 1
    (tmp_path / f"{bad_version:04d}_broken.sql").write_text(
        "CREATE TABLE half_done (x int); SELECT no_such_function();"
    )
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        with pytest.raises(MigrationError) as caught:
            migrate(conn, tmp_path)
        assert caught.value.version == bad_version
        exists = conn.execute("SELECT to_regclass('half_done')").fetchone()
        applied = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    assert exists == (None,)
    assert applied == (bad_version - 1,)


def test_migration_names_must_have_no_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="without gaps"):
        load_migrations(tmp_path)


def test_observation_keys_are_back_filled_and_second_copies_quarantined(
    empty_database_url: str, tmp_path: Path
) -> None:
    shutil.copy(MIGRATIONS_DIR / "0001_initial.sql", tmp_path)
    home = Home()
    first, second = BASE_TIME, BASE_TIME + timedelta(days=1)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        assert migrate(conn, tmp_path) == [1]
        home.enroll(conn)
        # Rows stored under version 1: two readings, one of them twice (its effective time corrected
        # between the two deliveries), which version 1 could not tell apart.
        stored = [(home.spo2(95, first), first, "1 minute"), (home.spo2(96, second), second, "2 minutes")]
        stored.append((stored[0][0], first + timedelta(seconds=41), "0 minutes"))
        for resource, effective, age in stored:
            conn.execute(
                "INSERT INTO observations (municipality_id, identifier, patient_id, hub_id, device_id, kind,"
                " loinc, effective, value, unit, resource, received_at)"
                " VALUES (%s, %s, %s, %s, %s, 'spo2', '2708-6', %s, 95, '%%', %s, now() - %s::interval)",
                (
                    home.municipality_id,
                    resource["identifier"][0]["value"],
                    home.patient_id,
                    home.hub_id,
                    home.oximeter_id,
                    effective,
                    Jsonb(resource),
                    age,
                ),
            )
        assert migrate(conn) == [v.version for v in load_migrations()][1:]
        keys = conn.execute(
            "SELECT identifier, effective FROM observation_keys ORDER BY effective"
        ).fetchall()
        rows = conn.execute("SELECT identifier, effective FROM observations ORDER BY effective").fetchall()
        quarantined = conn.execute("SELECT topic, reason FROM quarantine").fetchall()
        found = observation_by_id(
            conn,
            nurse_of(conn, home),
            observation_id(home.municipality_id, home.oximeter_id, str(keys[0][0])),
        )
    identifiers = [resource["identifier"][0]["value"] for resource, _, _ in stored[:2]]
    assert keys == rows == [(identifiers[0], first), (identifiers[1], second)]  # the first received wins
    assert len(quarantined) == 1 and quarantined[0][0] == home.topic
    assert quarantined[0][1].startswith(f"duplicate: reading {identifiers[0]}")
    assert found is not None and found.at == first


def test_migration_0004_scopes_stored_readings_by_device_and_keeps_every_row(
    empty_database_url: str, tmp_path: Path
) -> None:
    for source in sorted(MIGRATIONS_DIR.glob("*.sql"))[:3]:
        shutil.copy(source, tmp_path)
    home = Home()
    readings = [home.spo2(95, BASE_TIME), home.spo2(96, BASE_TIME + timedelta(minutes=1))]
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        assert migrate(conn, tmp_path) == [1, 2, 3]
        home.enroll(conn)
        for resource in readings:  # stored by version 3's writers (the key trigger of 0002)
            conn.execute(
                "INSERT INTO observations (municipality_id, identifier, patient_id, hub_id, device_id, kind,"
                " loinc, effective, value, unit, resource) VALUES (%s, %s, %s, %s, %s, 'spo2', '2708-6',"
                " %s, 95, '%%', %s)",
                (
                    home.municipality_id,
                    resource["identifier"][0]["value"],
                    home.patient_id,
                    home.hub_id,
                    home.oximeter_id,
                    resource["effectiveDateTime"],
                    Jsonb(resource),
                ),
            )
        assert migrate(conn) == [v.version for v in load_migrations()][3:]
        keys = conn.execute(
            "SELECT id, municipality_id, device_id, identifier FROM observation_keys ORDER BY effective"
        ).fetchall()
        primary_key = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'observations'::regclass AND contype = 'p'"
        ).fetchone()
        nurse = nurse_of(conn, home)
        found = [observation_by_id(conn, nurse, key[0]) for key in keys]
        # The same identifier from another device is another reading now; before, it was refused.
        other = Home(municipality_id="9101", patient_id="p9", hub_id="hub9", oximeter_id="OXI9", cuff_id="B9")
        other.enroll(conn)
        conn.execute(
            "INSERT INTO observations (municipality_id, identifier, patient_id, hub_id, device_id, kind,"
            " loinc, effective, value, unit, resource) SELECT '9101', identifier, 'p9', 'hub9', 'OXI9',"
            " kind, loinc, effective, value, unit, resource FROM observations WHERE municipality_id = '0101'"
        )
        total = conn.execute("SELECT count(*) FROM observation_keys").fetchone()
    assert [key[3] for key in keys] == [r["identifier"][0]["value"] for r in readings]
    assert all(key[0] == observation_id(*key[1:]) and key[2] == home.oximeter_id for key in keys)
    assert primary_key == ("PRIMARY KEY (municipality_id, device_id, identifier, effective)",)
    assert [f.resource if f else None for f in found] == readings
    assert total == (4,)
