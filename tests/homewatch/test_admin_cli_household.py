"""``homewatch admin hub add-resident`` / ``remove-resident`` and ``device assign --user-index`` /
``device remove-user``: two patients on one hub from the command line, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from gateway.broker import free_port
from gateway.store.repository import hub_assignment
from homewatch.cli import app

runner = CliRunner()
CUFF, OXIMETER = "C4:7C:8D:6A:12:0F", "C4:7C:8D:6A:12:10"
NO_BROKER = {"HOMEWATCH_MQTT_PORT": str(free_port())}


def admin(database_url: str, *args: str) -> Result:
    return runner.invoke(app, ["admin", *args, "--database-url", database_url, "--by", "ops"], env=NO_BROKER)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def home(database_url: str, tmp_path: Path) -> str:
    """Ane's hub hub-1; Bent a patient of the same municipality."""
    ok(admin(database_url, "municipality", "add", "--code", "0101", "--name", "København"))
    for patient, name in (("p-1", "Ane Hansen"), ("p-2", "Bent Hansen")):
        ok(admin(database_url, "patient", "add", "--municipality", "0101", "--id", patient, "--name", name))
    kit = str(tmp_path / "hub-1")
    ok(admin(database_url, "hub", "enroll", "--municipality", "0101", "--hub", "hub-1", "--patient", "p-1",
             "--out", kit))  # fmt: skip
    return database_url


def test_a_household_is_set_up_and_taken_apart_from_the_command_line(
    home: str, db: psycopg.Connection[Any]
) -> None:
    assert "lives with hub hub-1" in ok(
        admin(home, "hub", "add-resident", "--hub", "hub-1", "--patient", "p-2")
    )
    assert "nothing changed" in ok(admin(home, "hub", "add-resident", "--hub", "hub-1", "--patient", "p-2"))
    for patient, index in (("p-1", "1"), ("p-2", "2")):
        out = ok(
            admin(home, "device", "assign", "--hub", "hub-1", "--patient", patient, "--kind", "scale",
                  "--address", CUFF, "--user-index", index)
        )  # fmt: skip
        assert f"user {index} is patient {patient}" in out
    ok(admin(home, "device", "assign", "--hub", "hub-1", "--patient", "p-2", "--kind", "oximeter",
             "--address", OXIMETER))  # fmt: skip
    assignment = hub_assignment(db, "0101", "hub-1")
    assert assignment is not None
    assert assignment.device_patients["dev-c47c8d6a120f"] == frozenset({"p-1", "p-2"})
    assert assignment.device_patients["dev-c47c8d6a1210"] == frozenset({"p-2"})

    refused = admin(home, "hub", "remove-resident", "--hub", "hub-1", "--patient", "p-2")
    assert refused.exit_code == 2 and "still has device dev-c47c8d6a1210" in refused.stderr
    ok(admin(home, "device", "remove", "--device", "dev-c47c8d6a1210"))
    ok(admin(home, "device", "remove-user", "--device", "dev-c47c8d6a120f", "--patient", "p-1"))
    assert "no longer lives" in ok(
        admin(home, "hub", "remove-resident", "--hub", "hub-1", "--patient", "p-2")
    )
    assignment = hub_assignment(db, "0101", "hub-1")
    assert assignment is not None and not assignment.serves("p-2")
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY id").fetchall()]
    for action in ("hub-resident-add", "device-user-assign", "device-user-remove", "hub-resident-remove"):
        assert action in actions
