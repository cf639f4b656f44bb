"""``homewatch admin plan set | show`` on a real PostgreSQL and a real broker: a plan from options or a
JSON file is stored, audited and retained in the hub's config; setting it again changes nothing; --clear
removes it; what the contract refuses, or a patient of another municipality, is one line on stderr with
exit code 2 and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
from retained_config import retained_config
from typer.testing import CliRunner, Result

from gateway.broker import BrokerEndpoint, free_port
from homewatch.cli import app

runner = CliRunner()
NO_BROKER = {"HOMEWATCH_MQTT_PORT": str(free_port())}
CONFIG_TOPIC = "homewatch/v1/0101/hub-1/config"


def admin(database_url: str, *args: str, env: Mapping[str, str] | None = None) -> Result:
    command = ["admin", *args, "--database-url", database_url]
    return runner.invoke(app, command, env={**NO_BROKER, **(env or {})})


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def home(database_url: str, tmp_path: Path, broker: BrokerEndpoint) -> str:
    """København, its patient p-1 and the patient's hub hub-1; Aarhus and its patient p-2."""
    on_broker = {"HOMEWATCH_MQTT_PORT": str(broker.port)}
    for code, name in (("0101", "København"), ("0751", "Aarhus")):
        ok(admin(database_url, "municipality", "add", "--code", code, "--name", name, "--by", "ops"))
    for municipality, patient in (("0101", "p-1"), ("0751", "p-2")):
        ok(admin(database_url, "patient", "add", "--municipality", municipality, "--id", patient,
                 "--name", "Ane Hansen", "--condition", "hf", "--by", "ops"))  # fmt: skip
    ok(admin(database_url, "hub", "enroll", "--municipality", "0101", "--hub", "hub-1", "--patient", "p-1",
             "--out", str(tmp_path / "kit"), "--by", "ops", env=on_broker))  # fmt: skip
    return database_url


def shown(database_url: str, patient: str = "p-1") -> Any:
    return json.loads(ok(admin(database_url, "plan", "show", "--patient", patient, "--json")))


def test_a_plan_set_from_options_is_stored_audited_and_reaches_the_hub(
    home: str, broker: BrokerEndpoint, database_url: str
) -> None:
    on_broker = {"HOMEWATCH_MQTT_PORT": str(broker.port)}
    said = ok(admin(home, "plan", "set", "--patient", "p-1", "--measurement", "blood-pressure",
                    "--at", "20:00", "--at", "08:00", "--grace", "90", "--by", "nurse.nord",
                    env=on_broker))  # fmt: skip
    assert "plan set (1 measurement(s)); sent to: hub-1" in said
    expected = [{"measurement": "blood-pressure", "times": ["08:00", "20:00"], "days": [1, 2, 3, 4, 5, 6, 7],
                 "grace_minutes": 90}]  # fmt: skip
    assert shown(home) == expected
    assert json.loads(retained_config(broker, CONFIG_TOPIC))["plan"] == expected
    assert "08:00, 20:00, every day, grace 90 min" in ok(admin(home, "plan", "show", "--patient", "p-1"))
    again = admin(home, "plan", "set", "--patient", "p-1", "--measurement", "blood-pressure", "--at", "08:00",
                  "--at", "20:00", "--grace", "90", env=on_broker)  # fmt: skip
    assert "nothing changed" in ok(again)
    with psycopg.connect(database_url) as conn:
        audited = conn.execute("SELECT username FROM audit_log WHERE action = 'set-plan'").fetchall()
    assert audited == [("nurse.nord",)]


def test_a_plan_from_a_file_replaces_the_old_one_and_clear_removes_it(
    home: str, tmp_path: Path, broker: BrokerEndpoint
) -> None:
    on_broker = {"HOMEWATCH_MQTT_PORT": str(broker.port)}
    plan = [
        {"measurement": "weight", "times": ["07:30"], "days": [1, 4], "grace_minutes": 240},
        {"measurement": "spo2", "times": ["09:00"], "days": [1, 2, 3, 4, 5, 6, 7], "grace_minutes": 60},
    ]
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    ok(admin(home, "plan", "set", "--patient", "p-1", "--file", str(tmp_path / "plan.json"), env=on_broker))
    assert shown(home) == [plan[1], plan[0]]  # the contract's order of measurements
    assert "removed" in ok(admin(home, "plan", "set", "--patient", "p-1", "--clear", env=on_broker))
    assert shown(home) == []
    assert json.loads(retained_config(broker, CONFIG_TOPIC))["plan"] == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--measurement", "cholesterol", "--at", "08:00"), "cannot be used"),
        (("--measurement", "spo2", "--at", "25:00"), "cannot be used"),
        (("--measurement", "spo2", "--at", "08:00", "--grace", "5"), "cannot be used"),
        (("--measurement", "spo2", "--clear"), "give one of"),
        ((), "give one of"),
        (("--file", "/no/such/plan.json"), "No such file"),
    ],
)
def test_what_the_contract_refuses_is_one_line_and_changes_nothing(
    home: str, args: tuple[str, ...], words: str
) -> None:
    assert words in refused(admin(home, "plan", "set", "--patient", "p-1", *args))
    assert shown(home) == []


def test_a_patient_outside_the_municipality_acted_in_looks_unknown(home: str) -> None:
    args = ("--measurement", "spo2", "--at", "08:00", "--municipality", "0101")
    assert "no patient p-2" in refused(admin(home, "plan", "set", "--patient", "p-2", *args))
    assert "no patient p-2" in refused(
        admin(home, "plan", "show", "--patient", "p-2", "--municipality", "0101")
    )
    assert "no patient nobody" in refused(admin(home, "plan", "show", "--patient", "nobody"))
