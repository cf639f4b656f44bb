"""Status messages and Bundles share one MQTT client: a status PUBACK never counts as a Bundle's, so
frequent statuses while a backlog drains delete no unsent row and leave nothing behind."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import HubConfig, MqttConfig
from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from gateway.broker import BrokerEndpoint

BACKLOG = 2_000


def test_statuses_interleaved_with_a_backlog_lose_no_reading(tmp_path: Path, broker: BrokerEndpoint) -> None:
    config = HubConfig(
        municipality="0101",
        hub_id="hub-st",
        patient_id="p",
        devices=(),
        mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5, delete_after="broker"),
        outbox_path=tmp_path / "outbox.sqlite3",
        bundle_size=10,
    )
    outbox = Outbox(config.outbox_path)
    outbox.put({"resourceType": "Observation", "identifier": [{"value": f"obs-{i}"}]} for i in range(BACKLOG))
    received: set[str] = set()
    lock = threading.Lock()
    ready = threading.Event()

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        bundle = orjson.loads(message.payload)
        with lock:
            received.update(e["resource"]["identifier"][0]["value"] for e in bundle["entry"])

    sink = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="status-sink")
    sink.on_connect = lambda client, *_: client.subscribe(config.topic("observations"), qos=1)
    sink.on_subscribe = lambda *_: ready.set()
    sink.on_message = on_message
    sink.connect(broker.host, broker.port)
    sink.loop_start()
    assert ready.wait(5)
    publisher = MqttPublisher(config, outbox)
    publisher.status_extra = lambda: {"devices": []}
    publisher.start()
    try:
        deadline = time.monotonic() + 30
        statuses = 0
        while outbox.depth() and time.monotonic() < deadline:
            statuses += publisher.publish_status()
            time.sleep(0.001)
        while time.monotonic() < deadline:
            with lock:
                if len(received) == BACKLOG:
                    break
            time.sleep(0.01)
        # Statuses really went out between the Bundles (how many depends on the machine's load: 50-200).
        assert statuses >= 10
        assert outbox.depth() == 0
        with lock:
            assert received == {f"obs-{i}" for i in range(BACKLOG)}
        time.sleep(0.2)  # the last status PUBACKs
        assert not publisher._status_mids and not publisher._acked_early
    finally:
        publisher.stop(timeout=2)
        outbox.close()
        sink.disconnect()  # first: the network loop then ends at once, not at its 1 s timeout
        sink.loop_stop()
