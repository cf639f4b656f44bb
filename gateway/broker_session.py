"""A short MQTT connection for the gateway's own errands at the broker: making hub accounts
(``gateway.broker_accounts``) and publishing a hub's retained configuration (``gateway.hub_config``).

Each errand is rare (an administrator enrols a hub, assigns a device) and must either finish or say in
one line why not, within a bound: so one connection per errand, every wait ending at one deadline,
and nothing left running afterwards. ``BrokerSession`` connects (TLS when the address says so), waits
for the broker's CONNACK, subscribes and waits for the SUBACK, publishes at QoS 1 and waits for the
PUBACK, hands out what arrives on its subscriptions, and disconnects. Every failure is a
``BrokerUnavailable`` carrying one line (the callers translate it into their own error); a broker that
refuses a subscription or a publish (MQTT 5 reason code, or a 3.1.1 SUBACK 0x80) is a failure too.

Left to others: what the errands send (the callers), the ingest workers' long-lived sessions
(``gateway.ingest``), the start-up probe (``gateway.broker_check``).
"""

from __future__ import annotations

import queue
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway.errors import GatewayFailure
from gateway.settings import GatewaySettings

# A loopback broker answers in milliseconds and a remote one over TLS in well under a second; an
# administrator waits for this long at most before being told the broker does not answer.
DEFAULT_TIMEOUT_S = 10.0
# Sending DISCONNECT and stopping the network thread, after the errand (bounded on its own).
CLOSE_S = 1.0
# Our client ids: recognisable in the broker's log, unique per errand (a second errand with the same
# id would take over, and so cut off, the first one's connection).
CLIENT_ID_LENGTH = 12


class BrokerUnavailable(RuntimeError, GatewayFailure):
    """The errand could not be done at the broker: unreachable, refused, or no answer in time."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the gateway reaches the broker and how: TLS verifies the broker against ``ca_file``, or
    the system's CA certificates when None (as the ingest workers do with ``mqtt_ca_file``)."""

    host: str
    port: int
    tls: bool = False
    ca_file: Path | None = None
    mqtt5: bool = True

    @classmethod
    def of_gateway(cls, settings: GatewaySettings) -> BrokerAddress:
        """The broker as the gateway's settings name it (``mqtt_host``, ``mqtt_port``, ``mqtt_tls``,
        ``mqtt_ca_file``)."""
        return cls(
            settings.mqtt_host, settings.mqtt_port, settings.mqtt_tls, settings.mqtt_ca_file, settings.mqtt_v5
        )

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


class BrokerSession:
    """One connection for one errand (a context manager). Not for long-lived subscriptions."""

    def __init__(
        self,
        address: BrokerAddress,
        username: str | None,
        password: str | None,
        *,
        purpose: str,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.address = address
        self.username = username
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.messages: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._connected = threading.Event()
        self._refused: str | None = None
        self._lock = threading.Condition()
        self._acks: dict[int, ReasonCode | None] = {}
        protocol = MQTTProtocolVersion.MQTTv5 if address.mqtt5 else MQTTProtocolVersion.MQTTv311
        client_id = f"homewatch-{purpose}-{uuid.uuid4().hex[:CLIENT_ID_LENGTH]}"
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        if username is not None:
            self._client.username_pw_set(username, password)
        if address.tls:
            self._client.tls_set(ca_certs=str(address.ca_file) if address.ca_file is not None else None)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message

    # -- paho's thread -------------------------------------------------------------------------------

    def _on_connect(self, _c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        self._connected.set()

    def _on_subscribe(self, _c: object, _u: object, mid: int, reasons: list[ReasonCode], _p: object) -> None:
        with self._lock:
            self._acks[mid] = reasons[0] if reasons else None
            self._lock.notify_all()

    def _on_publish(self, _c: object, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        with self._lock:
            self._acks[mid] = reason
            self._lock.notify_all()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        self.messages.put((message.topic, bytes(message.payload)))

    # -- the errand ----------------------------------------------------------------------------------

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def __enter__(self) -> BrokerSession:
        address = self.address
        self._client.connect_timeout = max(0.1, self.remaining())
        try:
            self._client.connect(address.host, address.port)
        except ssl.SSLError as exc:
            raise BrokerUnavailable(f"TLS with the broker at {address} failed: {exc.reason or exc}") from exc
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise BrokerUnavailable(f"cannot reach the broker at {address}: {reason}") from exc
        self._client.loop_start()
        if not self._connected.wait(self.remaining()):
            self._stop()
            raise BrokerUnavailable(f"the broker at {address} did not answer within {self.timeout:.0f} s")
        if self._refused is not None:
            self._stop()
            who = f"account {self.username}" if self.username else "anonymous connection"
            raise BrokerUnavailable(f"the broker at {address} refused the {who}: {self._refused}")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._connected.is_set() and self._refused is None:
            self._client.disconnect()
        self._client.loop_stop()

    def _wait_ack(self, mid: int, what: str) -> ReasonCode | None:
        with self._lock:
            if not self._lock.wait_for(lambda: mid in self._acks, timeout=self.remaining()):
                raise BrokerUnavailable(
                    f"the broker at {self.address} did not acknowledge {what} within {self.timeout:.0f} s"
                )
            return self._acks.pop(mid)

    def subscribe(self, topic: str) -> None:
        """Subscribe at QoS 1; BrokerUnavailable when the broker refuses it."""
        result, mid = self._client.subscribe(topic, qos=1)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise BrokerUnavailable(f"could not subscribe to {topic} at {self.address}: {result.name}")
        reason = self._wait_ack(mid, f"the subscription to {topic}")
        if reason is None or reason.is_failure:
            raise BrokerUnavailable(f"the broker at {self.address} refused the subscription to {topic}")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK; BrokerUnavailable when it refuses."""
        try:
            info = self._client.publish(topic, payload, qos=1, retain=retain)
        except ValueError as exc:  # a wildcard in the topic, a payload too large for MQTT
            raise BrokerUnavailable(f"cannot publish to {topic!r}: {exc}") from exc
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise BrokerUnavailable(f"could not publish to {topic} at {self.address}: {info.rc.name}")
        reason = self._wait_ack(info.mid, f"the message to {topic}")
        # MQTT 5 says why in the PUBACK (Mosquitto: 0x87 when the access rules refuse the topic); a
        # 3.1.1 broker acknowledges even what its rules dropped, which cannot be seen from here.
        if reason is not None and reason.is_failure:
            raise BrokerUnavailable(f"the broker at {self.address} refused the message to {topic}: {reason}")

    def next_message(self) -> tuple[str, bytes] | None:
        """The next message received on a subscription, waiting until the deadline; None after it."""
        try:
            return self.messages.get(timeout=self.remaining())
        except queue.Empty:
            return None
