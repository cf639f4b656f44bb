"""The hub's status reaches the patient's page: battery, connection and last contact, end to end.

Real parts only: a broker process (Mosquitto when installed), the real ``HubService`` with a
Bumble-emulated pulse oximeter whose Battery Service reads 37 %, the real ingest worker, PostgreSQL, and
the app through its TestClient. A status published on another municipality's topic for the same hub
is refused into the quarantine and stores nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from seed import World, device, login, patient

from edge_agent.ble.connection import LinkPolicy
from edge_agent.config import DeviceConfig, EmulationConfig, HubConfig, MqttConfig
from edge_agent.service import HubService
from gateway.broker import BrokerEndpoint
from gateway.ingest.mqtt_ingest import IngestWorker
from gateway.settings import GatewaySettings

Conn = psycopg.Connection[Any]
PATIENT, HUB, OXIMETER = "p-bat", "hub-p-bat", "dev-bat-oxi"
# Short Bluetooth timeouts: the emulated devices answer at once.
FAST = LinkPolicy(scan_timeout=0.5, connect_timeout=1.0, max_attempts=3)


def _devices_section(client: TestClient) -> str:
    html: str = client.get(f"/patients/{PATIENT}").text
    start = html.index('<section id="devices"')
    return html[start : html.index("</section>", start)]


async def _until(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


def _publish(broker: BrokerEndpoint, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hostile-hub")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()  # first: the network loop then ends at once, not at its 1 s timeout
        client.loop_stop()


async def test_hub_status_battery_and_contact_reach_the_patient_page(
    tmp_path: Path,
    broker: BrokerEndpoint,
    settings: GatewaySettings,
    client: TestClient,
    world: World,
    db: Conn,
) -> None:
    patient(db, world.own, PATIENT, "Bente Batteri")
    device(db, world.own, PATIENT, OXIMETER, "pulse-oximeter")
    worker = IngestWorker(settings, endpoint=broker, client_id="ingest-status-test")
    worker.start()
    try:
        assert worker.wait_until_subscribed(10)
        login(client, world.nurse)
        assert "not reported" in _devices_section(client).split(OXIMETER)[1].split("</tr>")[0]

        # The same hub id under another municipality's topic: refused, quarantined, nothing stored.
        hostile = {"state": "online", "devices": [{"id": OXIMETER, "connected": True, "battery": 99}]}
        other_topic = f"homewatch/v1/{world.other}/{HUB}/status"
        _publish(broker, other_topic, orjson.dumps(hostile))

        def quarantined() -> list[str]:
            return [
                r[0] for r in db.execute("SELECT reason FROM quarantine WHERE topic = %s", (other_topic,))
            ]

        await _until(lambda: bool(quarantined()))
        assert quarantined()[0].startswith("unknown-hub:")
        assert db.execute("SELECT count(*) FROM hub_status").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM hub_status_devices").fetchone() == (0,)

        config = HubConfig(
            municipality=world.own,
            hub_id=HUB,
            patient_id=PATIENT,
            devices=(DeviceConfig(id=OXIMETER, address="00:00:00:00:00:02", kind="pulse-oximeter"),),
            mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5),
            outbox_path=tmp_path / "outbox.sqlite3",
            emulation=EmulationConfig(interval_s=0.5),
            status_interval_s=1.0,
        )
        service = HubService(config, link_policy=FAST)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        try:
            await _until(lambda: service.agent is not None and service._emulator is not None)
            emulator = service._emulator
            assert emulator is not None
            await _until(lambda: OXIMETER in emulator._peripherals)
            await emulator._peripherals[OXIMETER].set_battery(37)  # the Battery Service's level, notified

            def oximeter_row() -> str:
                return _devices_section(client).split(f"<td>{OXIMETER}</td>")[1].split("</tr>")[0]

            await _until(lambda: "37 %" in oximeter_row())
            row = oximeter_row()
            assert "low battery" not in row and ">connected<" in row.replace("<td>", ">")
            section = _devices_section(client)
            assert f"Hub {HUB}: last contact" in section
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
        stored = db.execute(
            "SELECT s.municipality_id, d.battery FROM hub_status s JOIN hub_status_devices d USING (hub_id)"
        ).fetchall()
        assert stored == [(world.own, 37)]

        # Low battery warns (the next status, still from the real hub's topic layout, says 12 %).
        low = {"state": "online", "devices": [{"id": OXIMETER, "connected": True, "battery": 12}]}
        _publish(broker, f"homewatch/v1/{world.own}/{HUB}/status", orjson.dumps(low))
        await _until(lambda: "12 %" in _devices_section(client))
        assert "low battery" in _devices_section(client)
    finally:
        worker.stop()
