"""The schema migrates from empty, re-running is a no-op, and a failing migration rolls back."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from gateway.store.errors import MigrationError
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
