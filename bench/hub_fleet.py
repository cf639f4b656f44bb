"""Thousands of hubs on one real Mosquitto: connecting, publishing, a broker restart and the reconnect storm.

Everything on the wire is real: a Mosquitto started here (its own configuration on a free loopback port,
persistence on, ``max_connections -1``, the queue limits of ``gateway.broker``, the file-descriptor limit
raised for it and for this process), ``--hubs`` MQTT connections that behave like the hub's publisher,
and one more connection that behaves like the gateway. The clients are a small asyncio MQTT 3.1.1 client
written for this bench (2,000 paho clients would be 2,000 threads): one process, one event loop.

A simulated hub, as ``edge_agent.publish.MqttPublisher`` does it:

- a persistent session (``clean_session`` false, keep-alive 60 s, the Last Will ``offline`` retained),
  on every connection subscribes to its ``errors``, ``config`` and ``receipts`` at QoS 1 and publishes its
  retained ``online`` status (QoS 1, 1.4 kB: four devices, as ``edge_agent.service`` writes it), and
  again every ``STATUS_INTERVAL_S`` (60 s, the hub's default: real time, not compressed);
- one FHIR batch Bundle at QoS 1 every ``--interval`` seconds (random phase): the readings of one
  measurement of the daily plan of ``models.cohort.profiles`` (weight 1 Observation, blood pressure and
  pulse 2, SpO2 and pulse 2, temperature 1), built with ``fhir_contract`` as the hub builds them,
  1.4-3.5 kB, mean 2.6 kB. A patient measures 6 times a day; one Bundle per hub every 10 s is that rate
  compressed 1,440 times;
- a Bundle is forgotten only on the gateway's receipt. What paho would resend is resent: PUBLISH packets
  not yet acknowledged go again with DUP set on every reconnect (MQTT 3.1.1, 4.4); Bundles the broker
  acknowledged but the gateway has not confirmed are sent again after every reconnect and when their
  receipt is ``RECEIPT_TIMEOUT_S`` late;
- after a lost connection, waits ``reconnect_delay`` of ``edge_agent.publish.mqtt_publisher`` (the hub's
  own function, jittered) or, for the baseline, paho's deterministic doubling between the same bounds
  (``lockstep_delay``: 1, 2, 4, ... 60 s), and tries again.

The gateway: one persistent session subscribed at QoS 1 to every hub's ``observations`` and ``status``;
it counts each Bundle id once (and the copies), and publishes a receipt (QoS 1) to the hub. It
reconnects with the same back-off as the hubs.

Phases, each mode (``--modes jitter lockstep``) with its own fresh broker:

1. connect: every hub connects, ``CONNECT_SLOTS`` handshakes at a time; connections per second.
2. steady: ``--steady`` seconds of publishing; messages per second through the broker, the broker's
   resident memory (VmRSS) and CPU (utime + stime from ``/proc/<pid>``), this process's CPU.
3. restart: the broker gets ``--signal`` (TERM: it saves its persistence file and exits; KILL: a crash,
   after a snapshot taken with SIGUSR1 at the end of phase 1, as a production broker's autosave would
   have), stays down ``--down`` seconds (systemd's ``RestartSec=5``) and starts again on the same port
   with the same persistence; hubs keep making Bundles meanwhile.
4. storm: time from the broker listening again until every hub is connected, the peak connections
   (CONNACKs) and connection attempts begun in any second and any 100 ms, failed attempts, the broker's
   CPU (in all, beyond what the steady traffic costs in as long, and in its busiest second, sampled every
   0.1 s) and this process's worst event-loop lag (a late loop reads CONNACKs in bursts: the peaks are
   times this process saw).
5. drain: production stops; every Bundle must be confirmed by a receipt. Reconciliation: Bundles made,
   unique Bundle ids the gateway received, lost (made, never received: must be 0) and copies received
   (QoS 1 delivers at least once, and Bundles are resent after reconnects: duplicates are expected and
   the gateway stores by Observation identifier, so they cost work, not correctness).

It reports and does not assert; ``--json`` prints one JSON object per mode instead of the table (the
smoke test, ``tests/bench/test_hub_fleet.py``, reads it).

``--tls`` puts the listener behind TLS 1.2 with a throwaway CA and an RSA 2048 server certificate (made
with ``openssl``), the clients verifying it as the hub's paho ``tls_set`` does.

    .venv/bin/python bench/hub_fleet.py [--hubs 2000] [--interval 10] [--steady 30] [--down 5]
        [--signal TERM|KILL] [--tls] [--modes jitter lockstep] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import random
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from edge_agent.publish.mqtt_publisher import RECONNECT_MAX_S, RECONNECT_MIN_S, reconnect_delay
from fhir_contract.examples import example_reading
from fhir_contract.observation import build_observation
from gateway.broker import MAX_QUEUED_MESSAGES, free_port, mosquitto_binary, run_as_root_line

MUNICIPALITY = "0101"
KEEPALIVE_S = 60  # paho's default, which the hub uses
STATUS_INTERVAL_S = 60.0  # edge_agent.config.HubConfig.status_interval_s default
# The hub waits 60 s for a receipt; shorter here so that a lost one shows within the bench's minutes.
RECEIPT_TIMEOUT_S = 20.0
CONNECT_TIMEOUT_S = 10.0  # TCP connect and CONNACK, each
CONNECT_SLOTS = 100  # handshakes in progress at once in phase 1 (a ramp, not a storm)
TICK_S = 0.25  # how often hubs look whether a Bundle, a status or a resend is due
SETTLE_S = 5.0  # publishing after the storm before production stops
DRAIN_TIMEOUT_S = 90.0
START_TIMEOUT_S = 15.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

DelayFunction = Callable[[int, random.Random], float]


def lockstep_delay(attempt: int, _rng: random.Random) -> float:
    """paho's own back-off with the hub's bounds: 1, 2, 4, ... 60 s, the same for every hub."""
    return min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2.0 ** min(attempt, 64))


def jittered_delay(attempt: int, rng: random.Random) -> float:
    """The hub's back-off (``edge_agent.publish.mqtt_publisher.reconnect_delay``)."""
    return reconnect_delay(attempt, rng)


DELAYS: dict[str, DelayFunction] = {"jitter": jittered_delay, "lockstep": lockstep_delay}


# --- MQTT 3.1.1: just what a hub and the gateway use (QoS 0/1, retained, will, persistent session) ---

# Packet types (MQTT 3.1.1, 2.2.1): what these clients send and read.
CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, DISCONNECT = 8, 9, 12, 14


def _length(n: int) -> bytes:
    """MQTT's variable-length integer (remaining length)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _length(len(body)) + body


def connect_packet(client_id: bytes, will: tuple[bytes, bytes] | None, *, clean: bool) -> bytes:
    """CONNECT, MQTT 3.1.1; the will (topic, payload) retained at QoS 1."""
    flags = 0x02 if clean else 0
    payload = _string(client_id)
    if will is not None:
        flags |= 0x04 | 0x08 | 0x20  # will, will QoS 1, will retain
        payload += _string(will[0]) + _string(will[1])
    return _packet(
        CONNECT, 0, _string(b"MQTT") + bytes([4, flags]) + KEEPALIVE_S.to_bytes(2, "big") + payload
    )


def publish_packet(topic: bytes, payload: bytes, pid: int, *, dup: bool, retain: bool) -> bytes:
    """PUBLISH at QoS 1."""
    flags = (0x08 if dup else 0) | 0x02 | (0x01 if retain else 0)
    return _packet(PUBLISH, flags, _string(topic) + pid.to_bytes(2, "big") + payload)


def puback_packet(pid: int) -> bytes:
    return _packet(PUBACK, 0, pid.to_bytes(2, "big"))


def subscribe_packet(pid: int, topics: Iterable[bytes]) -> bytes:
    return _packet(SUBSCRIBE, 0x02, pid.to_bytes(2, "big") + b"".join(_string(t) + b"\x01" for t in topics))


PINGREQ_PACKET = _packet(PINGREQ, 0, b"")
DISCONNECT_PACKET = _packet(DISCONNECT, 0, b"")


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """(type, flags, body) of the next packet; IncompleteReadError when the connection ends."""
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        digit = (await reader.readexactly(1))[0]
        length |= (digit & 0x7F) << shift
        if not digit & 0x80:
            break
        shift += 7
    return first >> 4, first & 0x0F, await reader.readexactly(length) if length else b""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the clients connect; ``tls`` verifies the broker's certificate when set."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None


class Refused(ConnectionError):
    """The broker answered CONNECT with anything but a successful CONNACK."""


@dataclass(slots=True)
class Outgoing:
    """A QoS 1 PUBLISH of this session not yet acknowledged by the broker."""

    topic: bytes
    payload: bytes
    retain: bool
    sent: bool = False  # sent on some connection: the next sending sets DUP


class MqttSession:
    """One client's MQTT 3.1.1 session with ``clean_session`` false: what it must keep across connections.

    ``publish`` while disconnected queues the message (as paho does); on each new connection every
    unacknowledged PUBLISH goes again, in order, before anything new. Incoming QoS 1 messages are
    handed to ``on_message`` and then acknowledged.
    """

    def __init__(
        self,
        client_id: str,
        on_message: Callable[[bytes, bytes], None],
        *,
        on_puback: Callable[[int], None] | None = None,
        on_suback: Callable[[], None] | None = None,
        will: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.client_id = client_id.encode()
        self.on_message = on_message
        self.on_puback = on_puback
        self.on_suback = on_suback
        self.will = will
        self.inflight: dict[int, Outgoing] = {}  # packet id -> message, in sending order
        self.connected = False
        self.last_sent = 0.0
        self._next_pid = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def _pid(self) -> int:
        while True:
            self._next_pid = self._next_pid % 65535 + 1
            if self._next_pid not in self.inflight:
                return self._next_pid

    def _write(self, data: bytes) -> None:
        # A connection the broker dropped is closing before our reader sees its end: nothing goes out on
        # it (what was in flight is resent on the next connection).
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)
            self.last_sent = time.monotonic()

    def publish(self, topic: bytes, payload: bytes, *, retain: bool = False) -> int:
        pid = self._pid()
        message = self.inflight[pid] = Outgoing(topic, payload, retain)
        if self.connected:
            self._send(pid, message)
        return pid

    def _send(self, pid: int, message: Outgoing) -> None:
        self._write(
            publish_packet(message.topic, message.payload, pid, dup=message.sent, retain=message.retain)
        )
        message.sent = True

    def subscribe(self, topics: list[bytes]) -> None:
        """SUBSCRIBE at QoS 1 (``on_suback`` is called at the SUBACK)."""
        self._write(subscribe_packet(self._pid(), topics))

    async def open(self, endpoint: Endpoint) -> bool:
        """Connect and resend what is unacknowledged; True when the broker still had the session."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.port, ssl=endpoint.tls), CONNECT_TIMEOUT_S
        )
        try:
            writer.write(connect_packet(self.client_id, self.will, clean=False))
            kind, _, body = await asyncio.wait_for(read_packet(reader), CONNECT_TIMEOUT_S)
            if kind != CONNACK or len(body) != 2 or body[1] != 0:
                raise Refused(f"{self.client_id!r}: CONNACK {body!r}")
        except BaseException:
            writer.close()
            raise
        self._reader, self._writer, self.connected = reader, writer, True
        for pid, message in list(self.inflight.items()):
            self._send(pid, message)
        return bool(body[0] & 0x01)

    async def serve(self) -> None:
        """Handle packets until the connection ends (returns; the caller reconnects)."""
        assert self._reader is not None
        try:
            while True:
                kind, flags, body = await read_packet(self._reader)
                if kind == PUBLISH:
                    self._incoming(flags, body)
                elif kind == PUBACK:
                    pid = int.from_bytes(body[:2], "big")
                    if self.inflight.pop(pid, None) is not None and self.on_puback is not None:
                        self.on_puback(pid)
                elif kind == SUBACK and self.on_suback is not None:
                    self.on_suback()
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._drop()

    def _incoming(self, flags: int, body: bytes) -> None:
        end = 2 + int.from_bytes(body[:2], "big")
        topic, qos = body[2:end], (flags >> 1) & 0x03
        if qos:
            pid = int.from_bytes(body[end : end + 2], "big")
            self.on_message(topic, body[end + 2 :])
            self._write(puback_packet(pid))
        else:
            self.on_message(topic, body[end:])

    def ping_if_idle(self, now: float) -> None:
        if self.connected and now - self.last_sent > KEEPALIVE_S / 2:
            self._write(PINGREQ_PACKET)

    def _drop(self) -> None:
        self.connected = False
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def close(self) -> None:
        """DISCONNECT cleanly (no Last Will); the session stays with the broker."""
        writer = self._writer
        if writer is not None and self.connected:
            writer.write(DISCONNECT_PACKET)
            with contextlib.suppress(OSError):
                await writer.drain()
        self._drop()


# --- what hubs send ---------------------------------------------------------------------------------

BUNDLE_PREFIX = b'{"resourceType":"Bundle","id":"'
# One measurement of the daily plan (models.cohort.profiles.DAILY_PLAN: morning weight, pressure,
# saturation, temperature; evening pressure and saturation), as the readings the hub makes of it.
PLAN: tuple[tuple[str, ...], ...] = (
    ("body-weight",),
    ("blood-pressure", "pulse-rate-cuff"),
    ("spo2", "pulse-rate-oximeter"),
    ("body-temperature",),
    ("blood-pressure", "pulse-rate-cuff"),
    ("spo2", "pulse-rate-oximeter"),
)
HUB_MARK = "HUBMARK"  # replaced by a hub's id in the templates


def bundle_templates() -> list[bytes]:
    """The entries of each measurement's Bundle, as the hub's publisher joins them (``_send``)."""
    now = datetime.now(UTC).replace(microsecond=0)
    templates = []
    for kinds in PLAN:
        entries = b",".join(
            b'{"resource":'
            + orjson.dumps(
                build_observation(
                    example_reading(kind),
                    patient_id=f"p-{HUB_MARK}",
                    device_id=f"dev-{HUB_MARK}-{kind}",
                    hub_id=HUB_MARK,
                    effective=now,
                    received=now,
                )
            )
            + b',"request":{"method":"POST","url":"Observation"}}'
            for kind in kinds
        )
        templates.append(b'","type":"batch","entry":[' + entries + b"]}")
    return templates


def status_payload(hub: str, state: str) -> bytes:
    """The hub's retained status with four devices (``edge_agent.service.device_status`` fields)."""
    if state == "offline":
        return orjson.dumps({"state": "offline", "agentVersion": "0.1.0", "queueDepth": None})
    now = datetime.now(UTC).isoformat()
    devices = [
        {
            "id": f"dev-{hub}-{kind}",
            "kind": kind,
            "address": "00:11:22:33:44:55",
            "connected": False,
            "lastSeen": now,
            "battery": 80,
            "firmware": "1.0.3",
            "model": "Bench",
            "serial": "SN0001",
            "clock": "in-sync",
            "clockOffsetS": 0.4,
            "errors": 0,
            "lastError": None,
        }
        for kind in ("weight-scale", "blood-pressure-monitor", "pulse-oximeter", "thermometer")
    ]
    return orjson.dumps(
        {
            "state": "online",
            "agentVersion": "0.1.0",
            "queueDepth": 0,
            "awaitingReceipt": 0,
            "evicted": {},
            "outboxFull": False,
            "heldInMemory": 0,
            "patientId": f"p-{hub}",
            "configVersion": "1",
            "configError": None,
            "emulated": False,
            "devices": devices,
        }
    )


def topic(hub: str, leaf: str) -> bytes:
    return f"homewatch/v1/{MUNICIPALITY}/{hub}/{leaf}".encode()


# --- the fleet ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Pending:
    """A Bundle made and not yet confirmed by the gateway's receipt."""

    payload: bytes
    pid: int | None = None  # while the broker has not acknowledged it
    resend_at: float = float("inf")  # once acknowledged: when it goes again without a receipt
    confirmed: bool = False  # the receipt came before the PUBACK of the copy in flight


@dataclass(slots=True)
class Counters:
    bundles_made: int = 0
    bundles_sent: int = 0  # PUBLISH packets of Bundles, resends included (not DUP retransmissions)
    statuses_sent: int = 0
    receipts_received: int = 0
    attempts: list[float] = field(default_factory=list)  # monotonic time each connection attempt began
    connects: list[float] = field(default_factory=list)  # monotonic time of each successful CONNACK
    failed_attempts: int = 0  # refused, reset or timed out
    made_ids: set[bytes] = field(default_factory=set)


class Hub:
    """One simulated hub (see the module docstring)."""

    def __init__(self, fleet: Fleet, n: int) -> None:
        self.fleet = fleet
        self.name = f"hub{n:05d}"
        self.rng = random.Random(fleet.seed * 1_000_003 + n)
        self.observations, self.receipts = topic(self.name, "observations"), topic(self.name, "receipts")
        self.status_topic = topic(self.name, "status")
        self.session = MqttSession(
            f"hub-{self.name}",
            self._on_message,
            on_puback=self._on_puback,
            will=(self.status_topic, status_payload(self.name, "offline")),
        )
        self.templates = [t.replace(HUB_MARK.encode(), self.name.encode()) for t in fleet.templates]
        self.online_status = status_payload(self.name, "online")
        self.unconfirmed: dict[bytes, Pending] = {}
        self.by_pid: dict[int, bytes] = {}
        self.seq = 0
        self.next_bundle = float("inf")
        self.next_status = float("inf")
        self.ever_connected = False

    async def run(self, slots: asyncio.Semaphore | None) -> None:
        attempt = 0
        fleet = self.fleet
        while not fleet.stopping:
            fleet.counters.attempts.append(time.monotonic())
            try:
                if slots is not None and not self.ever_connected:
                    async with slots:
                        await self.session.open(fleet.endpoint)
                else:
                    await self.session.open(fleet.endpoint)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                fleet.counters.failed_attempts += 1
                await asyncio.sleep(fleet.delay(attempt, self.rng))
                attempt += 1
                continue
            attempt = 0
            fleet.counters.connects.append(time.monotonic())
            self._connected()
            await self.session.serve()
            if fleet.stopping:
                return
            await asyncio.sleep(fleet.delay(attempt, self.rng))
            attempt += 1

    def _connected(self) -> None:
        """As the hub's on_connect: subscribe, say online, resend what the gateway has not confirmed."""
        self.session.subscribe([topic(self.name, "errors"), topic(self.name, "config"), self.receipts])
        self._status(time.monotonic())
        if self.ever_connected:
            for bundle_id, pending in self.unconfirmed.items():
                if pending.pid is None:  # acknowledged by the broker, maybe lost by it: send again
                    self._send(bundle_id, pending)
        self.ever_connected = True

    def _status(self, now: float) -> None:
        self.session.publish(self.status_topic, self.online_status, retain=True)
        self.fleet.counters.statuses_sent += 1
        self.next_status = now + STATUS_INTERVAL_S

    def _send(self, bundle_id: bytes, pending: Pending) -> None:
        pending.resend_at = float("inf")
        pending.pid = self.session.publish(self.observations, pending.payload)
        self.by_pid[pending.pid] = bundle_id
        self.fleet.counters.bundles_sent += 1

    def make_bundle(self) -> None:
        bundle_id = f"{self.name}-{self.seq}".encode()
        payload = BUNDLE_PREFIX + bundle_id + self.templates[self.seq % len(self.templates)]
        self.seq += 1
        pending = self.unconfirmed[bundle_id] = Pending(payload)
        self.fleet.counters.bundles_made += 1
        self.fleet.counters.made_ids.add(bundle_id)
        self._send(bundle_id, pending)  # queued in the session while disconnected, as paho does

    def tick(self, now: float, producing: bool) -> None:
        if producing and now >= self.next_bundle:
            self.make_bundle()
            self.next_bundle = max(self.next_bundle + self.fleet.interval, now)
        if not self.session.connected:
            return
        if now >= self.next_status:
            self._status(now)
        for bundle_id, pending in self.unconfirmed.items():
            if pending.resend_at <= now:
                self._send(bundle_id, pending)
        self.session.ping_if_idle(now)

    def _on_puback(self, pid: int) -> None:
        bundle_id = self.by_pid.pop(pid, b"")  # a status's PUBACK: no Bundle
        pending = self.unconfirmed.get(bundle_id)
        if pending is None or pending.pid != pid:
            return
        pending.pid = None
        if pending.confirmed:
            del self.unconfirmed[bundle_id]
        else:
            pending.resend_at = time.monotonic() + RECEIPT_TIMEOUT_S

    def _on_message(self, topic_: bytes, payload: bytes) -> None:
        if topic_ == self.receipts:
            self.fleet.counters.receipts_received += 1
            bundle_id = orjson.loads(payload)["bundle"].encode()
            pending = self.unconfirmed.get(bundle_id)
            if pending is not None and pending.pid is None:
                del self.unconfirmed[bundle_id]
            elif pending is not None:  # a copy is in flight: forget the Bundle at its PUBACK
                pending.confirmed = True


class Gateway:
    """Counts each Bundle once, and its copies; sends the hub a receipt for every copy."""

    OBSERVATIONS, STATUS = b"/observations", b"/status"

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.subscribed = asyncio.Event()
        self.session = MqttSession("bench-gateway", self._on_message, on_suback=self.subscribed.set)
        self.rng = random.Random(fleet.seed)
        self.seen: set[bytes] = set()
        self.received = 0
        self.statuses = 0
        self.receipts = 0

    async def run(self) -> None:
        attempt = 0
        wildcard = f"homewatch/v1/{MUNICIPALITY}/+".encode()
        while not self.fleet.stopping:
            try:
                await self.session.open(self.fleet.endpoint)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                await asyncio.sleep(self.fleet.delay(attempt, self.rng))
                attempt += 1
                continue
            attempt = 0
            # Subscribing again on every connection, as paho users do (the session has them anyway).
            self.session.subscribe([wildcard + self.OBSERVATIONS, wildcard + self.STATUS])
            await self.session.serve()
            if not self.fleet.stopping:
                await asyncio.sleep(self.fleet.delay(attempt, self.rng))
                attempt += 1

    def _on_message(self, topic_: bytes, payload: bytes) -> None:
        if topic_.endswith(self.OBSERVATIONS):
            bundle_id = payload[len(BUNDLE_PREFIX) : payload.index(b'"', len(BUNDLE_PREFIX))]
            self.received += 1
            self.seen.add(bundle_id)
            receipt_topic = topic_[: -len(self.OBSERVATIONS)] + b"/receipts"
            self.session.publish(receipt_topic, b'{"bundle":"' + bundle_id + b'"}')
            self.receipts += 1
        elif topic_.endswith(self.STATUS):
            self.statuses += 1


class Fleet:
    """The hubs and the gateway of one mode, on one event loop."""

    def __init__(
        self, endpoint: Endpoint, hubs: int, interval: float, delay: DelayFunction, seed: int
    ) -> None:
        self.endpoint, self.interval, self.delay, self.seed = endpoint, interval, delay, seed
        self.templates = bundle_templates()
        self.counters = Counters()
        self.stopping = False
        self.producing = False
        self.gateway = Gateway(self)
        self.hubs = [Hub(self, n) for n in range(hubs)]
        self.lags: list[tuple[float, float]] = []  # (when, how late a 10 ms sleep woke up)
        self._tasks: list[asyncio.Task[None]] = [asyncio.create_task(self._lag_monitor())]

    def connected(self) -> int:
        return sum(hub.session.connected for hub in self.hubs)

    def unconfirmed(self) -> int:
        return sum(len(hub.unconfirmed) for hub in self.hubs)

    async def start_gateway(self) -> None:
        self._tasks.append(asyncio.create_task(self.gateway.run()))
        await asyncio.wait_for(self.gateway.subscribed.wait(), START_TIMEOUT_S)

    def start_hubs(self) -> None:
        slots = asyncio.Semaphore(CONNECT_SLOTS)
        self._tasks.extend(asyncio.create_task(hub.run(slots)) for hub in self.hubs)
        self._tasks.append(asyncio.create_task(self._ticker()))

    def start_producing(self) -> None:
        now = time.monotonic()
        for hub in self.hubs:
            hub.next_bundle = now + hub.rng.uniform(0, self.interval)  # each hub its own phase
        self.producing = True

    async def _ticker(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            for hub in self.hubs:
                hub.tick(now, self.producing)
            self.gateway.session.ping_if_idle(now)
            await asyncio.sleep(TICK_S)

    async def _lag_monitor(self) -> None:
        """How late the event loop runs: a late loop reads CONNACKs in bursts, which would inflate
        the peaks measured here (they are times our process saw, not times the broker answered)."""
        while not self.stopping:
            began = time.monotonic()
            await asyncio.sleep(0.01)
            self.lags.append((began, time.monotonic() - began - 0.01))

    async def wait_until(self, condition: Callable[[], bool], within: float) -> bool:
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def stop(self) -> None:
        self.stopping = True
        await asyncio.gather(*(hub.session.close() for hub in self.hubs), self.gateway.session.close())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# --- the broker -----------------------------------------------------------------------------------


def raise_file_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (children inherit it); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)


def tls_lines(folder: Path) -> list[str]:
    """A throwaway CA and a server certificate for 127.0.0.1 (RSA 2048, as tests/edge_agent/publish/
    test_publisher_tls.py makes them), and the listener lines that use them (TLS 1.2, as deployed)."""
    if shutil.which("openssl") is None:
        raise SystemExit("--tls needs openssl")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=bench-ca",
             "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    _openssl(folder, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    _openssl(folder, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip
    return [
        f"cafile {folder}/ca.crt",
        f"certfile {folder}/server.crt",
        f"keyfile {folder}/server.key",
        "tls_version tlsv1.2",
    ]


def client_tls(folder: Path) -> ssl.SSLContext:
    """What the hub's paho ``tls_set`` does: the CA given, the certificate and host name checked."""
    context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _broker_child() -> None:
    """In the broker child before exec: die with us (PR_SET_PDEATHSIG), as gateway.broker does."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class BenchBroker:
    """Mosquitto with the bench's configuration; stop with any signal and start again, same port and data."""

    def __init__(self, workdir: Path, port: int, *, tls: bool) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise SystemExit("hub_fleet needs Mosquitto (apt-get install mosquitto)")
        self.binary, self.workdir, self.port = binary, workdir, port
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            "\n".join(
                [
                    run_as_root_line(),
                    f"listener {port} 127.0.0.1",
                    *(tls_lines(workdir) if tls else []),
                    "allow_anonymous true",
                    "max_connections -1",  # unlimited (the file-descriptor limit is the real one)
                    "persistence true",
                    f"persistence_location {workdir}/",
                    "autosave_interval 1800",  # as gateway.broker; KILL mode snapshots with SIGUSR1
                    f"max_queued_messages {MAX_QUEUED_MESSAGES}",
                    "max_queued_bytes 0",
                    "max_inflight_messages 100",
                    f"log_dest file {workdir}/mosquitto.log",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",  # a line per connection, as production logs them
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start and wait until it accepts connections; the monotonic time it did."""
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_broker_child,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"mosquitto exited at start-up: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return time.monotonic()
            except OSError:
                time.sleep(0.01)
        raise SystemExit(f"mosquitto did not listen on {self.port}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def snapshot(self) -> None:
        """SIGUSR1: write the persistence file now (what autosave does every ``autosave_interval``)."""
        database = self.workdir / "mosquitto.db"
        before = database.stat().st_mtime_ns if database.exists() else None
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if database.exists() and database.stat().st_mtime_ns != before:
                time.sleep(0.2)
                return
            time.sleep(0.02)

    def rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_s(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)

    def sample(self) -> tuple[int, float] | None:
        """(pid, CPU seconds) of the running broker; None while it is down."""
        process = self.process
        if process is None or process.poll() is not None:
            return None
        try:
            return process.pid, self.cpu_s()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return None

    def log_tail(self, lines: int = 5) -> str:
        path = self.workdir / "mosquitto.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def own_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def sample_cpu(broker: BenchBroker, samples: list[tuple[float, int, float]]) -> None:
    """Every 0.1 s the broker's CPU seconds, for the peak load of the storm (cancelled at the end)."""
    while True:
        sample = broker.sample()
        if sample is not None:
            samples.append((time.monotonic(), *sample))
        await asyncio.sleep(0.1)


def peak_cores(samples: list[tuple[float, int, float]], since: float, window: float = 1.0) -> float:
    """The most CPU (cores) the broker used in any ``window`` seconds after ``since`` (one process)."""
    best, start = 0.0, 0
    for t, pid, cpu in samples:
        while t - samples[start][0] > window or samples[start][1] != pid:
            start += 1
        t0, _, cpu0 = samples[start]
        if t >= since and t - t0 >= window * 0.9:
            best = max(best, (cpu - cpu0) / (t - t0))
    return best


def peak_in_window(times: list[float], window: float) -> int:
    """The most events in any ``window`` seconds (two pointers over sorted times)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


# --- one mode -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    mode: str
    hubs: int
    signal: str
    bundle_bytes_mean: int
    status_bytes: int
    connect_s: float = 0.0
    connect_per_s: float = 0.0
    broker_rss_idle_mb: float = 0.0
    broker_rss_connected_mb: float = 0.0
    broker_kb_per_connection: float = 0.0
    steady_s: float = 0.0
    steady_bundles_per_s: float = 0.0
    steady_messages_per_s: float = 0.0  # everything the broker took in and handed out, per second
    broker_cpu_steady: float = 0.0  # cores
    bench_cpu_steady: float = 0.0
    broker_rss_steady_mb: float = 0.0
    bench_rss_mb: float = 0.0
    down_s: float = 0.0
    broker_start_s: float = 0.0  # from start to listening (persistence loaded)
    all_back_s: float = 0.0  # broker listening again -> every hub connected
    all_back_since_loss_s: float = 0.0  # connection lost -> every hub connected
    peak_connects_1s: int = 0
    peak_connects_100ms: int = 0
    peak_attempts_1s: int = 0  # connection attempts begun (the load the back-off offers the broker)
    peak_attempts_100ms: int = 0
    loop_lag_max_ms: float = 0.0  # the bench's event loop during the storm (see Fleet._lag_monitor)
    failed_attempts: int = 0  # during the outage and the storm
    broker_cpu_storm_s: float = 0.0
    broker_cpu_storm_excess_s: float = 0.0  # less what the steady traffic costs in as long
    broker_cpu_storm_peak: float = 0.0  # cores, the busiest second of the storm
    broker_rss_after_storm_mb: float = 0.0
    bundles_made: int = 0
    bundles_sent: int = 0
    received_unique: int = 0
    received_total: int = 0
    lost: int = 0
    duplicates: int = 0
    unconfirmed_at_end: int = 0
    drain_s: float = 0.0


async def run_mode(args: argparse.Namespace, mode: str) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="homewatch-fleet-"))
    broker = BenchBroker(workdir, free_port(), tls=args.tls)
    tls = client_tls(workdir) if args.tls else None
    fleet = Fleet(Endpoint("127.0.0.1", broker.port, tls), args.hubs, args.interval, DELAYS[mode], args.seed)
    sizes = [len(BUNDLE_PREFIX + b"hub00000-0000" + t) for t in fleet.hubs[0].templates]
    result = Result(
        mode, args.hubs, args.signal, round(sum(sizes) / len(sizes)), len(fleet.hubs[0].online_status)
    )
    sig = signal.Signals[f"SIG{args.signal}"]
    cpu_samples: list[tuple[float, int, float]] = []
    sampler: asyncio.Task[None] | None = None
    try:
        broker.start()
        sampler = asyncio.create_task(sample_cpu(broker, cpu_samples))
        await asyncio.sleep(0.5)
        result.broker_rss_idle_mb = broker.rss_mb()
        await fleet.start_gateway()

        # 1. connect
        started = time.monotonic()
        fleet.start_hubs()
        if not await fleet.wait_until(lambda: fleet.connected() == args.hubs, 120):
            raise SystemExit(f"only {fleet.connected()} of {args.hubs} hubs connected")
        result.connect_s = time.monotonic() - started
        result.connect_per_s = args.hubs / result.connect_s
        await asyncio.sleep(1.0)  # the subscriptions and statuses of the last ones
        result.broker_rss_connected_mb = broker.rss_mb()
        result.broker_kb_per_connection = (
            (result.broker_rss_connected_mb - result.broker_rss_idle_mb) * 1024 / args.hubs
        )
        if sig == signal.SIGKILL:
            broker.snapshot()  # the sessions, as a production broker's autosave has them

        # 2. steady
        fleet.start_producing()
        await asyncio.sleep(args.interval)  # every hub has its phase going
        messages_before = messages_through(fleet)
        bundles_before, cpu_b, cpu_own = fleet.gateway.received, broker.cpu_s(), own_cpu_s()
        began = time.monotonic()
        await asyncio.sleep(args.steady)
        result.steady_s = time.monotonic() - began
        result.steady_bundles_per_s = (fleet.gateway.received - bundles_before) / result.steady_s
        result.steady_messages_per_s = (messages_through(fleet) - messages_before) / result.steady_s
        result.broker_cpu_steady = (broker.cpu_s() - cpu_b) / result.steady_s
        result.bench_cpu_steady = (own_cpu_s() - cpu_own) / result.steady_s
        result.broker_rss_steady_mb = broker.rss_mb()
        result.bench_rss_mb = own_rss_mb()

        # 3. restart
        failed_before = fleet.counters.failed_attempts
        lost_at = time.monotonic()
        await asyncio.to_thread(broker.stop, sig)  # the loop meanwhile sees the connections end
        await asyncio.sleep(args.down)
        result.down_s = time.monotonic() - lost_at
        restart = time.monotonic()
        # In a thread, so the hubs keep trying (and failing) while it starts. The broker dies with the
        # thread that started it (PR_SET_PDEATHSIG): the loop's executor thread outlives this run.
        up = await asyncio.to_thread(broker.start)
        result.broker_start_s = up - restart
        cpu_b = broker.cpu_s()

        # 4. storm
        if not await fleet.wait_until(lambda: fleet.connected() == args.hubs, 300):
            raise SystemExit(f"only {fleet.connected()} of {args.hubs} hubs came back")
        back = time.monotonic()
        result.all_back_s = back - up
        result.all_back_since_loss_s = back - lost_at
        storm = [t for t in fleet.counters.connects if t >= lost_at]
        result.peak_connects_1s = peak_in_window(storm, 1.0)
        result.peak_connects_100ms = peak_in_window(storm, 0.1)
        tries = [t for t in fleet.counters.attempts if t >= lost_at]
        result.peak_attempts_1s = peak_in_window(tries, 1.0)
        result.peak_attempts_100ms = peak_in_window(tries, 0.1)
        result.loop_lag_max_ms = 1000 * max((lag for t, lag in fleet.lags if t >= lost_at), default=0.0)
        result.failed_attempts = fleet.counters.failed_attempts - failed_before
        result.broker_cpu_storm_s = broker.cpu_s() - cpu_b
        result.broker_cpu_storm_excess_s = (
            result.broker_cpu_storm_s - result.broker_cpu_steady * result.all_back_s
        )
        result.broker_cpu_storm_peak = peak_cores(cpu_samples, up)
        result.broker_rss_after_storm_mb = broker.rss_mb()

        # 5. drain and reconcile
        await asyncio.sleep(SETTLE_S)
        fleet.producing = False
        drain = time.monotonic()
        await fleet.wait_until(lambda: fleet.unconfirmed() == 0, DRAIN_TIMEOUT_S)
        result.drain_s = time.monotonic() - drain
        counters, gateway = fleet.counters, fleet.gateway
        result.bundles_made, result.bundles_sent = counters.bundles_made, counters.bundles_sent
        result.received_unique, result.received_total = len(gateway.seen), gateway.received
        result.lost = len(counters.made_ids - gateway.seen)
        result.duplicates = gateway.received - len(gateway.seen)
        result.unconfirmed_at_end = fleet.unconfirmed()
    finally:
        if sampler is not None:
            sampler.cancel()
        await fleet.stop()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def messages_through(fleet: Fleet) -> int:
    """Messages the broker took in and delivered, as the clients count them: Bundles and statuses
    published, Bundles and statuses delivered to the gateway, receipts published and delivered."""
    c, g = fleet.counters, fleet.gateway
    return c.bundles_sent + c.statuses_sent + g.received + g.statuses + g.receipts + c.receipts_received


# --- report ---------------------------------------------------------------------------------------------

ROWS: list[tuple[str, str, str]] = [
    # (label, Result field, format)
    ("hubs connected at once", "hubs", "{:,}"),
    ("Bundle size, mean (bytes)", "bundle_bytes_mean", "{:,}"),
    ("status size (bytes)", "status_bytes", "{:,}"),
    ("connect all: seconds", "connect_s", "{:.2f}"),
    ("connect all: connections/s", "connect_per_s", "{:,.0f}"),
    ("broker RSS idle (MB)", "broker_rss_idle_mb", "{:.1f}"),
    ("broker RSS all connected (MB)", "broker_rss_connected_mb", "{:.1f}"),
    ("broker memory per connection (kB)", "broker_kb_per_connection", "{:.1f}"),
    ("steady: Bundles/s to the gateway", "steady_bundles_per_s", "{:,.0f}"),
    ("steady: messages/s in + out of the broker", "steady_messages_per_s", "{:,.0f}"),
    ("steady: broker CPU (cores)", "broker_cpu_steady", "{:.3f}"),
    ("steady: bench CPU, all clients (cores)", "bench_cpu_steady", "{:.3f}"),
    ("steady: broker RSS (MB)", "broker_rss_steady_mb", "{:.1f}"),
    ("bench process RSS (MB; 2nd mode reuses 1st's)", "bench_rss_mb", "{:.1f}"),
    ("restart: signal", "signal", "{}"),
    ("restart: broker down (s)", "down_s", "{:.1f}"),
    ("restart: broker start to listening (s)", "broker_start_s", "{:.2f}"),
    ("storm: listening -> all hubs back (s)", "all_back_s", "{:.2f}"),
    ("storm: connection lost -> all back (s)", "all_back_since_loss_s", "{:.2f}"),
    ("storm: peak connects in 1 s", "peak_connects_1s", "{:,}"),
    ("storm: peak connects in 100 ms", "peak_connects_100ms", "{:,}"),
    ("storm: peak attempts begun in 1 s", "peak_attempts_1s", "{:,}"),
    ("storm: peak attempts begun in 100 ms", "peak_attempts_100ms", "{:,}"),
    ("storm: failed connection attempts", "failed_attempts", "{:,}"),
    ("storm: bench event loop, worst lag (ms)", "loop_lag_max_ms", "{:.0f}"),
    ("storm: broker CPU (s)", "broker_cpu_storm_s", "{:.2f}"),
    ("storm: broker CPU beyond steady traffic (s)", "broker_cpu_storm_excess_s", "{:.2f}"),
    ("storm: broker CPU, busiest second (cores)", "broker_cpu_storm_peak", "{:.2f}"),
    ("storm: broker RSS after (MB)", "broker_rss_after_storm_mb", "{:.1f}"),
    ("Bundles made", "bundles_made", "{:,}"),
    ("Bundles published (with resends)", "bundles_sent", "{:,}"),
    ("received by the gateway, unique", "received_unique", "{:,}"),
    ("received by the gateway, all copies", "received_total", "{:,}"),
    ("LOST (made, never received)", "lost", "{:,}"),
    ("duplicates (QoS 1, resends)", "duplicates", "{:,}"),
    ("unconfirmed at the end", "unconfirmed_at_end", "{:,}"),
    ("drain after production stopped (s)", "drain_s", "{:.2f}"),
]
RATIOS = [
    "all_back_s",
    "peak_connects_1s",
    "peak_connects_100ms",
    "peak_attempts_100ms",
    "failed_attempts",
    "broker_cpu_storm_excess_s",
    "broker_cpu_storm_peak",
]


def report(results: list[Result], args: argparse.Namespace) -> None:
    compression = 86_400 / args.interval / len(PLAN)
    print(
        f"{args.hubs:,} hubs, one Bundle each every {args.interval:g} s (a patient's {len(PLAN)} "
        f"measurements a day compressed {compression:,.0f}x), status every {STATUS_INTERVAL_S:g} s "
        f"(real time), keep-alive {KEEPALIVE_S} s; restart by SIG{args.signal}, {args.down:g} s down; "
        f"{'TLS 1.2, RSA 2048' if args.tls else 'no TLS'}"
    )
    width = max(len(label) for label, _, _ in ROWS)
    print(f"{'':{width}}  " + "  ".join(f"{r.mode:>12}" for r in results))
    for label, name, fmt in ROWS:
        print(f"{label:{width}}  " + "  ".join(f"{fmt.format(getattr(r, name)):>12}" for r in results))
    modes = {r.mode: r for r in results}
    if "jitter" in modes and "lockstep" in modes:
        jitter, lockstep = modes["jitter"], modes["lockstep"]
        for name in RATIOS:
            a, b = getattr(lockstep, name), getattr(jitter, name)
            ratio = f"{a / b:.2f}" if b else "-"
            print(f"lockstep / jitter, {name}: {ratio}")
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores, shared)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hubs", type=int, default=2_000, help="hub connections at once")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between a hub's Bundles")
    parser.add_argument("--steady", type=float, default=30.0, help="seconds of steady publishing measured")
    parser.add_argument("--down", type=float, default=5.0, help="seconds the broker stays down")
    parser.add_argument("--signal", choices=["TERM", "KILL"], default="TERM", help="how the broker stops")
    parser.add_argument("--modes", nargs="+", choices=sorted(DELAYS), default=["jitter", "lockstep"])
    parser.add_argument("--seed", type=int, default=1, help="seeds every hub's back-off and phase")
    parser.add_argument("--tls", action="store_true", help="TLS listener (throwaway CA, RSA 2048)")
    parser.add_argument("--json", action="store_true", help="one JSON object per mode, no table")
    args = parser.parse_args()
    limit = raise_file_limit(2 * args.hubs + 1_024)  # our sockets; the broker inherits the same limit
    if limit < args.hubs + 256:
        raise SystemExit(f"RLIMIT_NOFILE {limit} is too low for {args.hubs} hubs")
    results = [asyncio.run(run_mode(args, mode)) for mode in args.modes]
    if args.json:
        for result in results:
            print(json.dumps(asdict(result)))
    else:
        report(results, args)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
