"""Mosquitto killed (SIGKILL) in the middle of draining a large backlog and restarted on the same port:
every reading arrives, once.

Mosquitto 2.0 PUBACKs a QoS 1 message as soon as it holds it in memory; its persistence is a periodic
snapshot (``autosave_interval``), not a log. So a message acknowledged to the hub but not yet handed to
the gateway when the broker dies is gone from the broker. Before the gateway's receipts, the hub had
already deleted its row at the PUBACK, and this test lost 50-550 readings in some runs. Now the hub
deletes a Bundle's rows only on the gateway's receipt (after its commit) and sends again what the
gateway has not confirmed after reconnecting, so the loss at the broker costs a resend, not readings.

Two cases: the gateway's session is in the broker's snapshot (as a production gateway's hours-old
session is), and it is not (the restarted broker drops what the hub publishes before the gateway has
subscribed again; the receipt timeout brings those Bundles back).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from delivery_helpers import (
    enroll,
    hub_config,
    identifiers,
    needs_mosquitto,
    persist_broker_sessions,
    quarantined_count,
    readings,
    start_gateway,
    stored_count,
    stored_identifiers,
    wait_for,
)
from reconciliation import reconcile

from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from gateway.broker import EmbeddedBroker

BACKLOG = 10_000
pytestmark = pytest.mark.faults


@needs_mosquitto
@pytest.mark.parametrize("gateway_session_saved", [True, False], ids=["session-saved", "session-lost"])
def test_broker_killed_mid_drain_every_reading_arrives_once(
    tmp_path: Path, database_url: str, gateway_session_saved: bool
) -> None:
    broker = EmbeddedBroker(prefer="mosquitto")
    endpoint = broker.start()
    enroll(database_url)
    sent = readings(BACKLOG)
    config = hub_config(tmp_path, endpoint)
    box = Outbox(config.outbox_path)
    for i in range(0, BACKLOG, 500):
        box.put(sent[i : i + 500])
    gateway = start_gateway(database_url, endpoint)
    if gateway_session_saved:
        persist_broker_sessions(broker)
    publisher = MqttPublisher(config, box)
    try:
        publisher.start()
        assert wait_for(lambda: stored_count(database_url) > BACKLOG * 0.2, timeout=20), "no drain"
        broker.kill()
        left_at_kill, stored_at_kill = box.depth(), stored_count(database_url)
        time.sleep(0.5)
        broker.start()
        assert left_at_kill > 0 and stored_at_kill < BACKLOG  # the kill came mid-drain
        # Rows go only when the gateway has them, so an empty outbox means everything is stored.
        assert wait_for(lambda: box.depth() == 0, timeout=90), f"{box.depth()} rows never confirmed"
        stored = stored_identifiers(database_url)
        assert stored == identifiers(sent), f"{len(identifiers(sent) - stored)} readings lost"
        assert stored_count(database_url) == BACKLOG  # once each
        assert quarantined_count(database_url) == 0
        variant = "saved" if gateway_session_saved else "lost"
        figures = reconcile(
            database_url, f"broker SIGKILLed mid-drain (session {variant})", identifiers(sent)
        )
        assert (figures.sent, figures.lost, figures.duplicated) == (BACKLOG, 0, 0)
        assert publisher.awaiting_receipt() == 0
    finally:
        publisher.stop()
        gateway.stop()
        box.close()
        broker.stop()
