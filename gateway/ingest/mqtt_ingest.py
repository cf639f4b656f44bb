"""The ingest worker: MQTT in, PostgreSQL out, and an acknowledgement only after the commit.

One ``IngestWorker`` holds one paho-mqtt client and one worker thread:

- paho's network thread only queues each message (its callbacks must never wait for the database: a
  blocked network thread stops keep-alives and the broker drops the connection);
- the worker thread takes what has arrived together (up to ``batch_max_messages`` or ``batch_wait_s``),
  hands it to a ``BatchStore`` (``gateway.ingest.batch_store``: decide and store in ONE transaction,
  retried while the database is away, taken apart when a message makes it fail for good) and only then
  acknowledges each message, publishes the hub's rejections to its ``errors`` topic and a receipt
  naming the Bundle to its ``receipts`` topic (QoS 1). The receipt is what lets the hub delete the
  readings: a broker that dies holding messages it acknowledged to the hub cannot lose them
  (``docs/outbox.md``);
- a heartbeat thread writes the worker's row of ``ingest_workers`` every ``HEARTBEAT_S`` with its own
  connection (messages in hand, and since when it has held some without committing), so a worker
  thread stuck in a statement still shows as stalled on ``/healthz``.

Delivery is at least once with an idempotent effect. What this relies on in paho-mqtt 2.x and MQTT:

- ``manual_ack=True``: paho sends no PUBACK by itself; ``Client.ack(mid, qos)`` sends it. A message not
  acknowledged is still the broker's responsibility.
- A persistent session (fixed client id; MQTT 3.1.1 ``clean_session=False``, MQTT 5 ``clean_start=False``
  with a session expiry interval): when the connection drops or the process dies, the broker keeps the
  subscription, queues new messages, and resends the unacknowledged ones on the next connection of the
  same client id. Messages that reach this process while it is stopping are deliberately not taken.
- A PUBACK only makes sense on the connection that received the message. After a reconnect the broker
  resends what was unacknowledged, so a message taken on an older connection is stored (a no-op if the
  copy got there first) but never acknowledged; its redelivered copy is acknowledged instead.
- Subscribing in ``on_connect``, so a reconnect never leaves the client without its subscription.
- paho reconnects by itself (``loop_start``), with ``reconnect_delay_set`` back-off.

Nothing is acknowledged before its commit: while the database is away the batch waits (the broker
holds everything else: its in-flight window stops it sending more), and a crash loses nothing for the
same reason. A message that can never be stored is set aside by the ``BatchStore`` and acknowledged
like any other, so it cannot block the messages behind it.

Hubs' retained ``status`` messages come in on a second subscription (QoS 0, never shared) and are taken
out of each batch before the Observations: ``BatchStore.handle_statuses`` stores or quarantines them
(``gateway.ingest.status_ingest``) and they owe the hub nothing, so they can never hold up a reading.

With MQTT 5 the worker subscribes through the shared subscription ``$share/{group}/...``, so adding
workers (each with its own client id) scales ingest; with MQTT 3.1.1 (amqtt) one worker takes all.

The batch's transaction also adds to this worker's row of ``ingest_metrics`` (what ``/metrics``
shows) and, with ``notify_channel``, calls ``pg_notify`` naming the patients with new data, so the
scorer hears of exactly the batches that committed (``gateway.alerts.scorer``), whether this worker runs
in a process of its own or in the scorer's (``gateway.workers``).

Left to others: the database side (``batch_store``), validation rules (``processing``,
``fhir_contract``), storing a decision (``gateway.ingest.storing``, shared with ``POST /fhir``), SQL
(``gateway.store``), scoring (NOTIFY), and the broker (``gateway.broker`` or an
external one).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.broker import BrokerEndpoint
from gateway.ingest.batch_store import DB_CONNECT_TIMEOUT_S, Abandoned, BatchStore
from gateway.ingest.hub_status import STATUS_SUBSCRIPTION
from gateway.ingest.processing import (
    OBSERVATIONS_SUBSCRIPTION,
    MessageOutcome,
    error_report,
    receipt,
)
from gateway.ingest.status_ingest import is_status_topic
from gateway.settings import GatewaySettings
from gateway.store.errors import describe
from gateway.store.ingest_metrics import record_heartbeat

log = logging.getLogger(__name__)

DEFAULT_CLIENT_ID = "homewatch-ingest-1"
# A batch is what arrived together: ~200 messages of 10 Observations is one COPY of ~2,000 rows, where
# PostgreSQL's batching pays off; 50 ms bounds the latency a lone reading waits for company.
BATCH_MAX_MESSAGES = 200
BATCH_WAIT_S = 0.05
# Broker reconnect back-off for paho: 1 s up to 30 s.
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
# MQTT 5 session expiry: the broker keeps the session (and queues for it) this long while no worker with
# this client id is connected. A week covers a long weekend of a stopped gateway.
SESSION_EXPIRY_S = 7 * 24 * 3600
# MQTT 5 receive maximum: unacknowledged messages the broker may have in flight to us; two batches lets
# the broker fill the next batch while one commits.
RECEIVE_MAXIMUM = 2 * BATCH_MAX_MESSAGES
KEEPALIVE_S = 30
# The heartbeat row is written this often (and after a stall ends): far below any sensible stall limit.
HEARTBEAT_S = 2.0


@dataclass(frozen=True, slots=True)
class IngestCounters:
    """A snapshot of what the worker did since it started (for metrics and the demo summary)."""

    messages_received: int = 0
    messages_acked: int = 0
    # Taken but not finished yet (queued or in a batch); 0 means the worker has caught up.
    messages_in_hand: int = 0
    # Finished but not acknowledged because the connection that delivered them was gone: the broker
    # redelivers them (stored already, they then count as duplicates). received = acked + this + in hand.
    messages_left_for_redelivery: int = 0
    messages_rejected: int = 0  # whole messages refused (bad topic, unknown hub, not a Bundle, ...)
    observations_stored: int = 0
    duplicates: int = 0
    observations_rejected: int = 0
    rejected_by_code: Mapping[str, int] = field(default_factory=dict)
    batches: int = 0
    database_retries: int = 0
    # Messages that could not be stored and were set aside whole (quarantined or dead-lettered).
    messages_set_aside: int = 0


@dataclass(frozen=True, slots=True)
class _Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # which broker connection delivered it (acks are valid only on that one)
    arrived: float  # time.monotonic() when paho handed it over (the start of the ingest lag)
    retained: bool = False  # a retained copy handed over on subscribing (hub statuses: not a live contact)


@dataclass(slots=True)
class _Tally:
    received: int = 0
    acked: int = 0
    in_hand: int = 0
    left: int = 0
    messages_rejected: int = 0
    rejected: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    # Wall-clock time since which messages have been in hand with no batch committed (None: none in hand).
    waiting_since: datetime | None = None
    last_progress: datetime = field(default_factory=lambda: datetime.now(UTC))


class IngestWorker:
    """Subscribe to every hub's observations, store them, acknowledge after commit. ``start`` / ``stop``."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        endpoint: BrokerEndpoint | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        username: str | None = None,
        password: str | None = None,
        notify_channel: str | None = None,
        batch_max_messages: int = BATCH_MAX_MESSAGES,
        batch_wait_s: float = BATCH_WAIT_S,
    ) -> None:
        """``settings`` gives the database URL, the broker (unless ``endpoint`` is given: the embedded
        broker, which also says whether MQTT 5 is possible), the share group and the payload limit.

        ``client_id`` names the broker session: keep it fixed per worker slot, so a restarted worker
        gets back what its predecessor left unacknowledged; give each concurrent worker its own.
        ``username``/``password`` authenticate to the broker (amqtt keeps no offline queue for
        sessions it treats as anonymous). ``notify_channel`` names the PostgreSQL channel that hears,
        from inside each batch's transaction, of the patients with new data (the scorer LISTENs there).
        Without ``username``, the settings' broker credentials are used.
        """
        self._settings = settings
        self._host = endpoint.host if endpoint else settings.mqtt_host
        self._port = endpoint.port if endpoint else settings.mqtt_port
        self.mqtt5 = settings.mqtt_v5 and (endpoint.mqtt5 if endpoint else True)
        self._client_id = client_id
        self._batch_max = batch_max_messages
        self._batch_wait = batch_wait_s
        self._inbox: queue.SimpleQueue[_Inbound] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._tally = _Tally()
        self._connection = 0  # incremented in on_connect (paho's thread), read when acknowledging
        self._store = BatchStore(settings, client_id, notify_channel=notify_channel, stopping=self._stopping)
        self._client = self._make_client()
        if username is None:
            username, password = settings.mqtt_username, settings.mqtt_password
        if username is not None:
            self._client.username_pw_set(username, password)
        if settings.mqtt_tls:
            # The broker's CA (mqtt_ca_file), else the system's CA certificates; its name is verified.
            ca_file = settings.mqtt_ca_file
            self._client.tls_set(ca_certs=str(ca_file) if ca_file is not None else None)
        self._thread = threading.Thread(target=self._run, name=f"ingest-{client_id}", daemon=True)
        # Its own thread and connection: a worker thread stuck in a statement must still show as stuck.
        self._heart = threading.Thread(target=self._beat_loop, name=f"heartbeat-{client_id}", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def subscription(self) -> str:
        if self.mqtt5:
            return f"$share/{self._settings.mqtt_share_group}/{OBSERVATIONS_SUBSCRIPTION}"
        return OBSERVATIONS_SUBSCRIPTION

    def start(self) -> None:
        """Connect (paho keeps retrying while the broker is away) and start the worker thread."""
        if self.mqtt5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            properties.ReceiveMaximum = RECEIVE_MAXIMUM
            self._client.connect_async(
                self._host, self._port, keepalive=KEEPALIVE_S, clean_start=False, properties=properties
            )
        else:
            self._client.connect_async(self._host, self._port, keepalive=KEEPALIVE_S)
        self._thread.start()
        self._heart.start()
        self._client.loop_start()

    def wait_until_subscribed(self, timeout: float) -> bool:
        """Whether the subscription is in place (messages published from now on reach this session)."""
        return self._subscribed.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages, finish what is in hand (unless the database is down), disconnect.

        Messages not acknowledged stay with the broker for the next worker with this client id.
        """
        self._stopping.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(
                "ingest worker did not finish within %.0f s; leaving its batch to the broker", timeout
            )
        self._heart.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def counters(self) -> IngestCounters:
        stored = self._store.counts()
        with self._lock:
            t = self._tally
            return IngestCounters(
                messages_received=t.received,
                messages_acked=t.acked,
                messages_in_hand=t.in_hand,
                messages_left_for_redelivery=t.left,
                messages_rejected=t.messages_rejected,
                observations_stored=stored.stored,
                duplicates=stored.duplicates,
                observations_rejected=t.rejected,
                rejected_by_code=dict(t.by_code),
                batches=t.batches,
                database_retries=stored.retries,
                messages_set_aside=stored.set_aside,
            )

    # -- paho callbacks (paho's network thread: queue and return) ------------------------------------

    def _make_client(self) -> mqtt.Client:
        if self.mqtt5:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self._client_id,
                protocol=MQTTProtocolVersion.MQTTv5,
                manual_ack=True,
            )
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self._client_id,
                protocol=MQTTProtocolVersion.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            log.warning("ingest %s: broker refused the connection: %s", self._client_id, reason)
            return
        with self._lock:
            self._connection += 1
            reconnect = self._connection > 1
        if reconnect and not flags.session_present:
            # The broker lost our session (restarted without persistence, or it expired): whatever it
            # held for us is gone. Nothing to do but say so loudly.
            log.error("ingest %s: reconnected but the broker kept no session for us", self._client_id)
        else:
            log.info("ingest %s: connected (session present: %s)", self._client_id, flags.session_present)
        # Hubs' retained statuses at QoS 0 and not shared: the broker queues none for an offline session
        # (an old status must not pass for a recent contact), and each worker gets the retained ones.
        client.subscribe([(self.subscription, 1), (STATUS_SUBSCRIPTION, 0)])

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error(
                "ingest %s: subscription to %s refused: %s", self._client_id, self.subscription, reasons
            )
            return
        self._subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        self._subscribed.clear()
        if not self._stopping.is_set():
            log.warning("ingest %s: disconnected (%s); paho reconnects", self._client_id, reason)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # not taken, not acknowledged: the broker redelivers it to the next session
        with self._lock:
            self._tally.received += 1
            self._tally.in_hand += 1
            if self._tally.waiting_since is None:
                self._tally.waiting_since = datetime.now(UTC)
            connection = self._connection
        payload = bytes(message.payload)
        self._inbox.put(
            _Inbound(
                message.topic, payload, message.mid, message.qos, connection, time.monotonic(), message.retain
            )
        )

    # -- worker thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                batch = self._take_batch()
                if batch:
                    observations = [m for m in batch if not is_status_topic(m.topic)]
                    try:
                        self._store.handle_statuses([m for m in batch if is_status_topic(m.topic)])
                        handled = self._store.handle(observations) if observations else None
                    except Abandoned:
                        with self._lock:
                            self._tally.left += self._tally.in_hand
                            self._tally.in_hand = 0
                            self._tally.waiting_since = None
                        log.warning(
                            "ingest %s: stopping, database unavailable; %d message(s) left to the broker",
                            self._client_id,
                            len(batch) + self._inbox.qsize(),
                        )
                        return
                    self._after_commit(batch, handled.outcomes if handled else [])
                elif self._stopping.is_set():
                    return
        finally:
            self._store.close()

    def _take_batch(self) -> list[_Inbound]:
        try:
            first = self._inbox.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self._batch_wait
        while len(batch) < self._batch_max:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._inbox.get(timeout=remaining) if remaining > 0 else self._inbox.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _beat_loop(self) -> None:
        """Write the heartbeat row every ``HEARTBEAT_S`` until the worker thread has stopped, then once
        more (best effort: a database that is away is /healthz's other finding)."""
        db: psycopg.Connection[Any] | None = None
        while True:
            done = not self._thread.is_alive() and self._stopping.is_set()
            with self._lock:
                in_hand = 0 if done else self._tally.in_hand  # what a stopped worker held is the broker's
                waiting_since = self._tally.waiting_since if in_hand else None
                last_progress = self._tally.last_progress
            try:
                if db is None or db.closed:
                    db = psycopg.connect(
                        self._settings.database_url,
                        autocommit=True,
                        connect_timeout=DB_CONNECT_TIMEOUT_S,
                        application_name=f"homewatch-{self._client_id}-heartbeat",
                    )
                record_heartbeat(
                    db,
                    self._client_id,
                    in_hand=in_hand,
                    waiting_since=waiting_since,
                    last_progress=last_progress,
                )
            except psycopg.Error as exc:
                log.debug("ingest %s: heartbeat not written (%s)", self._client_id, describe(exc))
                if db is not None:
                    with contextlib.suppress(psycopg.Error):
                        db.close()
                db = None
            if done:
                break
            if self._stopping.is_set():
                self._thread.join(HEARTBEAT_S)  # the last write follows the worker thread's end at once
            else:
                self._stopping.wait(HEARTBEAT_S)
        if db is not None:
            with contextlib.suppress(psycopg.Error):
                db.close()

    def _after_commit(self, batch: list[_Inbound], outcomes: list[MessageOutcome]) -> None:
        with self._lock:
            current = self._connection
        for outcome in outcomes:
            if outcome.source is None:
                continue
            if outcome.rejections:
                self._client.publish(outcome.source.errors_topic, orjson.dumps(error_report(outcome)), qos=1)
            owed = receipt(outcome)
            if owed is not None:
                # After the commit: the hub deletes its copies of this Bundle when this arrives.
                self._client.publish(outcome.source.receipts_topic, orjson.dumps(owed), qos=1)
        acked = 0
        for message in batch:
            # An ack is only meaningful on the connection that delivered the message; an older one's
            # message is redelivered by the broker and acknowledged then (its store was idempotent).
            if message.connection == current:
                self._client.ack(message.mid, message.qos)  # a no-op for QoS 0
                acked += 1
        with self._lock:
            t = self._tally
            t.batches += 1
            t.acked += acked
            t.left += len(batch) - acked
            t.in_hand -= len(batch)
            t.last_progress = datetime.now(UTC)
            t.waiting_since = t.last_progress if t.in_hand else None
            for outcome in outcomes:
                t.messages_rejected += outcome.message_rejected
                t.rejected += sum(r.index is not None for r in outcome.rejections)
                t.by_code.update(r.code for r in outcome.rejections)
