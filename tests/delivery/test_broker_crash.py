"""Mosquitto killed (SIGKILL) in the middle of draining a large backlog and restarted on the same port.

What always holds (asserted): the hub deletes nothing without a PUBACK, drains its whole outbox after the
restart, and the gateway stores no reading twice and refuses none.

What does NOT always hold, and this test says so instead of hiding it: "every reading arrives". Mosquitto
2.0 PUBACKs a QoS 1 message as soon as it holds it in memory; its persistence is a periodic snapshot
(``autosave_interval``), not a log. A message acknowledged to the hub but not yet handed to the gateway
when the broker is killed is gone: the hub already deleted its row. Observed here: nothing lost in most
runs, 50-550 readings (1-11 Bundles) in others. The test then ends as XFAIL with the count;
``docs/outbox.md`` lists the fixes (an end-to-end acknowledgement from the gateway, or a broker that
persists before it PUBACKs).
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

from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from gateway.broker import EmbeddedBroker

BACKLOG = 10_000


@needs_mosquitto
def test_broker_killed_mid_drain_every_reading_arrives_once(tmp_path: Path, database_url: str) -> None:
    broker = EmbeddedBroker(prefer="mosquitto")
    endpoint = broker.start()
    enroll(database_url)
    sent = readings(BACKLOG)
    config = hub_config(tmp_path, endpoint)
    box = Outbox(config.outbox_path)
    for i in range(0, BACKLOG, 500):
        box.put(sent[i : i + 500])
    gateway = start_gateway(database_url, endpoint)
    persist_broker_sessions(broker)  # the gateway's session is in the broker's snapshot, as in production
    publisher = MqttPublisher(config, box)
    try:
        publisher.start()
        assert wait_for(lambda: box.depth() < BACKLOG * 0.7, timeout=10), "the drain did not start"
        broker.kill()
        left_at_kill, stored_at_kill = box.depth(), stored_count(database_url)
        time.sleep(0.5)
        broker.start()
        assert left_at_kill > 0 and stored_at_kill < BACKLOG  # the kill came mid-drain
        assert wait_for(lambda: box.depth() == 0, timeout=60), f"{box.depth()} rows never acknowledged"
        wait_for(lambda: stored_count(database_url) >= BACKLOG, timeout=5)
        stored = stored_identifiers(database_url)
        assert stored <= identifiers(sent) and stored_count(database_url) == len(stored)  # once each
        assert quarantined_count(database_url) == 0
        lost = len(identifiers(sent) - stored)
        if lost:
            pytest.xfail(
                f"{lost} readings acknowledged by Mosquitto were lost with it (PUBACK before persistence); "
                "see the module docstring"
            )
    finally:
        publisher.stop()
        gateway.stop()
        box.close()
        broker.stop()
