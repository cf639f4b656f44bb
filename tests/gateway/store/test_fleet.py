"""``fleet_report`` on a real PostgreSQL: statuses stored by status ingest, readings stored as ingest
stores them, then the verdicts: a silent device (daily, continuous, never delivered, a second device of
the same kind), a hub offline by its Last Will and one by silence, low battery from the status and from
a battery-level reading, the newest reading found per device, and another municipality's hubs unseen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from gateway.ingest.status_ingest import store_statuses
from gateway.store.fleet import fleet_hub, fleet_json, fleet_report
from gateway.store.repository import (
    Device,
    Hub,
    Municipality,
    Patient,
    enroll_device,
    enroll_hub,
    enroll_municipality,
    enroll_patient,
    insert_observations,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
Conn = psycopg.Connection[Any]
UNITS = {
    "spo2": "%",
    "body-weight": "kg",
    "cgm-glucose": "mg/dL",
    "battery-level": "%",
    "body-temperature": "Cel",
}


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retained: bool = False


def home(conn: Conn, municipality: str, hub: str, devices: dict[str, str]) -> None:
    """A patient ``p-<hub>`` with ``hub`` and ``devices`` (id -> kind), all assigned 30 days ago."""
    enroll_municipality(conn, Municipality(municipality, f"Kommune {municipality}"))
    patient = f"p-{hub}"
    enroll_patient(conn, Patient(municipality, patient, f"Patient {hub}"))
    enroll_hub(conn, Hub(municipality, hub, patient))
    for device_id, kind in devices.items():
        enroll_device(conn, Device(municipality, device_id, hub, patient, kind))
    conn.execute("UPDATE devices SET assigned_at = %s WHERE hub_id = %s", (NOW - timedelta(days=30), hub))


def read(
    conn: Conn, municipality: str, hub: str, device: str, kind: str, at: datetime, value: float = 1
) -> None:
    """One reading of ``device`` stored as ingest stores it."""
    if kind == "blood-pressure":
        reading = Reading(
            kind,
            components=(
                Component("systolic", Quantity(Decimal("120"), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal("80"), "mm[Hg]")),
            ),
        )
    else:
        reading = Reading(kind, Quantity(Decimal(str(value)), UNITS[kind]))
    resource = build_observation(reading, patient_id=f"p-{hub}", device_id=device, hub_id=hub, effective=at)
    assert insert_observations(conn, municipality, hub, [validate_observation(resource)]).inserted == 1


def status(
    conn: Conn, municipality: str, hub: str, at: datetime, *devices: dict[str, Any], state: str = "online"
) -> None:
    body = {
        "state": state,
        "agentVersion": "0.1.0",
        "queueDepth": 3,
        "awaitingReceipt": 1,
        "devices": list(devices),
    }
    message = Message(f"homewatch/v1/{municipality}/{hub}/status", orjson.dumps(body))
    [decision] = store_statuses(conn, [message], received_at=at)
    assert decision.refusal is None, decision.refusal


def entry(device_id: str, battery: int | None = 80, **fields: Any) -> dict[str, Any]:
    return {"id": device_id, "connected": False, "battery": battery} | fields


@pytest.fixture
def conn(database_url: str) -> Any:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def by_hub(conn: Conn, municipality: str | None = "0101") -> dict[str, Any]:
    return {h.hub_id: h for h in fleet_report(conn, municipality, NOW)}


def test_a_healthy_hub_is_online_with_its_newest_reading_per_device(conn: Conn) -> None:
    home(conn, "0101", "hub-ok", {"ok-oxi": "pulse-oximeter", "ok-cuff": "blood-pressure-cuff"})
    read(conn, "0101", "hub-ok", "ok-oxi", "spo2", NOW - timedelta(hours=30), 97)
    read(conn, "0101", "hub-ok", "ok-oxi", "spo2", NOW - timedelta(hours=3), 96)
    read(conn, "0101", "hub-ok", "ok-cuff", "blood-pressure", NOW - timedelta(hours=5))
    status(conn, "0101", "hub-ok", NOW - timedelta(minutes=1), entry("ok-oxi"), entry("ok-cuff"))
    found = by_hub(conn)["hub-ok"]
    assert found.online and not found.silent and found.flags == ()
    assert found.last_contact == NOW - timedelta(minutes=1)
    assert (found.agent_version, found.outbox_depth, found.awaiting_receipt) == ("0.1.0", 3, 1)
    last = {d.device_id: d.last_reading for d in found.devices}
    assert last == {"ok-oxi": NOW - timedelta(hours=3), "ok-cuff": NOW - timedelta(hours=5)}


def test_silent_devices_daily_continuous_and_never_delivered(conn: Conn) -> None:
    devices = {"s-cuff": "blood-pressure-cuff", "s-cgm": "cgm", "s-thermo": "thermometer", "s-scale": "scale"}
    home(conn, "0101", "hub-s", devices)
    read(conn, "0101", "hub-s", "s-cuff", "blood-pressure", NOW - timedelta(days=2))
    read(conn, "0101", "hub-s", "s-cgm", "cgm-glucose", NOW - timedelta(hours=4), 110)
    read(conn, "0101", "hub-s", "s-scale", "body-weight", NOW - timedelta(days=4), 80)
    conn.execute("UPDATE devices SET expected_interval = interval '7 days' WHERE id = 's-scale'")
    status(conn, "0101", "hub-s", NOW - timedelta(minutes=1), *(entry(d) for d in devices))
    found = by_hub(conn)["hub-s"]
    assert found.online and found.flags == ("silent-device",)
    silent = {d.device_id: d.silent_since for d in found.devices if d.silent}
    assert silent == {
        "s-cuff": NOW - timedelta(days=2),
        "s-cgm": NOW - timedelta(hours=4),
        "s-thermo": NOW - timedelta(days=30),  # never delivered: since its assignment
    }


def test_a_second_device_of_the_same_kind_is_found_behind_the_first(conn: Conn) -> None:
    home(conn, "0101", "hub-two", {"new-oxi": "pulse-oximeter", "old-oxi": "pulse-oximeter"})
    read(conn, "0101", "hub-two", "old-oxi", "spo2", NOW - timedelta(days=5), 95)
    for hours in range(1, 40):
        read(conn, "0101", "hub-two", "new-oxi", "spo2", NOW - timedelta(hours=hours), 96)
    status(conn, "0101", "hub-two", NOW - timedelta(minutes=1))
    found = {d.device_id: d for d in by_hub(conn)["hub-two"].devices}
    assert found["new-oxi"].last_reading == NOW - timedelta(hours=1) and not found["new-oxi"].silent
    assert found["old-oxi"].last_reading == NOW - timedelta(days=5) and found["old-oxi"].silent


def test_a_hub_offline_by_its_last_will_and_one_by_silence(conn: Conn) -> None:
    home(conn, "0101", "hub-will", {"w-oxi": "pulse-oximeter"})
    home(conn, "0101", "hub-quiet", {"q-oxi": "pulse-oximeter"})
    home(conn, "0101", "hub-never", {"n-oxi": "pulse-oximeter"})
    for hub, device in (("hub-will", "w-oxi"), ("hub-quiet", "q-oxi"), ("hub-never", "n-oxi")):
        read(conn, "0101", hub, device, "spo2", NOW - timedelta(hours=1), 96)
    status(conn, "0101", "hub-will", NOW - timedelta(minutes=3), entry("w-oxi", connected=True))
    status(conn, "0101", "hub-will", NOW - timedelta(minutes=2), state="offline")
    status(conn, "0101", "hub-quiet", NOW - timedelta(minutes=6), entry("q-oxi"))
    hubs = by_hub(conn)
    will, quiet, never = hubs["hub-will"], hubs["hub-quiet"], hubs["hub-never"]
    assert not will.online and not will.silent and will.flags == ("offline",)
    assert will.devices[0].connected is False  # the Last Will marks its devices not connected
    assert not quiet.online and quiet.silent and quiet.flags == ("offline",)
    assert not never.online and never.silent and never.last_contact is None
    # A hub that reports every 10 minutes is not offline after 6.
    conn.execute("""UPDATE hubs SET settings = '{"status_interval_s": 600}' WHERE id = 'hub-quiet'""")
    assert by_hub(conn)["hub-quiet"].online


def test_low_battery_from_the_status_or_a_newer_battery_reading(conn: Conn) -> None:
    home(conn, "0101", "hub-low", {"l-oxi": "pulse-oximeter", "l-scale": "scale"})
    read(conn, "0101", "hub-low", "l-oxi", "spo2", NOW - timedelta(hours=1), 96)
    read(conn, "0101", "hub-low", "l-scale", "body-weight", NOW - timedelta(hours=1), 80)
    read(conn, "0101", "hub-low", "l-scale", "battery-level", NOW - timedelta(minutes=1), 12)
    status(
        conn, "0101", "hub-low", NOW - timedelta(minutes=2), entry("l-oxi", battery=15), entry("l-scale", 60)
    )
    found = by_hub(conn)["hub-low"]
    assert found.flags == ("low-battery",)
    batteries = {d.device_id: (d.battery, d.low_battery) for d in found.devices}
    assert batteries == {"l-oxi": (15.0, True), "l-scale": (12.0, True)}  # the reading is newer than 60 %


def test_another_municipalitys_hubs_are_not_in_the_report(conn: Conn) -> None:
    home(conn, "0101", "hub-kbh", {"k-oxi": "pulse-oximeter"})
    home(conn, "0147", "hub-frb", {"f-oxi": "pulse-oximeter"})
    assert set(by_hub(conn, "0101")) == {"hub-kbh"}
    assert set(by_hub(conn, "0147")) == {"hub-frb"}
    assert set(by_hub(conn, None)) == {"hub-kbh", "hub-frb"}
    assert fleet_hub(conn, "0101", "hub-frb", NOW) is None
    one = fleet_hub(conn, "0147", "hub-frb", NOW)
    assert one is not None and [d.device_id for d in one.devices] == ["f-oxi"]


def test_removed_devices_are_left_out_and_a_revoked_hub_is_flagged_revoked(conn: Conn) -> None:
    home(conn, "0101", "hub-old", {"o-oxi": "pulse-oximeter", "o-gone": "thermometer"})
    conn.execute("UPDATE devices SET removed_at = %s WHERE id = 'o-gone'", (NOW - timedelta(days=1),))
    conn.execute("UPDATE hubs SET revoked_at = %s WHERE id = 'hub-old'", (NOW - timedelta(days=1),))
    [found] = fleet_report(conn, "0101", NOW)
    assert found.revoked and found.flags == ("revoked",)
    assert [d.device_id for d in found.devices] == ["o-oxi"]
    assert fleet_json([found])[0]["revoked"] is True


def test_the_report_is_most_urgent_first(conn: Conn) -> None:
    home(conn, "0101", "a-fine", {"a-oxi": "pulse-oximeter"})
    home(conn, "0101", "b-silent", {"b-thermo": "thermometer"})
    home(conn, "0101", "c-low", {"c-oxi": "pulse-oximeter"})
    for hub, device in (("a-fine", "a-oxi"), ("c-low", "c-oxi")):
        read(conn, "0101", hub, device, "spo2", NOW - timedelta(hours=1), 96)
    status(conn, "0101", "a-fine", NOW - timedelta(minutes=1), entry("a-oxi"))
    status(conn, "0101", "b-silent", NOW - timedelta(minutes=1), entry("b-thermo"))
    status(conn, "0101", "c-low", NOW - timedelta(minutes=1), entry("c-oxi", battery=9))
    assert [h.hub_id for h in fleet_report(conn, "0101", NOW)] == ["b-silent", "c-low", "a-fine"]
