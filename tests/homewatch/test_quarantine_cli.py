"""``homewatch admin quarantine list | reprocess`` against a real database, rows put there by the ingest
worker's own decide-and-store transaction: the list (a table, ``--json``, filters), re-processing one row
and every held row of a hub after the device is assigned (stored for the hub's patient, once), the audit
row under ``--by``, and bad input as one line on stderr with exit code 2."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from observation_factory import BASE_TIME, Home, bundle, identifier
from typer.testing import CliRunner

from gateway.ingest.batch_store import BatchStore
from gateway.settings import GatewaySettings
from gateway.store.repository import Device, enroll_device
from homewatch.cli import app

runner = CliRunner()
HOME = Home()
ELSEWHERE = Home(
    municipality_id="0147", patient_id="p47", hub_id="hub47", oximeter_id="OXI47", cuff_id="BPC47"
)
NEW_DEVICE = "OXI-NEW"


@dataclass
class Inbound:
    topic: str
    payload: bytes
    arrived: float = field(default_factory=time.monotonic)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        ELSEWHERE.enroll(conn)
        store = BatchStore(GatewaySettings(database_url=database_url), "test-ingest")
        try:
            for topic, payload in (
                (HOME.topic, bundle([HOME.spo2(91, device_id=NEW_DEVICE)])),
                (HOME.topic, bundle([HOME.spo2(92, BASE_TIME.replace(minute=10), device_id=NEW_DEVICE)])),
                (HOME.topic, b"not json"),
                (ELSEWHERE.topic, bundle([ELSEWHERE.spo2(93, device_id="OXI47-NEW")])),
            ):
                store.handle([Inbound(topic, payload)])
        finally:
            store.close()
        yield conn


def quarantine(database_url: str, *args: str) -> Any:
    command = ["admin", "quarantine", *args, "--database-url", database_url]
    return runner.invoke(app, command, env={"COLUMNS": "300"})


def listed(database_url: str, *args: str) -> list[dict[str, Any]]:
    result = quarantine(database_url, "list", "--json", *args)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_list_shows_the_open_rows_newest_first_and_filters(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    everything = listed(database_url)
    assert [r["code"] for r in everything] == [
        "unassigned-device",
        "not-json",
        "unassigned-device",
        "unassigned-device",
    ]
    assert [r["municipality"] for r in everything] == ["0147", "0101", "0101", "0101"]
    held = listed(database_url, "--municipality", "0101", "--reason", "unassigned-device")
    assert [(r["hub"], r["hub_state"], r["resolution"]) for r in held] == [("hub1", "enrolled", None)] * 2
    assert listed(database_url, "--hub", "hub47")[0]["municipality"] == "0147"
    table = quarantine(database_url, "list", "--municipality", "0101")
    assert table.exit_code == 0 and "unassigned-device" in table.stdout and "hub47" not in table.stdout


def test_reprocess_every_held_row_of_a_hub_after_the_device_is_assigned(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    before = quarantine(
        database_url, "reprocess", "--reason", "unassigned-device", "--hub", "hub1", "--by", "ops"
    )
    assert before.exit_code == 0, before.output
    assert "still-refused" in before.stdout and "2 row(s) re-processed, 0 not" in before.stdout
    assert db.execute("SELECT count(*) FROM observations").fetchone() == (0,)

    enroll_device(db, Device("0101", NEW_DEVICE, HOME.hub_id, HOME.patient_id, "pulse-oximeter"))
    after = quarantine(
        database_url, "reprocess", "--reason", "unassigned-device", "--hub", "hub1", "--by", "ops"
    )
    assert after.exit_code == 0, after.output
    assert after.stdout.count("reprocessed-stored (1 stored, 0 stored already, 0 refused)") == 2
    stored = db.execute("SELECT patient_id, device_id FROM observations").fetchall()
    assert stored == [(HOME.patient_id, NEW_DEVICE)] * 2
    again = quarantine(database_url, "reprocess", "--reason", "unassigned-device", "--hub", "hub1")
    assert again.exit_code == 0 and "0 row(s) re-processed" in again.stdout
    assert db.execute("SELECT count(*) FROM observations").fetchone() == (2,)
    assert {r["code"] for r in listed(database_url, "--municipality", "0101")} == {"not-json"}
    audited = db.execute("SELECT DISTINCT username, action, client FROM audit_log").fetchall()
    assert audited == [("ops", "reprocess-quarantine", None)]


def test_reprocess_one_row_by_its_id(database_url: str, db: psycopg.Connection[Any]) -> None:
    [theirs] = listed(database_url, "--municipality", "0147")
    enroll_device(db, Device("0147", "OXI47-NEW", "hub47", "p47", "pulse-oximeter"))
    # Scoped to another municipality, the row does not exist; unscoped it is re-processed.
    wrong = quarantine(database_url, "reprocess", str(theirs["id"]), "--municipality", "0101")
    assert wrong.exit_code == 2 and f"there is no quarantined row {theirs['id']} here" in wrong.stderr
    done = quarantine(database_url, "reprocess", str(theirs["id"]))
    assert done.exit_code == 0 and f"{theirs['id']}: reprocessed-stored" in done.stdout
    identifiers = [row[0] for row in db.execute("SELECT identifier FROM observations")]
    assert identifiers == [identifier(ELSEWHERE.spo2(93, device_id="OXI47-NEW"))]
    twice = quarantine(database_url, "reprocess", str(theirs["id"]))
    assert twice.exit_code == 2 and "resolved already" in twice.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["reprocess"], "give a row ID, or --reason"),
        (["reprocess", "3", "--hub", "hub1"], "not both"),
        (["reprocess", "--hub", "hub 1"], "--hub 'hub 1' is not an id"),
        (["reprocess", "--reason", "no;such"], "is not a reason code"),
        (["reprocess", str(2**64)], "there is no quarantined row"),
        (["list", "--state", "closed"], "--state must be one of open, resolved, all"),
        (["list", "--municipality", "01/01"], "--municipality '01/01' is not an id"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    database_url: str, db: psycopg.Connection[Any], args: list[str], says: str
) -> None:
    result = quarantine(database_url, *args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
