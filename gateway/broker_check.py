"""At start-up, whether the external MQTT broker keeps what the gateway needs it to keep.

Mosquitto's default configuration keeps at most 1,000 queued QoS 1 messages per client and then drops
the rest, silently: a gateway that is down or falls behind a burst loses readings and cannot see it (its
session just never receives them; issue 15 lost 4 and 150 in two runs). So ``gateway serve`` with an
external broker runs one bounded probe before its ingest workers start:

1. a probe client with a persistent session (MQTT 5 session expiry, or ``clean_session=False`` on
   3.1.1) subscribes at QoS 1 to a topic of its own, ``homewatch/probe/{client id}``, and disconnects;
2. a second client publishes ``PROBE_MESSAGES`` (1,100) small QoS 1 messages to that topic, and reads
   ``$SYS/broker/version`` where the broker lets it;
3. the probe reconnects to its session and counts what the broker kept for it; then the session is
   removed (session expiry 0 on disconnect, or a clean 3.1.1 session).

One line is logged: a WARNING naming the settings to change (``max_queued_messages``,
``max_queued_bytes``, ``persistence``, ``autosave_interval``) when the broker kept fewer than it
acknowledged; INFO when it kept them all; INFO with the reason when the probe could not run or finish
(refused, unreachable, too slow). Persistence cannot be seen from a client: the lines name it anyway. The
probe never raises and gives up after ``PROBE_DEADLINE_S``. Both clients use the gateway's account; the
shipped access rules (deploy/mosquitto/acl) allow it the probe topic and ``$SYS/broker/version``.

The embedded broker (``gateway.broker``) is configured on purpose and is not probed. Left to others:
what the gateway does with the broker afterwards (``gateway.ingest``), the start-up order
(``gateway.service``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

# More than Mosquitto's default max_queued_messages (1,000), so a default broker shows by keeping fewer.
PROBE_MESSAGES = 1_100
# Mosquitto's default, named in the log lines.
DEFAULT_QUEUE_LIMIT = 1_000
# The whole probe, connections included; start-up waits no longer. On loopback it takes 0.2-0.3 s when
# the broker kept everything, 1.2 s when it did not (QUIET_S).
PROBE_DEADLINE_S = 5.0
# A reconnected session that received nothing new for this long has had everything the broker kept. It
# only costs time when the broker kept less than it acknowledged; long enough that a busy machine's pause
# mid-delivery does not pass for a drop.
QUIET_S = 1.0
# The probe's session outlives a disconnect by this much if its removal fails (the gateway was killed).
SESSION_EXPIRY_S = 60
# Outstanding QoS 1 publishes: enough for a WAN round trip not to dominate the probe's time.
INFLIGHT = 100
# Closing a connection, and removing a probe session left behind by a failure: bounded on their own,
# after the deadline if need be, so that a DISCONNECT is sent rather than cut off.
CLOSE_S = 1.0
PROBE_TOPIC_PREFIX = "homewatch/probe"
VERSION_TOPIC = "$SYS/broker/version"
DOCS = "docs/gateway.md, 'Broker settings the gateway needs'"


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """The broker and how the gateway connects to it."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    mqtt5: bool
    ca_file: Path | None = None  # the broker's CA; None: the system's CA certificates

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> ProbeTarget:
        return cls(
            settings.mqtt_host,
            settings.mqtt_port,
            settings.mqtt_tls,
            settings.mqtt_username,
            settings.mqtt_password,
            settings.mqtt_v5,
            settings.mqtt_ca_file,
        )


@dataclass(frozen=True, slots=True)
class BrokerCheck:
    """What the probe found. ``kept`` is None when it could not measure; ``unchecked`` then says why."""

    broker: str  # host:port
    version: str | None  # $SYS/broker/version, where readable
    sent: int  # probe messages the broker acknowledged
    kept: int | None  # of those, how many it kept for the offline session
    unchecked: str | None
    seconds: float
    probe_client_id: str

    @property
    def looks_default(self) -> bool:
        """The broker dropped queued messages, as Mosquitto's default configuration does past 1,000."""
        return self.kept is not None and self.kept < self.sent


class _ProbeError(Exception):
    """Why the probe stopped early (turned into ``BrokerCheck.unchecked``; never leaves this module)."""


class _Client:
    """One paho client of the probe and the events it waits for; every wait ends at the deadline."""

    def __init__(self, target: ProbeTarget, client_id: str, deadline: float, *, persistent: bool) -> None:
        self.target = target
        self.client_id = client_id
        self.deadline = deadline
        self.persistent = persistent
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.ever_connected = False
        self.refused: str | None = None
        self.session_present = False
        self.received = 0
        self.last_received = 0.0
        self.version: str | None = None
        self.acknowledged = 0
        self._subacks: dict[int, ReasonCode] = {}
        self._lock = threading.Lock()
        protocol = MQTTProtocolVersion.MQTTv5 if target.mqtt5 else MQTTProtocolVersion.MQTTv311
        clean_session = None if target.mqtt5 else not persistent
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session, protocol=protocol
        )
        if target.username is not None:
            self.client.username_pw_set(target.username, target.password)
        if target.tls:
            # The broker's CA (mqtt_ca_file), else the system's CA certificates, as ingest does.
            self.client.tls_set(ca_certs=str(target.ca_file) if target.ca_file is not None else None)
        self.client.max_inflight_messages_set(INFLIGHT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def connect(self, *, resume: bool) -> None:
        """Connect; ``resume`` takes up the persistent session left by the previous connection."""
        self.connected.clear()
        self.disconnected.clear()
        self.client.connect_timeout = max(0.1, self.remaining())
        properties = None
        if self.target.mqtt5 and self.persistent:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            if self.target.mqtt5:
                self.client.connect(
                    self.target.host, self.target.port, clean_start=not resume, properties=properties
                )
            else:
                self.client.connect(self.target.host, self.target.port)
        except (OSError, ValueError) as exc:
            raise _ProbeError(f"cannot connect: {exc}") from exc
        self.client.loop_start()
        if not self.connected.wait(self.remaining()):
            raise _ProbeError("the broker did not answer CONNECT in time")
        if self.refused is not None:
            raise _ProbeError(f"the broker refused the connection: {self.refused}")

    def subscribe(self, topic: str) -> ReasonCode:
        _, mid = self.client.subscribe(topic, qos=1)
        if mid is None:
            raise _ProbeError(f"could not send SUBSCRIBE for {topic}")
        if not self.wait_for(lambda: mid in self._subacks):
            raise _ProbeError(f"no SUBACK for {topic} in time")
        with self._lock:
            return self._subacks.pop(mid)

    def disconnect(self, *, end_session: bool = False) -> None:
        """Disconnect and stop the network loop; ``end_session`` also discards a persistent session."""
        properties = None
        if end_session and self.target.mqtt5 and self.persistent:
            properties = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 0
        self.client.disconnect(properties=properties)
        self.disconnected.wait(CLOSE_S)
        self.client.loop_stop()

    def close(self) -> None:
        """Disconnect if connected; stop the network loop either way."""
        if self.connected.is_set() and self.refused is None and not self.disconnected.is_set():
            self.disconnect()
        else:
            self.client.loop_stop()

    def wait_for(self, done: Callable[[], bool]) -> bool:
        """Poll ``done`` (under the callbacks' lock) until it is true or the deadline has passed."""
        while True:
            with self._lock:
                if done():
                    return True
            if self.remaining() <= 0:
                return False
            time.sleep(0.01)

    # -- paho callbacks (network thread) -----------------------------------------------------------

    def _on_connect(
        self, _c: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, reason: ReasonCode, _p: object
    ) -> None:
        self.refused = str(reason) if reason.is_failure else None
        self.ever_connected = self.ever_connected or self.refused is None
        self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, _r: object, _p: object) -> None:
        self.disconnected.set()

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        with self._lock:
            self._subacks[mid] = reasons[0]

    def _on_publish(self, _c: mqtt.Client, _u: object, _mid: int, _r: object, _p: object) -> None:
        with self._lock:
            self.acknowledged += 1

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            if message.topic == VERSION_TOPIC:
                self.version = bytes(message.payload).decode(errors="replace")
            else:
                self.received += 1
                self.last_received = time.monotonic()


def probe_broker(
    target: ProbeTarget, *, messages: int = PROBE_MESSAGES, deadline_s: float = PROBE_DEADLINE_S
) -> BrokerCheck:
    """Measure how many of ``messages`` QoS 1 messages the broker keeps for an offline persistent
    session. Never raises: what stopped the probe is in ``unchecked``."""
    started = time.monotonic()
    deadline = started + deadline_s
    client_id = f"homewatch-probe-{uuid.uuid4().hex[:12]}"
    topic = f"{PROBE_TOPIC_PREFIX}/{client_id}"
    probe = _Client(target, client_id, deadline, persistent=True)
    sender = _Client(target, f"{client_id}-sender", deadline, persistent=False)
    kept: int | None = None
    unchecked: str | None = None
    try:
        probe.connect(resume=False)
        suback = probe.subscribe(topic)
        if suback.is_failure:
            raise _ProbeError(f"the broker refused the probe's subscription to {topic}: {suback}")
        probe.disconnect()
        sender.connect(resume=False)
        sender.subscribe(VERSION_TOPIC)  # refused by some brokers: the version is then unknown
        for n in range(messages):
            sender.client.publish(topic, str(n).encode(), qos=1)
        if not sender.wait_for(lambda: sender.acknowledged >= messages):
            raise _ProbeError(f"the broker acknowledged {sender.acknowledged} of {messages} in time")
        probe.connect(resume=True)
        if not probe.session_present:
            raise _ProbeError("the broker kept no session for the probe (no persistent sessions?)")
        reconnected = time.monotonic()

        def all_back_or_quiet() -> bool:
            quiet = time.monotonic() - max(probe.last_received, reconnected) >= QUIET_S
            return probe.received >= messages or quiet

        if not probe.wait_for(all_back_or_quiet):
            raise _ProbeError(f"{probe.received} of {messages} queued messages came back in time")
        kept = probe.received
    except _ProbeError as exc:
        unchecked = str(exc)
    finally:
        _end_session(probe)
        sender.close()
    return BrokerCheck(
        broker=f"{target.host}:{target.port}",
        version=sender.version,
        sent=sender.acknowledged,
        kept=kept,
        unchecked=unchecked,
        seconds=time.monotonic() - started,
        probe_client_id=client_id,
    )


def _end_session(probe: _Client) -> None:
    """Remove the probe's session: on MQTT 5 by a DISCONNECT that sets its expiry to 0; otherwise (MQTT
    3.1.1, or the probe was not connected when it stopped) by one more connection with a clean start."""
    if probe.target.mqtt5 and probe.connected.is_set() and not probe.disconnected.is_set():
        probe.disconnect(end_session=True)
        return
    probe.close()
    if not probe.ever_connected:
        return  # no session was ever made
    cleaner = _Client(probe.target, probe.client_id, time.monotonic() + CLOSE_S, persistent=False)
    try:
        cleaner.connect(resume=False)
        cleaner.close()
    except _ProbeError as exc:
        cleaner.close()
        log.debug("could not remove the probe's session %s (%s); the broker keeps it", probe.client_id, exc)


def report(check: BrokerCheck) -> None:
    """Log the one line that says what the probe found."""
    broker = f"MQTT broker {check.broker} ({check.version or 'version not readable'})"
    if check.unchecked is not None:
        log.info(
            "could not check the %s keeps the gateway's queued messages: %s (%.1f s). The gateway needs it "
            "to keep far more than %d queued QoS 1 messages per session, with persistence: see %s",
            broker,
            check.unchecked,
            check.seconds,
            DEFAULT_QUEUE_LIMIT,
            DOCS,
        )
    elif check.looks_default:
        log.warning(
            "%s kept only %d of %d QoS 1 messages queued for an offline session: readings queued for a "
            "gateway that is down or behind would be dropped silently (a default Mosquitto keeps %d). Set "
            "max_queued_messages (e.g. 1000000), max_queued_bytes 0, persistence true and "
            "autosave_interval 60, as deploy/mosquitto/homewatch.conf does; see %s",
            broker,
            check.kept,
            check.sent,
            DEFAULT_QUEUE_LIMIT,
            DOCS,
        )
    else:
        log.info(
            "%s kept all %d QoS 1 messages queued for an offline session (a default Mosquitto keeps %d); "
            "persistence and autosave_interval cannot be seen from here: see %s (probe %.1f s)",
            broker,
            check.sent,
            DEFAULT_QUEUE_LIMIT,
            DOCS,
            check.seconds,
        )


def check_external_broker(settings: GatewaySettings) -> BrokerCheck:
    """Probe the broker ``settings`` name and log what was found. Never raises, never takes longer
    than about ``PROBE_DEADLINE_S``."""
    check = probe_broker(ProbeTarget.from_settings(settings))
    report(check)
    return check
