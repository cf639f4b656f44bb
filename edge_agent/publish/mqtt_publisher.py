"""Drains the outbox to MQTT: FHIR batch Bundles at QoS 1, rows deleted once the gateway holds them.

One paho-mqtt client per hub, in its own network thread (paho is not asyncio), plus one drain thread
that reads the outbox in order and keeps a bounded window of Bundles unconfirmed, so a backlog of days
does not flood the broker.

When a row may be deleted (``MqttConfig.delete_after``):

- ``"gateway"`` (default): each Bundle carries an id; after its database commit the gateway publishes a
  receipt naming it on the hub's ``receipts`` topic, and only then are the Bundle's rows deleted. A
  PUBACK only means the broker holds the message *in memory*: Mosquitto's persistence is a periodic
  snapshot, so a broker killed before it passed the message on would lose it. A Bundle acknowledged
  by the broker but not confirmed within ``receipt_timeout_s`` is sent again (the wait doubles while
  no receipt arrives at all, up to :data:`RECEIPT_WAIT_MAX_S`), and so is every unconfirmed Bundle
  after a reconnect, when a restarted broker is most likely to have lost some. The gateway stores
  by Observation identifier, so a copy sent twice is stored once. The window also paces the hub by
  what the gateway stores, not by what the broker will buffer.
- ``"broker"``: rows are deleted at the PUBACK, for a server that sends no receipts.

While the link is down paho holds the in-flight Bundles and resends them on reconnect; rows not yet
sent stay in the outbox. If the hub process dies, everything not deleted is still in the outbox and is
sent again.

The retained ``status`` topic says online with the agent version, queue depth, readings awaiting the
gateway's receipt, whether the disk is full and how many readings wait in memory for room, and whatever
the ``status_extra`` callable adds (the service adds the devices); the Last Will says offline.
:meth:`MqttPublisher.publish_status` sends it again. Messages on the hub's retained ``config`` topic go
to ``on_config`` (raw bytes, on paho's thread); judging them is :mod:`edge_agent.remote_config`'s job.
TLS and the hub's credentials come from :class:`~edge_agent.config.MqttConfig`. The drain thread also
gives the outbox its turn to write readings a full disk refused (``Outbox.retry``).

Reconnecting is paho's (its network thread waits, then tries again), but the wait is ours:
:func:`reconnect_delay` draws each one at random between a floor and a cap that doubles per failed
attempt ("full jitter"). paho's own back-off doubles deterministically, so after a broker restart every
hub of a municipality would retry in the same instants; jittered, their attempts spread out and the
broker sees a bounded connect rate (``bench/hub_fleet.py`` measures both, ``docs/scaling.md``).
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config import HubConfig
from edge_agent.outbox import Outbox, OutboxRow
from edge_agent.outbox.priority import RESOURCE_TYPE_OF_KIND

log = logging.getLogger(__name__)

# Bundles handed to paho and not yet acknowledged by the broker: enough to keep a loopback or LAN link
# busy, small enough that a broker with per-client queue limits never has to drop anything of ours.
WINDOW = 16
# Bundles sent and not yet confirmed by the gateway (including those in WINDOW): with 50 readings a
# Bundle, 3,200 readings, about a second of a gateway's work, so the hub never runs far ahead of it.
UNCONFIRMED_MAX = 64
# The longest wait for a receipt before sending a Bundle again, however long the gateway is away.
RECEIPT_WAIT_MAX_S = 1800.0
# Reconnect back-off (reconnect_delay): never sooner than 1 s after losing the link (a broker that refuses
# us is not hammered), never later than 60 s (a hub is back within a minute of the broker); the random
# part in between is what keeps thousands of hubs that lost the broker together from retrying together.
RECONNECT_MIN_S, RECONNECT_MAX_S = 1.0, 60.0
AGENT_VERSION = "0.1.0"


def reconnect_delay(
    attempt: int,
    rng: random.Random,
    *,
    minimum: float = RECONNECT_MIN_S,
    maximum: float = RECONNECT_MAX_S,
) -> float:
    """Seconds to wait before reconnection attempt ``attempt`` (0: the first after the link was lost).

    Uniform in ``[minimum, cap]``, the cap doubling from ``2 * minimum`` per failed attempt up to
    ``maximum``: 1-2 s, 1-4 s, 1-8 s, ... 1-60 s with the defaults. Each hub draws from its own ``rng``, so
    hubs disconnected in the same instant (a broker restart) do not come back in the same instants, as
    they would with paho's deterministic doubling (1, 2, 4, ... s); the floor keeps a hub the broker
    refuses from retrying in a tight loop. ``rng`` is injected so tests and the fleet benchmark can seed
    it.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, not {attempt}")
    if not 0 < minimum <= maximum:
        raise ValueError(f"need 0 < minimum <= maximum, not {minimum}, {maximum}")
    cap = min(maximum, minimum * 2.0 ** min(attempt + 1, 64))  # the exponent bounded: no float overflow
    return rng.uniform(minimum, cap)


@dataclass(slots=True)
class PublisherStats:
    bundles_sent: int = 0
    observations_sent: int = 0  # deleted from the outbox: confirmed by the gateway (or the broker)
    bundles_resent: int = 0  # sent again because no receipt came in time or the link was re-made
    errors_received: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Batch:
    """One Bundle sent and not yet confirmed."""

    bundle_id: str
    seqs: list[int]
    mid: int | None = None  # set while paho waits for the broker's PUBACK
    # Monotonic time after which it is sent again; infinite until the broker acknowledged it, and
    # while it waits in the resend queue.
    deadline: float = float("inf")
    confirmed: bool = False  # the gateway's receipt came (possibly before the PUBACK)


class MqttPublisher:
    """Sends what is in the outbox; ``start()`` / ``stop()``. Thread-based, never blocks an event loop."""

    def __init__(self, config: HubConfig, outbox: Outbox, *, rng: random.Random | None = None) -> None:
        self._config = config
        # Seeded from the operating system unless given: no two hubs draw the same reconnect delays.
        self._rng = rng if rng is not None else random.Random()
        self._reconnect_attempt = 0  # failed attempts since the last successful CONNACK
        self._outbox = outbox
        self._await_receipts = config.mqtt.delete_after == "gateway"
        self.stats = PublisherStats()
        self._lock = threading.Lock()
        self._inflight: dict[int, _Batch] = {}  # mid -> Bundle waiting for the broker's PUBACK
        self._unconfirmed: dict[str, _Batch] = {}  # Bundle id -> Bundle waiting for the receipt
        self._resend: deque[_Batch] = deque()  # unconfirmed Bundles to send again, oldest first
        self._receipt_wait = config.mqtt.receipt_timeout_s
        self._cursor = 0  # highest seq handed to paho
        self._acked_early: set[int] = set()
        # mids of status messages: their PUBACKs must never be taken for a Bundle's (paho reuses mids).
        self._status_mids: set[int] = set()
        self._connected = threading.Event()
        self._ever_connected = False
        self._stopping = threading.Event()
        self._slot_free = threading.Condition(self._lock)
        protocol = mqtt.MQTTv5 if config.mqtt.mqtt5 else mqtt.MQTTv311
        kwargs: dict[str, Any] = {} if config.mqtt.mqtt5 else {"clean_session": False}
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"hub-{config.hub_id}", protocol=protocol, **kwargs
        )
        #: Extra fields of the online status (called on paho's thread or the caller's: keep it cheap).
        self.status_extra: Callable[[], dict[str, Any]] = dict
        #: Called with the payload of each message on the hub's config topic (paho's thread).
        self.on_config: Callable[[bytes], None] | None = None
        self._apply_credentials(config)
        self._client.max_inflight_messages_set(WINDOW)
        # No reconnect_delay_set here: paho calls on_connect_fail or on_disconnect before every wait.
        self._client.will_set(config.topic("status"), self._status("offline"), qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._drainer = threading.Thread(target=self._drain, name=f"drain-{config.hub_id}", daemon=True)

    def _apply_credentials(self, config: HubConfig) -> None:
        mqtt_cfg = config.mqtt
        if mqtt_cfg.username:
            self._client.username_pw_set(mqtt_cfg.username, mqtt_cfg.secret())
        if mqtt_cfg.tls:
            self._client.tls_set(
                ca_certs=str(mqtt_cfg.ca_file) if mqtt_cfg.ca_file else None,
                certfile=str(mqtt_cfg.cert_file) if mqtt_cfg.cert_file else None,
                keyfile=str(mqtt_cfg.key_file) if mqtt_cfg.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )

    def _status(self, state: str) -> bytes:
        body: dict[str, Any] = {"state": state, "agentVersion": AGENT_VERSION}
        if state == "online":
            body["queueDepth"] = self._outbox.depth()
            body["awaitingReceipt"] = self.awaiting_receipt()
            body["evicted"] = self._outbox.evicted  # readings dropped because the outbox was full, by kind
            body["outboxFull"] = self._outbox.full  # the disk refused a write: readings wait in memory
            body["heldInMemory"] = self._outbox.held
            try:
                body.update(self.status_extra())
            except Exception:  # a status must never take the publisher down
                log.exception("hub %s: building the status failed", self._config.hub_id)
        else:
            body["queueDepth"] = None
        return orjson.dumps(body)

    def awaiting_receipt(self) -> int:
        """Readings sent and not yet confirmed (by the gateway's receipt, or the PUBACK in broker mode)."""
        with self._lock:
            return sum(len(b.seqs) for b in self._unconfirmed.values() if not b.confirmed)

    def publish_status(self) -> bool:
        """Send the retained online status now; False when not connected (it is sent on connect)."""
        if not self._connected.is_set() or self._stopping.is_set():
            return False
        self._send_status(self._client, "online")
        return True

    def _send_status(self, client: mqtt.Client, state: str) -> None:
        """Publish the retained status (QoS 1) and remember its mid, so its PUBACK deletes nothing."""
        info = client.publish(self._config.topic("status"), self._status(state), qos=1, retain=True)
        with self._lock:
            if info.mid in self._acked_early:  # its PUBACK overtook us
                self._acked_early.discard(info.mid)
            else:
                self._status_mids.add(info.mid)

    def start(self) -> None:
        mqtt_cfg = self._config.mqtt
        if mqtt_cfg.mqtt5:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 7 * 24 * 3600  # keep our session (and its PUBACKs) for a week
            self._client.connect_async(mqtt_cfg.host, mqtt_cfg.port, clean_start=False, properties=props)
        else:
            self._client.connect_async(mqtt_cfg.host, mqtt_cfg.port)
        self._client.loop_start()
        self._drainer.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sending; wait up to ``timeout`` for what was sent to be confirmed.

        What is still unconfirmed then stays in the outbox and is sent again at the next start.
        """
        self._stopping.set()
        self._outbox.wake()
        with self._slot_free:
            self._slot_free.notify_all()
            self._slot_free.wait_for(lambda: not self._unconfirmed, timeout=timeout)
        self._drainer.join(timeout=timeout)
        if self._connected.is_set():
            self._send_status(self._client, "offline")
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- paho callbacks (network thread) ---------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            log.warning("hub %s: broker refused connection: %s", self._config.hub_id, reason)
            return
        log.info(
            "hub %s: connected to %s:%d", self._config.hub_id, self._config.mqtt.host, self._config.mqtt.port
        )
        self._reconnect_attempt = 0
        topics = [(self._config.topic("errors"), 1), (self._config.topic("config"), 1)]
        if self._await_receipts:
            topics.append((self._config.topic("receipts"), 1))
        client.subscribe(topics)
        self._send_status(client, "online")
        with self._slot_free:
            if self._ever_connected:
                # A broker that restarted may have lost what it acknowledged: everything the gateway
                # has not confirmed goes again (paho resends what is still waiting for a PUBACK).
                self._requeue(lambda b: b.mid is None and not b.confirmed and b.deadline < float("inf"))
            self._ever_connected = True
            self._slot_free.notify_all()
        self._connected.set()

    def _schedule_reconnect(self) -> None:
        """Choose the wait before paho's next connection attempt (:func:`reconnect_delay`).

        Called on paho's network thread from ``on_disconnect`` and ``on_connect_fail``, which paho runs
        before it waits. ``reconnect_delay_set`` resets paho's doubling, so its next wait is the minimum
        given, here the delay drawn (paho annotates the bounds as int; its wait is float arithmetic).
        """
        delay = reconnect_delay(self._reconnect_attempt, self._rng)
        self._reconnect_attempt += 1
        self._client.reconnect_delay_set(delay, delay)  # type: ignore[arg-type]

    def _on_connect_fail(self, _c: mqtt.Client, _u: object) -> None:
        self._schedule_reconnect()
        if not self._stopping.is_set():
            log.warning(
                "hub %s: cannot reach %s:%d (TLS or network); retrying with back-off",
                self._config.hub_id,
                self._config.mqtt.host,
                self._config.mqtt.port,
            )

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        self._connected.clear()
        self._schedule_reconnect()
        if not self._stopping.is_set():
            log.info("hub %s: disconnected (%s); paho reconnects with back-off", self._config.hub_id, reason)

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, _r: ReasonCode, _p: object) -> None:
        with self._slot_free:
            if mid in self._status_mids:
                self._status_mids.discard(mid)
                return
            batch = self._inflight.pop(mid, None)
            if batch is None:
                # A PUBACK that overtook the registration in _send (or in _send_status).
                self._acked_early.add(mid)
                return
            self._broker_acknowledged(batch)

    def _broker_acknowledged(self, batch: _Batch) -> None:
        """The broker holds ``batch``: delete its rows (broker mode) or wait for the receipt."""
        batch.mid = None
        if not self._await_receipts or batch.confirmed:
            self._forget(batch)
        else:
            batch.deadline = time.monotonic() + self._receipt_wait
        self._slot_free.notify_all()

    def _forget(self, batch: _Batch) -> None:
        """Delete a confirmed Bundle's rows (caller holds the lock)."""
        if self._unconfirmed.pop(batch.bundle_id, None) is None:
            return
        try:
            self._outbox.delete(batch.seqs)  # a full disk is the outbox's business: it never raises that
        except Exception:  # anything else must not end paho's network thread, and all delivery with it
            log.exception(
                "hub %s: deleting delivered rows failed; they stay and go again at the next start",
                self._config.hub_id,
            )
        self.stats.bundles_sent += 1
        self.stats.observations_sent += len(batch.seqs)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._config.topic("config"):
            if self.on_config is not None:
                self.on_config(bytes(message.payload))
            return
        if message.topic == self._config.topic("receipts"):
            self._on_receipt(bytes(message.payload))
            return
        try:
            rejection = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            rejection = {"unreadable": message.payload[:200].decode(errors="replace")}
        for line in _rejection_lines(rejection):
            log.warning("hub %s: gateway rejected %s", self._config.hub_id, line)
        with self._lock:
            self.stats.errors_received.append(rejection)

    def _on_receipt(self, payload: bytes) -> None:
        """The gateway committed a Bundle: its rows may go. Unknown ids (a receipt for a copy sent
        before this process started, or sent twice) are harmless and ignored."""
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            body = None
        bundle_id = body.get("bundle") if isinstance(body, dict) else None
        if not isinstance(bundle_id, str):
            log.warning("hub %s: unreadable receipt %r", self._config.hub_id, payload[:200])
            return
        with self._slot_free:
            self._receipt_wait = self._config.mqtt.receipt_timeout_s  # the gateway is there
            batch = self._unconfirmed.get(bundle_id)
            if batch is None or batch.confirmed:
                return
            batch.confirmed = True
            if batch.mid is None:  # else the PUBACK, still to come, forgets it
                self._forget(batch)
            self._slot_free.notify_all()

    # -- drain thread ----------------------------------------------------------------------------

    def _has_room(self) -> bool:
        return len(self._inflight) < WINDOW and len(self._unconfirmed) < UNCONFIRMED_MAX

    def _drain(self) -> None:
        while not self._stopping.is_set():
            self._retry_outbox()
            if not self._connected.wait(timeout=0.5):
                continue
            with self._slot_free:
                self._requeue_overdue()
                if self._resend:
                    if len(self._inflight) >= WINDOW:
                        self._slot_free.wait(timeout=0.5)
                        continue
                    resend: _Batch | None = self._resend.popleft()
                else:
                    resend = None
                    if not self._has_room():
                        self._slot_free.wait(timeout=0.5)
                        continue
            if self._stopping.is_set():
                return
            if resend is not None:
                self._send_again(resend)
                continue
            rows = self._outbox.after(self._cursor, self._config.bundle_size)
            if not rows:
                self._outbox.wait_for_rows_after(self._cursor, timeout=0.5)
                continue
            batch = _Batch(uuid.uuid4().hex, [row.seq for row in rows])
            with self._slot_free:
                self._cursor = rows[-1].seq
                self._unconfirmed[batch.bundle_id] = batch
            self._send(batch, rows)

    def _retry_outbox(self) -> None:
        """Let the outbox write what a full disk refused (it spaces its own attempts), connected or not."""
        try:
            self._outbox.retry()
        except Exception:  # the drain goes on: what is on disk is still sent
            log.exception("hub %s: writing the readings held in memory failed", self._config.hub_id)

    def _requeue_overdue(self) -> None:
        """Queue Bundles whose receipt is overdue (caller holds the lock); the wait doubles each time."""
        now = time.monotonic()
        overdue = self._requeue(lambda b: not b.confirmed and b.deadline <= now)
        if overdue:
            log.warning(
                "hub %s: no receipt from the gateway within %.0f s; sending %d Bundle(s) again",
                self._config.hub_id,
                self._receipt_wait,
                overdue,
            )
            self._receipt_wait = min(self._receipt_wait * 2, RECEIPT_WAIT_MAX_S)

    def _requeue(self, due: Callable[[_Batch], bool]) -> int:
        """Move the unconfirmed Bundles that are ``due`` to the resend queue (caller holds the lock);
        return how many."""
        if not self._await_receipts:
            return 0
        queued = {id(b) for b in self._resend}
        picked = [b for b in self._unconfirmed.values() if due(b) and id(b) not in queued]
        for batch in picked:
            batch.deadline = float("inf")  # not overdue again while it waits in the queue
        self._resend.extend(picked)
        return len(picked)

    def _send_again(self, batch: _Batch) -> None:
        rows = self._outbox.rows(batch.seqs)
        if not rows:  # every row evicted meanwhile: nothing left to send
            with self._slot_free:
                self._unconfirmed.pop(batch.bundle_id, None)
                self._slot_free.notify_all()
            return
        batch.seqs = [row.seq for row in rows]
        self.stats.bundles_resent += 1
        self._send(batch, rows)

    def _send(self, batch: _Batch, rows: list[OutboxRow]) -> None:
        # The Bundle is assembled from stored JSON bytes without re-parsing each resource.
        entries = b",".join(
            b'{"resource":'
            + row.resource
            + b',"request":{"method":"POST","url":"'
            + RESOURCE_TYPE_OF_KIND.get(row.kind, "Observation").encode()
            + b'"}}'
            for row in rows
        )
        payload = (
            b'{"resourceType":"Bundle","id":"'
            + batch.bundle_id.encode()
            + b'","type":"batch","entry":['
            + entries
            + b"]}"
        )
        # Published outside our lock: paho's network thread may hold its own locks while it calls
        # _on_publish, which takes ours.
        info = self._client.publish(self._config.topic("observations"), payload, qos=1)
        with self._slot_free:
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                # Not queued by paho: try again soon (from the resend queue, same Bundle id).
                batch.deadline = float("inf")
                self._resend.appendleft(batch)
                return
            # MQTT_ERR_NO_CONN still queues the message in paho: it goes out after reconnecting.
            if info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
                self._broker_acknowledged(batch)
            else:
                batch.mid = info.mid
                self._inflight[info.mid] = batch


def _rejection_lines(report: Any) -> list[str]:
    """One line per rejected Observation of the gateway's OperationOutcome: code, reason, identifier."""
    issues = report.get("issue") if isinstance(report, dict) else None
    if not isinstance(issues, list) or not issues:
        return [str(report)[:300]]
    lines = []
    for issue in issues:
        details = issue.get("details", {}) if isinstance(issue, dict) else {}
        codes = [c.get("code") for c in details.get("coding", []) if isinstance(c, dict)]
        idents = [
            ext.get("valueIdentifier", {}).get("value")
            for ext in issue.get("extension", [])
            if isinstance(ext, dict)
        ]
        ident = next((i for i in idents if i), "the message")
        lines.append(f"{ident} ({', '.join(str(c) for c in codes) or 'error'}): {details.get('text', '')}")
    return lines
