"""The hub service: remote configuration from the retained config topic (applied, cached for a restart
offline, bad messages refused without stopping the hub) and the retained status with the devices.

Real parts: a broker process per test, Bumble-emulated devices (the service's ``[emulation]``), the
agent's own outbox and publisher.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from agent_helpers import FAST, eventually
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import DeviceConfig, EmulationConfig, HubConfig, MqttConfig
from edge_agent.service import HubService
from gateway.broker import BrokerEndpoint, free_port

TOPIC = "homewatch/v1/0101/hub-s"


class Watcher:
    """Keeps every message on the hub's topics; can publish retained config like the gateway does, and
    answers each Bundle with the gateway's receipt (without one, every stop of a hub waited its full 5 s
    for receipts that could not come)."""

    def __init__(self, broker: BrokerEndpoint) -> None:
        self._lock = threading.Lock()
        self.messages: list[tuple[str, Any]] = []
        ready = threading.Event()
        protocol = mqtt.MQTTv5 if broker.mqtt5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="service-watcher", protocol=protocol)
        self.client.on_connect = lambda client, *_: client.subscribe(
            [(f"{TOPIC}/status", 1), (f"{TOPIC}/observations", 1)]
        )
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(5)

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        leaf, body = message.topic.rsplit("/", 1)[1], orjson.loads(message.payload)
        with self._lock:
            self.messages.append((leaf, body))
        if leaf == "observations":
            self.client.publish(f"{TOPIC}/receipts", orjson.dumps({"bundle": body["id"]}), qos=1)

    def of(self, leaf: str) -> list[Any]:
        with self._lock:
            return [body for topic, body in self.messages if topic == leaf]

    def subjects(self) -> set[str]:
        return {
            entry["resource"]["subject"]["reference"]
            for bundle in self.of("observations")
            for entry in bundle["entry"]
        }

    def push_config(self, payload: bytes) -> None:
        self.client.publish(f"{TOPIC}/config", payload, qos=1, retain=True).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()  # first: the network loop then ends at once, not at its 1 s timeout
        self.client.loop_stop()


@pytest.fixture
def broker(any_broker: BrokerEndpoint) -> BrokerEndpoint:
    """Every test here runs on each broker this machine can run (Mosquitto and amqtt)."""
    return any_broker


@pytest.fixture
def watcher(broker: BrokerEndpoint) -> Iterator[Watcher]:
    w = Watcher(broker)
    yield w
    w.close()


def _config(tmp_path: Path, host: str, port: int, mqtt5: bool) -> HubConfig:
    return HubConfig(
        municipality="0101",
        hub_id="hub-s",
        patient_id="p-local",
        devices=(
            DeviceConfig(id="cuff", address="00:00:00:00:00:01", kind="blood-pressure-cuff"),
            DeviceConfig(id="oxi", address="00:00:00:00:00:02", kind="pulse-oximeter"),
        ),
        mqtt=MqttConfig(host=host, port=port, mqtt5=mqtt5),
        outbox_path=tmp_path / "outbox.sqlite3",
        emulation=EmulationConfig(interval_s=0.2),
        status_interval_s=1.0,
    )


class Running:
    def __init__(self, service: HubService) -> None:
        self.service = service
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(service.run(self.stop))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)


async def _wait(condition: Callable[[], bool], within: float = 10.0) -> None:
    await eventually(condition, within)


async def test_status_lists_devices_with_their_state(
    tmp_path: Path, broker: BrokerEndpoint, watcher: Watcher
) -> None:
    running = Running(HubService(_config(tmp_path, broker.host, broker.port, broker.mqtt5), link_policy=FAST))
    try:

        def full() -> bool:
            statuses = [s for s in watcher.of("status") if s["state"] == "online" and s.get("devices")]
            return bool(statuses) and all(
                d["connected"] and d["battery"] is not None for d in statuses[-1]["devices"]
            )

        await _wait(full)
        status = watcher.of("status")[-1]
        assert status["agentVersion"] and isinstance(status["queueDepth"], int)
        assert status["patientId"] == "p-local" and status["emulated"] is True
        cuff = next(d for d in status["devices"] if d["id"] == "cuff")
        assert cuff["kind"] == "blood-pressure-cuff" and cuff["firmware"] == "1.0.0"
        assert cuff["clock"] in ("in-sync", "wrong") and cuff["lastError"] is None
        assert {"lastSeen", "errors", "serial", "model"} <= cuff.keys()
        await _wait(lambda: watcher.subjects() == {"Patient/p-local"})
    finally:
        await running.close()
    assert watcher.of("status")[-1]["state"] == "offline"


async def test_retained_config_changes_patient_and_devices_and_survives_a_restart_offline(
    tmp_path: Path, broker: BrokerEndpoint, watcher: Watcher
) -> None:
    remote = {
        "version": "v7",
        "patient_id": "p-remote",
        "devices": [{"id": "thermo", "address": "00:00:00:00:00:09", "kind": "thermometer"}],
    }
    watcher.push_config(orjson.dumps(remote))
    local = _config(tmp_path, broker.host, broker.port, broker.mqtt5)
    running = Running(HubService(local, link_policy=FAST))
    try:
        await _wait(lambda: "Patient/p-remote" in watcher.subjects())
        assert running.service.config.patient_id == "p-remote"
        assert [d.id for d in running.service.config.devices] == ["thermo"]
        await _wait(lambda: any(s.get("configVersion") == "v7" for s in watcher.of("status")))
    finally:
        await running.close()
    assert local.remote_cache_path.exists()

    # Restart with no broker at all: the cached remote config is used from the start.
    offline = local.model_copy(update={"mqtt": MqttConfig(host="127.0.0.1", port=free_port())})
    running = Running(HubService(offline, link_policy=FAST))
    try:
        await _wait(lambda: running.service.agent is not None and running.service.agent.outbox.depth() > 0)
        agent = running.service.agent
        assert agent is not None
        assert running.service.config.patient_id == "p-remote"
        rows = agent.outbox.after(0, 100)
        assert {orjson.loads(r.resource)["subject"]["reference"] for r in rows} == {"Patient/p-remote"}
        assert {orjson.loads(r.resource)["device"]["reference"] for r in rows} == {"Device/thermo"}
    finally:
        await running.close()


async def test_bad_config_message_is_reported_and_the_hub_keeps_running(
    tmp_path: Path, broker: BrokerEndpoint, watcher: Watcher
) -> None:
    running = Running(HubService(_config(tmp_path, broker.host, broker.port, broker.mqtt5), link_policy=FAST))
    try:
        await _wait(lambda: any(s["state"] == "online" for s in watcher.of("status")))
        watcher.push_config(b'{"hub_id": "someone-else"}')
        await _wait(
            lambda: any((s.get("configError") or {}).get("field") == "hub_id" for s in watcher.of("status"))
        )
        assert not running.task.done()
        assert running.service.config.hub_id == "hub-s"
        watcher.push_config(b"{not json")
        await _wait(
            lambda: any(
                "JSON" in ((s.get("configError") or {}).get("reason") or "") for s in watcher.of("status")
            )
        )
        # A good message afterwards is applied and clears the error.
        watcher.push_config(b'{"patient_id": "p-new"}')
        await _wait(lambda: "Patient/p-new" in watcher.subjects())
        await _wait(lambda: watcher.of("status")[-1].get("configError") is None)
    finally:
        await running.close()


# -- `homewatch edge run` as a process --------------------------------------------------------------


def _toml(tmp_path: Path, broker: BrokerEndpoint) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(
        f"""
municipality = "0101"
hub_id = "hub-s"
patient_id = "p-cli"
outbox_path = "state/outbox.sqlite3"
status_interval_s = 1
devices = [
  {{ id = "cuff", address = "00:00:00:00:00:01", kind = "blood-pressure-cuff" }},
  {{ id = "scale", address = "00:00:00:00:00:02", kind = "scale" }},
]
[mqtt]
host = "{broker.host}"
port = {broker.port}
mqtt5 = {"true" if broker.mqtt5 else "false"}
[emulation]
interval_s = 0.3
"""
    )
    return path


def _start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "homewatch.cli", "edge", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_edge_run_delivers_readings_and_stops_cleanly_on_sigterm(
    tmp_path: Path, broker: BrokerEndpoint, watcher: Watcher
) -> None:
    process = _start(_toml(tmp_path, broker))
    try:
        await _wait(
            lambda: (
                {"Device/cuff", "Device/scale"}
                <= {
                    e["resource"]["device"]["reference"]
                    for b in watcher.of("observations")
                    for e in b["entry"]
                }
            ),
            within=30,
        )
        assert watcher.subjects() == {"Patient/p-cli"}
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert time.monotonic() - started < 10
    assert "stopped cleanly" in stderr and "Traceback" not in stderr
    assert _group_gone(process.pid)
    await _wait(lambda: watcher.of("status")[-1]["state"] == "offline")


async def test_last_will_says_offline_when_the_hub_is_killed(
    tmp_path: Path, broker: BrokerEndpoint, watcher: Watcher
) -> None:
    process = _start(_toml(tmp_path, broker))
    try:
        await _wait(lambda: any(s["state"] == "online" for s in watcher.of("status")), within=30)
        count = len(watcher.of("status"))
        process.kill()  # no clean stop: only the broker's Last Will can say offline
        process.wait(timeout=10)
        await _wait(lambda: any(s["state"] == "offline" for s in watcher.of("status")[count:]))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_edge_run_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "hub.toml"
    bad.write_text('municipality = "0101"\nhub_id = "h"\npatient_id = "p"\noutbox_path = "o"\ndevices = 3\n')
    result = subprocess.run(
        [sys.executable, "-m", "homewatch.cli", "edge", "run", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "devices" in lines[0] and str(bad) in lines[0], result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "homewatch.cli", "edge", "run", "--config", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


# -- the status's device entries (pure) -------------------------------------------------------------


def test_device_status_entry_and_what_counts_as_a_change() -> None:
    from datetime import UTC, datetime, timedelta

    from edge_agent.ble.connection import DeviceState
    from edge_agent.service import _change_key, device_status

    device = DeviceConfig(id="cuff", address="AA:00:00:00:00:01", kind="blood-pressure-cuff")
    assert device_status(device, None) == {
        "id": "cuff",
        "kind": "blood-pressure-cuff",
        "address": "AA:00:00:00:00:01",
        "connected": False,
    }
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    state = DeviceState(
        "AA:00:00:00:00:01", connected=True, last_seen=seen, battery=80, firmware="2.1", clock_status="wrong",
        clock_offset=timedelta(minutes=-61),
    )  # fmt: skip
    entry = device_status(device, state)
    assert entry["lastSeen"] == "2026-01-01T00:00:00+00:00" and entry["battery"] == 80
    assert entry["clock"] == "wrong" and entry["clockOffsetS"] == -3660.0 and entry["lastError"] is None
    later = device_status(device, DeviceState(**{**_fields(state), "last_seen": seen + timedelta(seconds=5)}))
    assert _change_key([entry]) == _change_key([later])  # a new value is not a state change
    flat = device_status(device, DeviceState(**{**_fields(state), "battery": 5}))
    assert _change_key([entry]) != _change_key([flat])


def _fields(state: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
