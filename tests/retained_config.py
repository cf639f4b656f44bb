"""What a hub subscribing now is handed on its retained config topic: the test's eyes on the broker."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import BrokerEndpoint


def retained_config(broker: BrokerEndpoint, topic: str = "homewatch/v1/0101/hub-1/config") -> bytes:
    """The retained message on ``topic`` (the newest, should two arrive); fails after 5 s without one."""
    got: list[bytes] = []
    arrived = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        got.append(bytes(message.payload))
        arrived.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert arrived.wait(5), f"no retained message on {topic}"
    finally:
        client.loop_stop()
        client.disconnect()
    return got[-1]
