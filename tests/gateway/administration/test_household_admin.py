"""``gateway.administration.household`` on a real PostgreSQL: residents of a hub and the user slots of a
shared device, checked, audited, counted as a change of the hub's config, read back by ingest
(``repository.hub_assignments``) and sent in the hub's config payload, which the hub's own parser takes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import psycopg
import pytest

from edge_agent.remote_config import parse_remote
from gateway.administration.errors import AdministrationError
from gateway.administration.homes import (
    add_municipality,
    add_patient,
    assign_device,
    enroll_hub,
    remove_device,
)
from gateway.administration.household import (
    add_resident,
    assign_user,
    remove_resident,
    share_device,
    unassign_user,
)
from gateway.hub_config import config_payload
from gateway.settings import GatewaySettings
from gateway.store.hub_config import lock_hub_config
from gateway.store.repository import hub_assignment

SETTINGS = GatewaySettings(environment="development", mqtt_host="broker.internal", mqtt_port=1884)
CUFF, OXIMETER, SCALE = "C4:7C:8D:6A:12:0F", "C4:7C:8D:6A:12:10", "C4:7C:8D:6A:12:11"


def _audit(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str | None]]:
    rows = conn.execute("SELECT username, action, patient_id FROM audit_log ORDER BY id").fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def _patient(conn: psycopg.Connection[Any], patient_id: str, name: str, municipality: str = "0101") -> None:
    add_patient(
        conn, municipality, patient_id, name=name, care_team=None, phone=None, conditions=[],
        birth_date=date(1942, 1, 1), by="ops",
    )  # fmt: skip


@pytest.fixture
def home(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Hub hub-1 enrolled for Ane (p-1); Bent (p-2) is a patient of the same municipality."""
    add_municipality(conn, "0101", "København", by="ops")
    add_municipality(conn, "0147", "Frederiksberg", by="ops")
    _patient(conn, "p-1", "Ane Hansen")
    _patient(conn, "p-2", "Bent Hansen")
    enroll_hub(conn, SETTINGS, "0101", "hub-1", "p-1", by="ops", accounts=None)
    return conn


def _version(conn: psycopg.Connection[Any], hub_id: str = "hub-1") -> int:
    row = conn.execute("SELECT config_version FROM hubs WHERE id = %s", (hub_id,)).fetchone()
    assert row is not None
    return int(row[0])


def _payload(conn: psycopg.Connection[Any], hub_id: str = "hub-1") -> dict[str, Any]:
    with conn.transaction():
        record = lock_hub_config(conn, "0101", hub_id)
    assert record is not None
    payload = config_payload(record)
    parse_remote(payload)  # the hub takes it
    loaded: dict[str, Any] = orjson.loads(payload)
    return loaded


def test_a_resident_is_served_by_the_hub_and_sent_in_its_config(home: psycopg.Connection[Any]) -> None:
    before = hub_assignment(home, "0101", "hub-1")
    assert before is not None and not before.serves("p-2")
    done = add_resident(home, "hub-1", "p-2", by="ops", publisher=None)
    assert done.changed and not done.published
    after = hub_assignment(home, "0101", "hub-1")
    assert after is not None and after.serves("p-2") and after.serves("p-1")
    assert _payload(home)["residents"] == [
        {"patient_id": "p-1", "name": "Ane"},
        {"patient_id": "p-2", "name": "Bent", "plan": []},  # no plan of his yet
    ]
    assert ("ops", "hub-resident-add", "p-2") in _audit(home)
    # adding again changes nothing
    version = _version(home)
    assert not add_resident(home, "hub-1", "p-2", by="ops", publisher=None).changed
    assert _version(home) == version


def test_a_patient_lives_in_one_home_and_of_the_hubs_municipality(home: psycopg.Connection[Any]) -> None:
    _patient(home, "p-3", "Carl Berg")
    enroll_hub(home, SETTINGS, "0101", "hub-2", "p-3", by="ops", accounts=None)
    add_resident(home, "hub-1", "p-2", by="ops", publisher=None)
    with pytest.raises(AdministrationError, match="lives with hub hub-1"):
        add_resident(home, "hub-2", "p-2", by="ops", publisher=None)
    _patient(home, "p-9", "Dorte Lund", municipality="0147")
    with pytest.raises(AdministrationError, match="no patient p-9"):
        add_resident(home, "hub-1", "p-9", by="ops", publisher=None)
    with pytest.raises(AdministrationError, match="no hub hub-1"):
        add_resident(home, "hub-1", "p-2", by="ops", publisher=None, within="0147")


def test_a_personal_device_of_a_resident_measures_only_them(home: psycopg.Connection[Any]) -> None:
    with pytest.raises(AdministrationError, match="serves patient p-1, not p-2"):
        assign_device(home, SETTINGS, "hub-1", "p-2", "pulse-oximeter", OXIMETER, by="ops", publisher=None)
    add_resident(home, "hub-1", "p-2", by="ops", publisher=None)
    oximeter = assign_device(
        home, SETTINGS, "hub-1", "p-2", "pulse-oximeter", OXIMETER, by="ops", publisher=None
    )
    mine = assign_device(home, SETTINGS, "hub-1", "p-1", "pulse-oximeter", CUFF, by="ops", publisher=None)
    assignment = hub_assignment(home, "0101", "hub-1")
    assert assignment is not None
    assert assignment.device_measures(oximeter, "p-2") and not assignment.device_measures(oximeter, "p-1")
    assert assignment.device_measures(mine, "p-1") and not assignment.device_measures(mine, "p-2")
    devices = {d["id"]: d for d in _payload(home)["devices"]}
    assert devices[oximeter]["patient_id"] == "p-2"
    assert "patient_id" not in devices[mine]  # the hub's own patient, as before


def test_a_shared_cuff_measures_the_residents_of_its_slots(home: psycopg.Connection[Any]) -> None:
    add_resident(home, "hub-1", "p-2", by="ops", publisher=None)
    cuff, first = share_device(
        home, SETTINGS, "hub-1", "p-1", "blood-pressure", CUFF, 1, by="ops", publisher=None
    )
    again, second = share_device(
        home, SETTINGS, "hub-1", "p-2", "blood-pressure", CUFF, 2, by="ops", publisher=None
    )
    assert cuff == again and first.changed and second.changed
    assignment = hub_assignment(home, "0101", "hub-1")
    assert assignment is not None
    assert assignment.device_patients[cuff] == frozenset({"p-1", "p-2"})
    [device] = _payload(home)["devices"]
    assert device["users"] == {"1": "p-1", "2": "p-2"} and "patient_id" not in device
    assert parse_remote(orjson.dumps(_payload(home))).devices[0].users == {1: "p-1", 2: "p-2"}
    # a slot is one resident's; a resident has one slot (assigning another moves them)
    with pytest.raises(AdministrationError, match="User 2 of device"):
        assign_user(home, cuff, "p-1", 2, by="ops", publisher=None)
    assign_user(home, cuff, "p-2", 3, by="ops", publisher=None)
    assert _payload(home)["devices"][0]["users"] == {"1": "p-1", "3": "p-2"}
    # freeing a slot: the cuff no longer carries that resident's readings
    assert unassign_user(home, cuff, "p-2", by="ops", publisher=None).changed
    assignment = hub_assignment(home, "0101", "hub-1")
    assert assignment is not None and not assignment.device_measures(cuff, "p-2")
    actions = [a[1] for a in _audit(home)]
    assert actions.count("device-user-assign") == 3 and "device-user-remove" in actions


def test_only_devices_that_tell_users_apart_are_shared(home: psycopg.Connection[Any]) -> None:
    add_resident(home, "hub-1", "p-2", by="ops", publisher=None)
    oximeter = assign_device(
        home, SETTINGS, "hub-1", "p-1", "pulse-oximeter", OXIMETER, by="ops", publisher=None
    )
    with pytest.raises(AdministrationError, match="cannot tell its users apart"):
        assign_user(home, oximeter, "p-2", 1, by="ops", publisher=None)
    with pytest.raises(AdministrationError, match="cannot tell its users apart"):
        share_device(home, SETTINGS, "hub-1", "p-2", "thermometer", SCALE, 1, by="ops", publisher=None)
    for index in (0, 255):
        with pytest.raises(AdministrationError, match="1 to 254"):
            assign_user(home, oximeter, "p-2", index, by="ops", publisher=None)


def test_a_slot_is_only_for_a_resident(home: psycopg.Connection[Any]) -> None:
    scale = assign_device(home, SETTINGS, "hub-1", "p-1", "scale", SCALE, by="ops", publisher=None)
    with pytest.raises(AdministrationError, match="does not live with hub hub-1"):
        assign_user(home, scale, "p-2", 2, by="ops", publisher=None)


def test_removing_a_resident_takes_their_slots_and_needs_their_devices_gone(
    home: psycopg.Connection[Any],
) -> None:
    add_resident(home, "hub-1", "p-2", by="ops", publisher=None)
    oximeter = assign_device(
        home, SETTINGS, "hub-1", "p-2", "pulse-oximeter", OXIMETER, by="ops", publisher=None
    )
    cuff, _ = share_device(
        home, SETTINGS, "hub-1", "p-2", "blood-pressure", CUFF, 2, by="ops", publisher=None
    )
    share_device(home, SETTINGS, "hub-1", "p-1", "blood-pressure", CUFF, 1, by="ops", publisher=None)
    with pytest.raises(AdministrationError, match=f"still has device {oximeter}"):
        remove_resident(home, "hub-1", "p-2", by="ops", publisher=None)
    with pytest.raises(AdministrationError, match="revoke the hub instead"):
        remove_resident(home, "hub-1", "p-1", by="ops", publisher=None)
    remove_device(home, SETTINGS, oximeter, by="ops", publisher=None)
    assert remove_resident(home, "hub-1", "p-2", by="ops", publisher=None).changed
    assignment = hub_assignment(home, "0101", "hub-1")
    assert assignment is not None and not assignment.serves("p-2")
    assert assignment.device_patients[cuff] == frozenset({"p-1"})
    payload = _payload(home)
    assert payload["residents"] == [{"patient_id": "p-1", "name": "Ane"}]
    assert payload["devices"][0]["users"] == {"1": "p-1"}
    assert not remove_resident(home, "hub-1", "p-2", by="ops", publisher=None).changed


def test_a_hubs_kit_lists_only_its_enrolled_patients_own_devices(home: psycopg.Connection[Any]) -> None:
    add_resident(home, "hub-1", "p-2", by="ops", publisher=None)
    assign_device(home, SETTINGS, "hub-1", "p-2", "pulse-oximeter", OXIMETER, by="ops", publisher=None)
    share_device(home, SETTINGS, "hub-1", "p-1", "blood-pressure", CUFF, 1, by="ops", publisher=None)
    mine = assign_device(home, SETTINGS, "hub-1", "p-1", "scale", SCALE, by="ops", publisher=None)
    kit = enroll_hub(home, SETTINGS, "0101", "hub-1", "p-1", by="ops", accounts=None)
    assert mine in kit.hub_toml
    assert OXIMETER not in kit.hub_toml and CUFF not in kit.hub_toml


def test_each_change_counts_one_config_version(home: psycopg.Connection[Any]) -> None:
    start = _version(home)
    add_resident(home, "hub-1", "p-2", by="ops", publisher=None)
    scale = assign_device(home, SETTINGS, "hub-1", "p-1", "scale", SCALE, by="ops", publisher=None)
    assign_user(home, scale, "p-2", 2, by="ops", publisher=None)
    assert _version(home) == start + 3
