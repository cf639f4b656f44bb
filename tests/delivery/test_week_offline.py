"""A hub cut off from the broker for a simulated week keeps every reading in its outbox and, when the
broker is back, delivers all of them: each stored once by the gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
from delivery_helpers import (
    day_of_readings,
    enroll,
    hub_config,
    identifiers,
    needs_mosquitto,
    persist_broker_sessions,
    quarantined_count,
    start_gateway,
    stored_count,
    stored_identifiers,
    wait_for,
)
from reconciliation import reconcile

from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from gateway.broker import EmbeddedBroker

DAYS = 7
PER_PUT = 6  # the agent stores what one connection delivered together: a handful of readings

pytestmark = pytest.mark.faults


@needs_mosquitto
def test_week_offline_hub_delivers_everything_once_after_reconnecting(
    tmp_path: Path, database_url: str
) -> None:
    broker = EmbeddedBroker(prefer="mosquitto")
    endpoint = broker.start()
    enroll(database_url)
    config = hub_config(tmp_path, endpoint)
    box = Outbox(config.outbox_path)
    gateway = start_gateway(database_url, endpoint)
    persist_broker_sessions(broker)  # the gateway's session is in the broker's snapshot, as in production
    publisher = MqttPublisher(config, box)
    week = [obs for day in range(DAYS) for obs in day_of_readings(day)]
    try:
        publisher.start()
        assert wait_for(lambda: publisher.connected, timeout=10)
        broker.kill()  # the hub's link is gone
        assert wait_for(lambda: not publisher.connected, timeout=10)
        for i in range(0, len(week), PER_PUT):  # a week of readings arrive while nothing can be sent
            box.put(week[i : i + PER_PUT])
        assert box.depth() == len(week) and box.evicted == {}  # nothing deleted without a PUBACK
        assert stored_count(database_url) == 0
        broker.start()  # the link returns (same port); hub and gateway reconnect with back-off
        # Reconnecting waits out paho's back-off, which doubles while the broker is away (up to 60 s):
        # on a busy machine the week's writes take long enough for it to reach tens of seconds.
        assert wait_for(lambda: stored_count(database_url) >= len(week), timeout=90), (
            f"{stored_count(database_url)} of {len(week)} stored, {box.depth()} still in the outbox"
        )
        assert wait_for(lambda: box.depth() == 0, timeout=5)
        assert stored_identifiers(database_url) == identifiers(week)
        assert stored_count(database_url) == len(week) and quarantined_count(database_url) == 0
        figures = reconcile(database_url, "a week offline, broker gone", identifiers(week))
        assert (figures.lost, figures.duplicated) == (0, 0)
        assert publisher.stats.observations_sent == len(week)
    finally:
        publisher.stop()
        gateway.stop()
        box.close()
        broker.stop()
