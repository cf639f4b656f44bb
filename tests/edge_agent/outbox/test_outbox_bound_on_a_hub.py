"""A hub's configured outbox bound reaches its outbox, and evictions show in the hub's status."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from outbox_readings import observation
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.agent import HubAgent
from edge_agent.config import DeviceConfig, HubConfig, MqttConfig
from gateway.broker import BrokerEndpoint


def _config(tmp_path: Path, endpoint: BrokerEndpoint, max_rows: int) -> HubConfig:
    return HubConfig(
        municipality="0101",
        hub_id="hub-bound",
        patient_id="p1",
        devices=(DeviceConfig(id="DEV1", address="F0:00:00:00:00:09", kind="heart-rate-monitor"),),
        mqtt=MqttConfig(host=endpoint.host, port=endpoint.port, mqtt5=endpoint.mqtt5),
        outbox_path=tmp_path / "outbox.sqlite3",
        outbox_max_rows=max_rows,
    )


def test_configured_bound_applies_and_evictions_are_reported_in_the_status(
    tmp_path: Path, broker: BrokerEndpoint
) -> None:
    agent = HubAgent(_config(tmp_path, broker, max_rows=3))  # not started: no radio is touched
    assert agent.outbox.max_rows == 3
    agent.outbox.put([observation("heart-rate", i) for i in range(5)])
    assert agent.outbox.depth() == 3
    assert agent.outbox.evicted == {"heart-rate": 2}

    statuses: list[dict[str, Any]] = []
    got = threading.Event()

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        body = orjson.loads(message.payload)
        if body.get("state") == "online":
            statuses.append(body)
            got.set()

    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="status-listener")
    listener.on_message = on_message
    listener.on_connect = lambda c, *_: c.subscribe("homewatch/v1/0101/hub-bound/status", qos=1)
    listener.connect(broker.host, broker.port)
    listener.loop_start()
    agent.publisher.start()
    try:
        assert got.wait(10), "no online status arrived"
        assert statuses[-1]["evicted"] == {"heart-rate": 2}
    finally:
        agent.publisher.stop()
        agent.outbox.close()
        listener.disconnect()  # first: the network loop then ends at once, not at its 1 s timeout
        listener.loop_stop()
