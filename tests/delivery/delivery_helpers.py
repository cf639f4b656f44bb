"""The parts the delivery fault tests share: an enrolled home, its readings, its hub configuration, the
gateway's real ingest worker, and what PostgreSQL stored.

Everything is real: a Mosquitto process, the hub's ``Outbox`` and ``MqttPublisher`` as they are, the
gateway's ``IngestWorker`` (validation, authorisation, idempotent store) and PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from edge_agent.config import DeviceConfig, DeviceKind, HubConfig, MqttConfig
from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from gateway.broker import BrokerEndpoint, EmbeddedBroker, mosquitto_binary
from gateway.ingest.mqtt_ingest import IngestWorker
from gateway.settings import GatewaySettings
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Municipality, Patient

MUNICIPALITY, PATIENT, HUB = "0101", "p1", "hub1"
DEVICES: dict[str, DeviceKind] = {
    "OXI1": "pulse-oximeter",
    "BPC1": "blood-pressure-cuff",
    "SCL1": "scale",
    "THM1": "thermometer",
}
START = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)

needs_mosquitto = pytest.mark.skipif(
    mosquitto_binary() is None,
    reason="needs Mosquitto: amqtt drops unacknowledged QoS 1 messages after 5 s and keeps no offline "
    "queue, so no delivery guarantee can be tested on it",
)


TEST_MUNICIPALITY = Municipality(MUNICIPALITY, "Test municipality")


def home(patient: Patient | None = None) -> Home:
    """The home the readings come from: ``patient`` (a plain test patient by default), the hub and the
    four devices."""
    patient = patient or Patient(MUNICIPALITY, PATIENT, "Test patient")
    return Home(patient, HUB, tuple(HomeDevice(device_id, kind) for device_id, kind in DEVICES.items()))


def enroll(database_url: str) -> None:
    """Enrol the municipality, patient, hub and the four devices the readings come from."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        enroll_homes(conn, [TEST_MUNICIPALITY], [home()])


def _obs(reading: Reading, device_id: str, at: datetime) -> dict[str, Any]:
    return build_observation(reading, patient_id=PATIENT, device_id=device_id, hub_id=HUB, effective=at)


def _q(value: str, unit: str) -> Quantity:
    return Quantity(Decimal(value), unit)


def readings(
    count: int, start: datetime = START, step: timedelta = timedelta(seconds=1)
) -> list[dict[str, Any]]:
    """``count`` distinct valid oximeter readings (SpO2 and pulse alternating) one ``step`` apart."""
    out = []
    for i in range(count):
        at = start + i * step
        if i % 2:
            out.append(_obs(Reading("pulse-rate-oximeter", _q(str(60 + i % 30), "/min")), "OXI1", at))
        else:
            out.append(_obs(Reading("spo2", _q(str(90 + i % 9), "%")), "OXI1", at))
    return out


def day_of_readings(day: int) -> list[dict[str, Any]]:
    """One day of a monitored home at realistic rates: SpO2 and pulse every 10 minutes (288), blood
    pressure three times, temperature twice, weight once: 294 readings."""
    start = START + timedelta(days=day)
    out = readings(288, start, timedelta(minutes=5))
    for hour in (8, 14, 20):
        bp = Reading(
            "blood-pressure",
            components=(
                Component("systolic", _q("128", "mm[Hg]")),
                Component("diastolic", _q("82", "mm[Hg]")),
            ),
        )
        out.append(_obs(bp, "BPC1", start + timedelta(hours=hour, seconds=1)))
    for hour in (8, 20):
        out.append(
            _obs(
                Reading("body-temperature", _q("36.9", "Cel")),
                "THM1",
                start + timedelta(hours=hour, seconds=2),
            )
        )
    out.append(_obs(Reading("body-weight", _q("84.2", "kg")), "SCL1", start + timedelta(hours=7, seconds=3)))
    return out


def hub_config(
    tmp_path: Path, endpoint: BrokerEndpoint, bundle_size: int = 50, receipt_timeout_s: float = 2.0
) -> HubConfig:
    """The home's hub, deleting rows on the gateway's receipt (the default), which it waits for
    ``receipt_timeout_s`` (short here, so a lost Bundle is sent again within the test's time)."""
    return HubConfig(
        municipality=MUNICIPALITY,
        hub_id=HUB,
        patient_id=PATIENT,
        devices=tuple(
            DeviceConfig(id=d, address=f"F0:00:00:00:00:0{i}", kind=k)
            for i, (d, k) in enumerate(DEVICES.items())
        ),
        mqtt=MqttConfig(
            host=endpoint.host, port=endpoint.port, mqtt5=endpoint.mqtt5, receipt_timeout_s=receipt_timeout_s
        ),
        outbox_path=tmp_path / "outbox.sqlite3",
        bundle_size=bundle_size,
    )


def start_gateway(database_url: str, endpoint: BrokerEndpoint) -> IngestWorker:
    """The gateway's ingest worker, subscribed (persistent session, manual ack after commit)."""
    settings = GatewaySettings(database_url=database_url, mqtt_host=endpoint.host, mqtt_port=endpoint.port)
    worker = IngestWorker(settings, endpoint=endpoint, client_id=f"ingest-{endpoint.port}")
    worker.start()
    assert worker.wait_until_subscribed(10), "the ingest worker did not subscribe"
    return worker


def stored_identifiers(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {str(r[0]) for r in conn.execute("SELECT identifier FROM observations")}


def stored_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM observations").fetchone()
        return int(row[0]) if row else 0


def quarantined_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM quarantine").fetchone()
        return int(row[0]) if row else 0


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def identifiers(observations: list[dict[str, Any]]) -> set[str]:
    return {str(o["identifier"][0]["value"]) for o in observations}


def persist_broker_sessions(broker: EmbeddedBroker, timeout: float = 5.0) -> None:
    """Make Mosquitto snapshot its sessions now, as its autosave does in production.

    A production gateway's session is hours or days old, so it is in the broker's last snapshot; in a
    test it is seconds old, so the test saves it the way time would.
    """
    assert broker.save_state(timeout), "Mosquitto did not write its persistence file"
