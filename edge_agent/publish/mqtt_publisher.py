"""Drains the outbox to MQTT: FHIR batch Bundles at QoS 1, a row deleted only after the broker's PUBACK.

One paho-mqtt client per hub, in its own network thread (paho is not asyncio), plus one drain thread
that reads the outbox in order and keeps a bounded window of Bundles in flight so a backlog of days
does not flood the broker. While the link is down paho holds the in-flight Bundles and resends them
on reconnect; rows not yet sent stay in the outbox. If the hub process dies, everything not
acknowledged is still in the outbox and is sent again: the server's de-duplication on the Observation
identifier makes that harmless.

The retained ``status`` topic says online with the agent version, queue depth and whatever the
``status_extra`` callable adds (the service adds the devices); the Last Will says offline.
:meth:`MqttPublisher.publish_status` sends it again. Messages on the hub's retained ``config`` topic go
to ``on_config`` (raw bytes, on paho's thread); judging them is :mod:`edge_agent.remote_config`'s job.
TLS and the hub's credentials come from :class:`~edge_agent.config.MqttConfig`.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config import HubConfig
from edge_agent.outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)

# Bundles in flight at once: enough to keep a loopback or LAN link busy, small enough that a broker
# with per-client queue limits never has to drop anything of ours.
WINDOW = 16
# paho's reconnect back-off: first retry after 1 s, doubling to 60 s so hundreds of hubs coming
# back after an outage do not all hit the broker in the same second.
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 60
AGENT_VERSION = "0.1.0"


@dataclass(slots=True)
class PublisherStats:
    bundles_sent: int = 0
    observations_sent: int = 0  # acknowledged by the broker
    errors_received: list[dict[str, Any]] = field(default_factory=list)


class MqttPublisher:
    """Sends what is in the outbox; ``start()`` / ``stop()``. Thread-based, never blocks an event loop."""

    def __init__(self, config: HubConfig, outbox: Outbox) -> None:
        self._config = config
        self._outbox = outbox
        self.stats = PublisherStats()
        self._lock = threading.Lock()
        self._inflight: dict[int, list[int]] = {}  # mid -> outbox seqs
        self._cursor = 0  # highest seq handed to paho
        self._acked_early: set[int] = set()
        # mids of status messages: their PUBACKs must never be taken for a Bundle's (paho reuses mids).
        self._status_mids: set[int] = set()
        self._connected = threading.Event()
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
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
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
            body["evicted"] = self._outbox.evicted  # readings dropped because the outbox was full, by kind
            try:
                body.update(self.status_extra())
            except Exception:  # a status must never take the publisher down
                log.exception("hub %s: building the status failed", self._config.hub_id)
        else:
            body["queueDepth"] = None
        return orjson.dumps(body)

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
        """Stop sending; wait up to ``timeout`` for Bundles in flight to be acknowledged."""
        self._stopping.set()
        self._outbox.wake()
        with self._slot_free:
            self._slot_free.notify_all()
            self._slot_free.wait_for(lambda: not self._inflight, timeout=timeout)
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
        client.subscribe([(self._config.topic("errors"), 1), (self._config.topic("config"), 1)])
        self._send_status(client, "online")
        self._connected.set()

    def _on_connect_fail(self, _c: mqtt.Client, _u: object) -> None:
        if not self._stopping.is_set():
            log.warning(
                "hub %s: cannot reach %s:%d (TLS or network); retrying with back-off",
                self._config.hub_id,
                self._config.mqtt.host,
                self._config.mqtt.port,
            )

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.info("hub %s: disconnected (%s); paho reconnects with back-off", self._config.hub_id, reason)

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, _r: ReasonCode, _p: object) -> None:
        with self._slot_free:
            if mid in self._status_mids:
                self._status_mids.discard(mid)
                return
            seqs = self._inflight.pop(mid, None)
            if seqs is None:
                # A PUBACK that overtook the registration in _send (or in _send_status).
                self._acked_early.add(mid)
                return
            self._delivered(seqs)

    def _delivered(self, seqs: list[int]) -> None:
        self._outbox.delete(seqs)
        self.stats.bundles_sent += 1
        self.stats.observations_sent += len(seqs)
        self._slot_free.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._config.topic("config"):
            if self.on_config is not None:
                self.on_config(bytes(message.payload))
            return
        try:
            rejection = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            rejection = {"unreadable": message.payload[:200].decode(errors="replace")}
        for line in _rejection_lines(rejection):
            log.warning("hub %s: gateway rejected %s", self._config.hub_id, line)
        with self._lock:
            self.stats.errors_received.append(rejection)

    # -- drain thread ----------------------------------------------------------------------------

    def _drain(self) -> None:
        while not self._stopping.is_set():
            if not self._connected.wait(timeout=0.5):
                continue
            with self._slot_free:
                self._slot_free.wait_for(lambda: len(self._inflight) < WINDOW or self._stopping.is_set())
            if self._stopping.is_set():
                return
            rows = self._outbox.after(self._cursor, self._config.bundle_size)
            if not rows:
                self._outbox.wait_for_rows_after(self._cursor, timeout=0.5)
                continue
            self._send(rows)

    def _send(self, rows: list[OutboxRow]) -> None:
        # The Bundle is assembled from stored JSON bytes without re-parsing each Observation.
        entries = b",".join(
            b'{"resource":' + row.resource + b',"request":{"method":"POST","url":"Observation"}}'
            for row in rows
        )
        payload = b'{"resourceType":"Bundle","type":"batch","entry":[' + entries + b"]}"
        # Published outside our lock: paho's network thread may hold its own locks while it calls
        # _on_publish, which takes ours.
        info = self._client.publish(self._config.topic("observations"), payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            return  # not queued by paho: the cursor stays, the rows are tried again
        # MQTT_ERR_NO_CONN still queues the message in paho: it goes out after reconnecting.
        seqs = [row.seq for row in rows]
        with self._slot_free:
            self._cursor = rows[-1].seq
            if info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
                self._delivered(seqs)
            else:
                self._inflight[info.mid] = seqs


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
