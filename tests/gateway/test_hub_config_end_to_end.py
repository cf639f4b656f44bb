"""A device assigned at the gateway reaches a running hub through the retained config, and its readings
come back, with no restart of either.

Real parts only: PostgreSQL, a broker process, the gateway as ``gateway serve`` runs it
(``gateway.service.Gateway``: ingest in a thread and the config job publishing lagging configs), and the
hub's own ``HubService`` with Bumble-emulated devices. The change is made as the administration layer
makes it (the device enrolled, ``config_version`` counted) while the broker connection of the
administrator's process is not used at all: the gateway's config job publishes it.
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
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent.ble.connection import LinkPolicy
from edge_agent.config import DeviceConfig, EmulationConfig, HubConfig, MqttConfig
from edge_agent.service import HubService
from gateway.broker import BrokerEndpoint, free_port
from gateway.service import Gateway, GatewayOptions
from gateway.settings import GatewaySettings
from gateway.store.enrolment import Home, HomeDevice, enroll_homes
from gateway.store.repository import Device, Municipality, Patient, enroll_device

MUNICIPALITY, PATIENT, HUB = "0101", "p-e2e-cfg", "hub-e2e-cfg"
CUFF, THERMOMETER = "cuff-e2e", "thermo-e2e"
# Short Bluetooth timeouts: the emulated devices answer at once.
FAST = LinkPolicy(scan_timeout=0.5, connect_timeout=1.0, max_attempts=3)


async def _until(condition: Callable[[], bool], within: float = 45.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


class Statuses:
    """The hub's retained status messages, as the fleet view would read them."""

    def __init__(self, broker: BrokerEndpoint) -> None:
        self.seen: list[dict[str, Any]] = []
        protocol = MQTTProtocolVersion.MQTTv5 if broker.mqtt5 else MQTTProtocolVersion.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        topic = f"homewatch/v1/{MUNICIPALITY}/{HUB}/status"
        self.client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self.client.on_message = lambda _c, _u, message: self.seen.append(orjson.loads(message.payload))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def config_version(self) -> str | None:
        return self.seen[-1].get("configVersion") if self.seen else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _stored(database_url: str, device_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM observations WHERE device_id = %s", (device_id,)).fetchone()
    return 0 if row is None else int(row[0])


def _assign_thermometer(database_url: str) -> None:
    """What ``homewatch admin device assign`` changes in the database (its broker part left out)."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        enroll_device(
            conn, Device(MUNICIPALITY, THERMOMETER, HUB, PATIENT, "thermometer", "00:00:00:00:00:09")
        )
        conn.execute("UPDATE hubs SET config_version = config_version + 1 WHERE id = %s", (HUB,))


async def test_a_device_assigned_at_the_gateway_is_read_by_the_running_hub_without_a_restart(
    tmp_path: Path, database_url: str, broker: BrokerEndpoint
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        home = Home(
            Patient(MUNICIPALITY, PATIENT, "Config e2e patient"),
            HUB,
            (HomeDevice(CUFF, "blood-pressure-cuff", "00:00:00:00:00:01"),),
        )
        enroll_homes(conn, [Municipality(MUNICIPALITY, "Test municipality")], [home])
    settings = GatewaySettings(environment="development", config_publish_interval_s=0.5)
    gateway = Gateway(
        GatewayOptions(database_url=database_url, broker=broker, workers=0, port=free_port()), settings
    )
    gateway.start()
    statuses = Statuses(broker)
    local = HubConfig(  # the hub's kit: the devices it had when it was enrolled
        municipality=MUNICIPALITY,
        hub_id=HUB,
        patient_id=PATIENT,
        devices=(DeviceConfig(id=CUFF, address="00:00:00:00:00:01", kind="blood-pressure-cuff"),),
        mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5),
        outbox_path=tmp_path / "outbox.sqlite3",
        emulation=EmulationConfig(interval_s=0.3),
        status_interval_s=1.0,
    )
    service = HubService(local, link_policy=FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await _until(lambda: _stored(database_url, CUFF) > 0)
        assert statuses.config_version() is None and _stored(database_url, THERMOMETER) == 0

        _assign_thermometer(database_url)

        await _until(lambda: statuses.config_version() == "1")
        assert [d.id for d in service.config.devices] == [CUFF, THERMOMETER]
        await _until(lambda: _stored(database_url, THERMOMETER) > 0)
        assert not task.done()  # the same hub service all along: the agent was restarted in place
        assert gateway.config_job is not None and gateway.config_job.last is not None
        with psycopg.connect(database_url) as conn:
            published = conn.execute("SELECT config_published FROM hubs WHERE id = %s", (HUB,)).fetchone()
        assert published == (1,)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        statuses.close()
        gateway.stop()
