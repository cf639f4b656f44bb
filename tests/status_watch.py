"""Watching what hubs publish on their retained status topic, over a real broker."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import BrokerEndpoint

EVERY_HUB = "homewatch/v1/+/+/status"


class OnlineStatuses:
    """Keeps every online status published on ``topic`` (every hub's by default)."""

    def __init__(self, endpoint: BrokerEndpoint, topic: str = EVERY_HUB) -> None:
        self._lock = threading.Lock()
        self._seen: list[dict[str, Any]] = []
        ready = threading.Event()
        protocol = mqtt.MQTTv5 if endpoint.mqtt5 else mqtt.MQTTv311
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="status-watch", protocol=protocol)
        self._client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: ready.set()
        self._client.on_message = self._on_message
        self._client.connect(endpoint.host, endpoint.port)
        self._client.loop_start()
        assert ready.wait(5), "the status watcher did not get its SUBACK"

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        body = orjson.loads(message.payload)
        if body.get("state") == "online":
            with self._lock:
                self._seen.append(body)

    def any(self, condition: Callable[[dict[str, Any]], bool]) -> bool:
        """Whether any status seen so far meets ``condition``."""
        with self._lock:
            return any(condition(status) for status in self._seen)

    def close(self) -> None:
        self._client.disconnect()  # first: the network loop then ends at once, not at its 1 s timeout
        self._client.loop_stop()
