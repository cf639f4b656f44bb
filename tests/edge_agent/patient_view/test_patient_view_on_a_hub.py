"""The patient view as a hub serves it: HubService with ``[patient_view] enabled`` runs it on its own
event loop beside emulated devices (Bumble) and a real broker; what a cuff measured shows on today's
page, and "contact my nurse" leaves the hub as a Task in a Bundle on the broker."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
from agent_helpers import FAST, eventually
from paho.mqtt.enums import CallbackAPIVersion
from view_helpers import PIN, csrf

from edge_agent.config import (
    DeviceConfig,
    EmulationConfig,
    HubConfig,
    MqttConfig,
    PatientViewConfig,
    ResidentConfig,
)
from edge_agent.service import HubService
from gateway.broker import BrokerEndpoint


class Entries:
    """Every Bundle entry the hub publishes (a plain subscriber stands where the gateway would)."""

    def __init__(self, broker: BrokerEndpoint, topic: str) -> None:
        self.entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        ready = threading.Event()
        protocol = mqtt.MQTTv5 if broker.mqtt5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="view-watcher", protocol=protocol)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(5)

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.entries += orjson.loads(message.payload)["entry"]

    def of(self, url: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e["resource"] for e in self.entries if e["request"]["url"] == url]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def test_a_hub_serves_the_view_with_its_readings_and_sends_the_contact_request(
    tmp_path: Path, broker: BrokerEndpoint
) -> None:
    config = HubConfig(
        municipality="0101",
        hub_id="hub-v",
        patient_id="p-vera",
        devices=(DeviceConfig(id="cuff", address="00:00:00:00:00:01", kind="blood-pressure-cuff"),),
        mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5, delete_after="broker"),
        outbox_path=tmp_path / "outbox.sqlite3",
        emulation=EmulationConfig(interval_s=0.3),
        residents=(ResidentConfig(patient_id="p-vera", name="Vera", questionnaire="copd-daily"),),
        patient_view=PatientViewConfig(enabled=True, host="127.0.0.1", port=0, pin=PIN),
    )
    watcher = Entries(broker, config.topic("observations"))
    service = HubService(config, link_policy=FAST)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        await eventually(
            lambda: service.patient_view is not None and service.patient_view.port is not None, 15
        )
        assert service.patient_view is not None
        base = f"http://127.0.0.1:{service.patient_view.port}"
        await eventually(lambda: bool(watcher.of("Observation")), 15)
        async with httpx.AsyncClient(base_url=base, follow_redirects=True, timeout=10) as client:
            form = await client.get("/login")
            today = await client.post("/login", data={"pin": PIN, "csrf": csrf(form.text)})
            assert today.url.path == "/" and "Hej Vera" in today.text
            assert "Blodtryk modtaget" in today.text and "mmHg" in today.text
            contact = await client.get("/contact")
            sent = await client.post("/contact", data={"reason": "equipment", "csrf": csrf(contact.text)})
            assert "Din sygeplejerske har fået besked" in sent.text
        await eventually(lambda: bool(watcher.of("Task")), 15)
        (task,) = watcher.of("Task")
        assert task["for"] == {"reference": "Patient/p-vera"} and task["reasonCode"]["coding"][0]["code"] == (
            "equipment"
        )
    finally:
        stop.set()
        await asyncio.wait_for(running, 20)
        watcher.close()
    assert service.patient_view is None and service.history is None
