"""The publisher names each Bundle entry's request url by the resource it carries: a patient's answers
go as ``QuestionnaireResponse``, "contact my nurse" as ``Task``, readings as ``Observation``, in one
Bundle, over a real broker (the gateway routes each entry by that url and the resource's type)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import DeviceConfig, HubConfig, MqttConfig
from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from fhir_contract.contact import build_contact_request
from fhir_contract.observation import build_observation
from fhir_contract.questionnaire import build_response, current
from fhir_contract.readings import Quantity, Reading
from gateway.broker import BrokerEndpoint

AT = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def test_entries_are_posted_to_their_own_resource_type(tmp_path: Path, broker: BrokerEndpoint) -> None:
    config = HubConfig(
        municipality="0101",
        hub_id="hub-u",
        patient_id="p-1",
        devices=(DeviceConfig(id="scale", address="F0:00:00:00:00:01", kind="scale"),),
        mqtt=MqttConfig(host=broker.host, port=broker.port, mqtt5=broker.mqtt5, delete_after="broker"),
        outbox_path=tmp_path / "outbox.sqlite3",
    )
    q = current("copd-daily")
    resources = [
        build_observation(
            Reading("body-weight", value=Quantity(Decimal("80.1"), "kg")),
            patient_id="p-1",
            device_id="scale",
            hub_id="hub-u",
            effective=AT,
        ),
        build_response(
            q,
            {i.link_id: i.options[0].code for i in q.questions},
            patient_id="p-1",
            hub_id="hub-u",
            authored=AT,
        ),
        build_contact_request(patient_id="p-1", hub_id="hub-u", authored=AT, reason="question"),
    ]
    received: list[dict[str, Any]] = []
    arrived = threading.Event()
    protocol = mqtt.MQTTv5 if broker.mqtt5 else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bundle-reader", protocol=protocol)
    subscribed = threading.Event()
    client.on_connect = lambda c, *_: c.subscribe(config.topic("observations"), qos=1)
    client.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        received.append(orjson.loads(message.payload))
        arrived.set()

    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.loop_start()
    box = Outbox(config.outbox_path)
    publisher = MqttPublisher(config, box)
    try:
        assert subscribed.wait(5)
        box.put(resources)
        publisher.start()
        assert arrived.wait(10)
        (bundle,) = received
        assert [
            (e["request"]["method"], e["request"]["url"], e["resource"]["resourceType"])
            for e in bundle["entry"]
        ] == [
            ("POST", "Observation", "Observation"),
            ("POST", "QuestionnaireResponse", "QuestionnaireResponse"),
            ("POST", "Task", "Task"),
        ]
        assert [e["resource"] for e in bundle["entry"]] == resources
    finally:
        publisher.stop()
        client.disconnect()
        client.loop_stop()
        box.close()
