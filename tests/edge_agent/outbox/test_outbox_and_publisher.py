"""The outbox keeps readings durably and in order; the publisher delivers them over a real broker and
removes a row only after the broker acknowledged it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import DeviceConfig, HubConfig, MqttConfig
from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from gateway.broker import BrokerEndpoint, EmbeddedBroker


def _obs(i: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "identifier": [{"system": "urn:x", "value": f"obs-{i}"}], "n": i}


def test_put_is_idempotent_on_identifier_and_keeps_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite3")
    assert box.put([_obs(1), _obs(2)]) == 2
    assert box.put([_obs(2), _obs(3)]) == 1
    rows = box.after(0, 10)
    assert [r.identifier for r in rows] == ["obs-1", "obs-2", "obs-3"]
    box.delete([rows[0].seq])
    assert [r.identifier for r in box.after(0, 10)] == ["obs-2", "obs-3"]
    box.close()


def test_rows_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path)
    box.put([_obs(i) for i in range(5)])
    box.close()
    reopened = Outbox(path)
    assert reopened.depth() == 5
    assert orjson.loads(reopened.after(0, 1)[0].resource)["n"] == 0
    reopened.close()


def test_observation_without_identifier_is_refused(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    try:
        box.put([{"resourceType": "Observation"}])
    except ValueError as exc:
        assert "identifier" in str(exc)
    else:
        raise AssertionError("accepted an Observation without identifier")
    assert box.depth() == 0


def _config(tmp_path: Path, endpoint: BrokerEndpoint) -> HubConfig:
    return HubConfig(
        municipality="0101",
        hub_id="hub-t",
        patient_id="p-1",
        devices=(DeviceConfig(id="d-1", address="F0:00:00:00:00:01", kind="pulse-oximeter"),),
        # A plain subscriber stands where the gateway would: rows go at the PUBACK (the receipt mode is
        # tested with the real gateway in tests/delivery/test_gateway_receipts.py).
        mqtt=MqttConfig(host=endpoint.host, port=endpoint.port, mqtt5=endpoint.mqtt5, delete_after="broker"),
        outbox_path=tmp_path / "outbox.sqlite3",
        bundle_size=7,
    )


class _Subscriber:
    def __init__(self, endpoint: BrokerEndpoint, topic: str) -> None:
        self.identifiers: list[str] = []
        self.bundles = 0
        self._ready = threading.Event()
        protocol = mqtt.MQTTv5 if endpoint.mqtt5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-sub", protocol=protocol)
        self.client.on_connect = lambda c, *_: (c.subscribe(topic, qos=1), self._ready.set())
        self.client.on_message = self._on_message
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        assert self._ready.wait(5)
        time.sleep(0.2)  # the SUBACK

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        bundle = orjson.loads(msg.payload)
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "batch"
        self.bundles += 1
        self.identifiers += [e["resource"]["identifier"][0]["value"] for e in bundle["entry"]]

    def close(self) -> None:
        self.client.disconnect()  # first: the network loop then ends at once, not at its 1 s timeout
        self.client.loop_stop()


def _wait(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_publisher_drains_backlog_in_order_and_empties_outbox(
    tmp_path: Path, any_broker: BrokerEndpoint
) -> None:
    config = _config(tmp_path, any_broker)
    box = Outbox(config.outbox_path)
    box.put([_obs(i) for i in range(100)])
    sub = _Subscriber(any_broker, config.topic("observations"))
    publisher = MqttPublisher(config, box)
    publisher.start()
    try:
        assert _wait(lambda: box.depth() == 0)
        assert _wait(lambda: len(sub.identifiers) == 100)
        assert sub.identifiers == [f"obs-{i}" for i in range(100)]
        assert sub.bundles == 15  # ceil(100 / 7)
        assert publisher.stats.observations_sent == 100
    finally:
        publisher.stop()
        sub.close()
        box.close()


def test_readings_written_while_broker_is_down_arrive_after_it_returns(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    endpoint = broker.start()
    try:
        config = _config(tmp_path, endpoint)
        box = Outbox(config.outbox_path)
        publisher = MqttPublisher(config, box)
        publisher.start()
        assert _wait(lambda: publisher.connected)
        broker.kill()
        assert _wait(lambda: not publisher.connected)
        box.put([_obs(i) for i in range(20)])
        time.sleep(0.5)
        assert box.depth() == 20  # nothing is deleted without a PUBACK
        broker.start()
        sub = _Subscriber(endpoint, config.topic("observations"))
        assert _wait(lambda: box.depth() == 0, timeout=20)
        assert _wait(lambda: len(set(sub.identifiers)) == 20)
        publisher.stop()
        sub.close()
        box.close()
    finally:
        broker.stop()


def test_history_progress_is_stored_with_the_readings(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path)
    assert box.progress("glucose-1") is None
    box.put([_obs(1), _obs(2)], progress=("glucose-1", 17))
    box.put([], progress=("glucose-1", 18))
    box.close()
    reopened = Outbox(path)
    assert reopened.progress("glucose-1") == 18
    assert reopened.depth() == 2
    reopened.close()


def test_progress_is_not_recorded_when_the_readings_are_refused(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    with pytest.raises(ValueError, match="identifier"):
        box.put([_obs(1), {"resourceType": "Observation"}], progress=("glucose-1", 5))
    assert box.progress("glucose-1") is None and box.depth() == 0
