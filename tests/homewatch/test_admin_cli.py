"""``homewatch admin``: a municipality's administrator enrols homes from the command line, on a real
PostgreSQL. Every command changes what it says, again is idempotent where it can be, and bad input (or
an unreachable database) is one line on stderr and exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner, Result

from edge_agent.config import HubConfig
from gateway.broker import BrokerEndpoint, free_port
from gateway.service import EMBEDDED_DATABASE, Gateway, GatewayOptions
from homewatch import admin_cli, cli_common
from homewatch.cli import app

runner = CliRunner()
CUFF = "C4:7C:8D:6A:12:0F"
# No broker listens here: what these commands would publish is not published (tests/gateway/administration
# publish to a real one).
NO_BROKER = {"HOMEWATCH_MQTT_PORT": str(free_port())}


def admin(database_url: str | None, *args: str, env: Mapping[str, str | None] | None = None) -> Result:
    url = [] if database_url is None else ["--database-url", database_url]
    return runner.invoke(app, ["admin", *args, *url, "--by", "ops"], env={**NO_BROKER, **(env or {})})


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(result: Result) -> str:
    """The one line a refusal prints (exit code 2, nothing on stdout)."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def home(database_url: str) -> str:
    """København, its patient p-1 and the patient's hub hub-1 (kit not kept)."""
    ok(admin(database_url, "municipality", "add", "--code", "0101", "--name", "København"))
    ok(
        admin(database_url, "patient", "add", "--municipality", "0101", "--id", "p-1", "--name", "Ane Hansen",
              "--phone", "+45 00 00 00 01", "--condition", "hf", "--condition", "copd")
    )  # fmt: skip
    return database_url


def test_an_administrator_enrols_a_home_and_the_written_kit_runs_the_hub(
    home: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    kit = tmp_path / "hub-1"
    out = ok(
        admin(home, "hub", "enroll", "--municipality", "0101", "--hub", "hub-1", "--patient", "p-1",
              "--out", str(kit), "--outbox-path", "outbox.sqlite3")
    )  # fmt: skip
    assert "enrolled hub hub-1" in out and "no accounts" in out
    assert f"homewatch edge run --config {kit / 'hub.toml'}" in out
    assigned = ok(
        admin(home, "device", "assign", "--hub", "hub-1", "--patient", "p-1", "--kind", "blood-pressure",
              "--address", CUFF.lower(), "--expected-every", "1d12h")
    )  # fmt: skip
    assert "device dev-c47c8d6a120f assigned to hub hub-1" in assigned and "not published" in assigned
    again = ok(
        admin(home, "device", "assign", "--hub", "hub-1", "--patient", "p-1", "--kind", "blood-pressure-cuff",
              "--address", CUFF, "--expected-every", "36h")
    )  # fmt: skip
    assert "already: nothing changed" in again
    ok(admin(home, "hub", "enroll", "--municipality", "0101", "--hub", "hub-1", "--patient", "p-1",
             "--out", str(kit), "--outbox-path", "outbox.sqlite3"))  # fmt: skip
    config = HubConfig.from_toml(kit / "hub.toml")
    assert (config.municipality, config.hub_id, config.patient_id) == ("0101", "hub-1", "p-1")
    assert [(d.id, d.address, d.kind) for d in config.devices] == [
        ("dev-c47c8d6a120f", CUFF, "blood-pressure-cuff")
    ]
    assert config.outbox_path == kit / "outbox.sqlite3"
    row = db.execute("SELECT kind, expected_interval::text FROM devices").fetchone()
    assert row == ("blood-pressure-cuff", "1 day 12:00:00")
    assert db.execute("SELECT conditions FROM patients").fetchone() == (["heart-failure", "copd"],)
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log WHERE username = 'ops' ORDER BY id")]
    assert actions == ["municipality-add", "patient-add", "hub-enrol", "device-assign", "hub-credentials"]


def test_adding_again_updates_and_says_so(home: str, db: psycopg.Connection[Any]) -> None:
    assert "unchanged" in ok(admin(home, "municipality", "add", "--code", "0101", "--name", "København"))
    assert "updated" in ok(
        admin(home, "municipality", "add", "--code", "0101", "--name", "Københavns Kommune")
    )
    ok(admin(home, "team", "add", "--municipality", "0101", "--id", "0101-nord", "--name", "Team Nord"))
    updated = ok(
        admin(home, "patient", "add", "--municipality", "0101", "--id", "p-1", "--name", "Ane Hansen",
              "--care-team", "0101-nord", "--birth-date", "1941-02-03")
    )  # fmt: skip
    assert "patient p-1 of municipality 0101: updated" in updated
    row = db.execute("SELECT care_team_id, birth_date::text, conditions, phone FROM patients").fetchone()
    assert row == ("0101-nord", "1941-02-03", [], None)


def test_removing_and_revoking_cut_the_home_off_and_again_is_safe(
    home: str, db: psycopg.Connection[Any], tmp_path: Path, broker: BrokerEndpoint
) -> None:
    on_broker = {"HOMEWATCH_MQTT_PORT": str(broker.port)}
    enroll = (
        "hub",
        "enroll",
        "--municipality",
        "0101",
        "--hub",
        "hub-1",
        "--patient",
        "p-1",
        "--out",
        str(tmp_path),
    )
    ok(admin(home, *enroll, env=on_broker))
    assigned = ok(admin(home, "device", "assign", "--hub", "hub-1", "--patient", "p-1", "--kind", "scale",
                        "--address", CUFF, "--id", "scale-1", env=on_broker))  # fmt: skip
    assert "hub hub-1's config published" in assigned
    config = retained(broker, "homewatch/v1/0101/hub-1/config")
    assert config is not None and json.loads(config)["devices"][0]["id"] == "scale-1"
    assert "device scale-1 removed" in ok(
        admin(home, "device", "remove", "--device", "scale-1", env=on_broker)
    )
    assert "removed already" in ok(admin(home, "device", "remove", "--device", "scale-1", env=on_broker))
    # the broker away: the gateway refuses the hub at once, and the administrator is told to run it again
    line = refused(admin(home, "hub", "revoke", "--hub", "hub-1"))
    assert "revoked at the gateway, which refuses it already" in line and "again" in line
    assert db.execute("SELECT revoked_by FROM hubs").fetchone() == ("ops",)
    again = ok(admin(home, "hub", "revoke", "--hub", "hub-1", env=on_broker))
    assert "hub hub-1 was revoked already" in again
    assert retained(broker, "homewatch/v1/0101/hub-1/config") is None  # its retained config is gone
    assert "never used again" in refused(admin(home, *enroll, env=on_broker))


def retained(broker: BrokerEndpoint, topic: str) -> bytes | None:
    """The message retained on ``topic``, None when there is none (a fresh subscriber waits a moment)."""
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, message: got.append(bytes(message.payload))
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    deadline = time.monotonic() + 1.0
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    return got[0] if got else None


def test_a_user_is_invited_and_the_link_is_printed(home: str, db: psycopg.Connection[Any]) -> None:
    out = ok(
        admin(
            home,
            "user",
            "add",
            "--municipality",
            "0101",
            "--role",
            "nurse",
            "--email",
            "Karin@kommune.example",
        )
    )
    assert "invited karin@kommune.example (nurse)" in out
    assert "/invite/" in out
    assert db.execute("SELECT role, email FROM users").fetchone() == ("nurse", "Karin@kommune.example")


@pytest.mark.parametrize(
    "args",
    [
        ("municipality", "add", "--code", "101", "--name", "X"),
        ("patient", "add", "--municipality", "0101", "--id", "p 2", "--name", "X"),
        ("patient", "add", "--municipality", "0101", "--id", "p-2", "--name", "X", "--condition", "gout"),
        (
            "patient",
            "add",
            "--municipality",
            "0101",
            "--id",
            "p-2",
            "--name",
            "X",
            "--birth-date",
            "3.4.1940",
        ),
        ("patient", "add", "--municipality", "0999", "--id", "p-2", "--name", "X"),
        ("hub", "enroll", "--municipality", "0101", "--hub", "hub-2", "--patient", "p-9", "--out", "/tmp/x"),
        ("device", "assign", "--hub", "hub-9", "--patient", "p-1", "--kind", "scale", "--address", CUFF),
        ("device", "assign", "--hub", "hub-9", "--patient", "p-1", "--kind", "toaster", "--address", CUFF),
        ("device", "assign", "--hub", "hub-9", "--patient", "p-1", "--kind", "scale", "--address", "C4:7C"),
        (
            "device",
            "assign",
            "--hub",
            "hub-9",
            "--patient",
            "p-1",
            "--kind",
            "scale",
            "--address",
            CUFF,
            "--expected-every",
            "daily",
        ),
        ("device", "remove", "--device", "nope"),
        ("hub", "revoke", "--hub", "nope"),
        ("user", "add", "--municipality", "0101", "--role", "boss", "--email", "a@b.example"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    home: str, db: psycopg.Connection[Any], args: tuple[str, ...]
) -> None:
    before = db.execute("SELECT count(*) FROM audit_log").fetchone()
    refused(admin(home, *args))
    assert db.execute("SELECT count(*) FROM audit_log").fetchone() == before


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    line = refused(
        admin("postgresql://nobody@127.0.0.1:1/none", "municipality", "add", "--code", "0101", "--name", "K")
    )
    assert "cannot connect to the database" in line
    assert "not a PostgreSQL URL" in refused(
        admin("nonsense://x", "municipality", "add", "--code", "0101", "--name", "K")
    )


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A kept folder for an embedded PostgreSQL (not pytest's tmp_path: the server runs as another user
    when the tests run as root, and must reach it: ``gateway.store.embedded``, as the fault tests do)."""
    folder = Path(tempfile.mkdtemp(prefix="homewatch-admin-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_without_a_url_the_embedded_database_in_the_data_dir_is_used_and_kept(data_dir: Path) -> None:
    tmp_path = data_dir
    env: dict[str, str | None] = {"HOMEWATCH_DATA_DIR": str(tmp_path), "HOMEWATCH_DATABASE_URL": None}
    assert "added" in ok(admin(None, "municipality", "add", "--code", "0101", "--name", "København", env=env))
    assert "unchanged" in ok(
        admin(None, "municipality", "add", "--code", "0101", "--name", "København", env=env)
    )
    assert (tmp_path / "postgres" / "PG_VERSION").exists()
    # the server was stopped with the last command that used it
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()


def test_the_embedded_database_is_the_one_gateway_serve_uses() -> None:
    assert cli_common.EMBEDDED_DATABASE == EMBEDDED_DATABASE


@pytest.mark.parametrize(
    ("text", "hours"), [("24h", 24), ("30m", 0.5), ("2d", 48), ("1h30m", 1.5), ("90s", 0.025)]
)
def test_expected_intervals_are_read_as_people_write_them(text: str, hours: float) -> None:
    assert admin_cli.parse_interval(text).total_seconds() == hours * 3600


def test_the_fleet_is_a_table_and_json(home: str, tmp_path: Path) -> None:
    ok(admin(home, "hub", "enroll", "--municipality", "0101", "--hub", "hub-1", "--patient", "p-1",
             "--out", str(tmp_path)))  # fmt: skip
    ok(admin(home, "device", "assign", "--hub", "hub-1", "--patient", "p-1", "--kind", "scale",
             "--address", CUFF))  # fmt: skip
    hubs = json.loads(ok(runner.invoke(app, ["admin", "hubs", "--json", "--database-url", home])))
    assert [(h["hub_id"], h["patient_id"], h["online"], h["revoked"]) for h in hubs] == [
        ("hub-1", "p-1", False, False)
    ]
    assert [d["device_id"] for d in hubs[0]["devices"]] == ["dev-c47c8d6a120f"]
    table = ok(runner.invoke(app, ["admin", "hubs", "--municipality", "0101", "--database-url", home]))
    assert "hub-1" in table and "offline" in table and "1 hubs" in table
    other = json.loads(
        ok(runner.invoke(app, ["admin", "hubs", "--json", "--municipality", "0147", "--database-url", home]))
    )
    assert other == []


def test_the_broker_and_quarantine_commands_are_under_admin() -> None:
    for group in ("broker", "quarantine"):
        shown = runner.invoke(app, ["admin", group, "--help"])
        assert shown.exit_code == 0, shown.output


def test_gateway_serve_with_a_data_dir_and_admin_share_one_database(
    data_dir: Path, broker: BrokerEndpoint
) -> None:
    tmp_path = data_dir
    # Separate processes, as an administrator runs them next to a running gateway: `admin` attaches to
    # the gateway's embedded PostgreSQL and lets go of it without stopping it.
    gateway = Gateway(GatewayOptions(data_dir=tmp_path, broker=broker, workers=0, port=free_port()))
    env = {**os.environ, **NO_BROKER, "HOMEWATCH_DATA_DIR": str(tmp_path)}
    env.pop("HOMEWATCH_DATABASE_URL", None)
    try:
        gateway.start()
        for args in (
            ("municipality", "add", "--code", "0101", "--name", "København"),
            ("patient", "add", "--municipality", "0101", "--id", "p-1", "--name", "Ane"),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "homewatch.cli", "admin", *args],
                env=env,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stderr
        assert gateway.pool is not None
        with gateway.pool.connection() as conn:  # still up, and it holds what admin wrote
            assert conn.execute("SELECT id, municipality_id FROM patients").fetchall() == [("p-1", "0101")]
    finally:
        gateway.stop()
    assert (tmp_path / "postgres" / "PG_VERSION").exists()
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()
