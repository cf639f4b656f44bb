"""The hub forgets a reading only when the gateway's receipt says it holds it.

A PUBACK only says the broker has the message in memory. These tests hold the gateway back and show
that the hub keeps every row the broker acknowledged, stops sending once a bounded number of Bundles is
unconfirmed (so the hub, not the broker, keeps the backlog), and lets the rows go when the receipts
come; and that a hub the gateway does not know yet keeps its readings until it is enrolled.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from delivery_helpers import (
    HUB,
    MUNICIPALITY,
    enroll,
    hub_config,
    identifiers,
    needs_mosquitto,
    quarantined_count,
    readings,
    start_gateway,
    stored_count,
    stored_identifiers,
    wait_for,
)

from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from edge_agent.publish.mqtt_publisher import UNCONFIRMED_MAX
from gateway.broker import EmbeddedBroker

BUNDLE = 50


@needs_mosquitto
def test_rows_acknowledged_by_the_broker_stay_until_the_gateway_confirms(
    tmp_path: Path, database_url: str
) -> None:
    count = (UNCONFIRMED_MAX + 20) * BUNDLE  # more than the hub may have unconfirmed
    with EmbeddedBroker(prefer="mosquitto") as endpoint:
        enroll(database_url)
        gateway = start_gateway(database_url, endpoint)
        gateway.stop()  # its session stays in the broker, which queues for it
        config = hub_config(tmp_path, endpoint, bundle_size=BUNDLE, receipt_timeout_s=600)
        box = Outbox(config.outbox_path)
        sent = readings(count)
        box.put(sent)
        publisher = MqttPublisher(config, box)
        try:
            publisher.start()
            window = UNCONFIRMED_MAX * BUNDLE
            assert wait_for(lambda: publisher.awaiting_receipt() == window, timeout=20), (
                f"{publisher.awaiting_receipt()} awaiting, expected the full window of {window}"
            )
            # The broker acknowledged all of them, and still nothing left the outbox.
            assert box.depth() == count and publisher.stats.observations_sent == 0
            assert stored_count(database_url) == 0
            gateway = start_gateway(database_url, endpoint)  # the gateway is back: receipts flow
            assert wait_for(lambda: box.depth() == 0, timeout=60), f"{box.depth()} rows still held"
            assert stored_identifiers(database_url) == identifiers(sent)
            assert stored_count(database_url) == count and publisher.stats.observations_sent == count
            assert publisher.stats.bundles_resent == 0  # nothing timed out: nothing sent twice
        finally:
            publisher.stop()
            gateway.stop()
            box.close()


@needs_mosquitto
def test_a_hub_not_yet_enrolled_keeps_its_readings_until_it_is(tmp_path: Path, database_url: str) -> None:
    with EmbeddedBroker(prefer="mosquitto") as endpoint:
        gateway = start_gateway(database_url, endpoint)
        config = hub_config(tmp_path, endpoint, bundle_size=BUNDLE, receipt_timeout_s=0.5)
        box = Outbox(config.outbox_path)
        sent = readings(3 * BUNDLE)
        box.put(sent)
        publisher = MqttPublisher(config, box)
        try:
            publisher.start()
            # Refused as unknown-hub and quarantined: no receipt, so the hub keeps everything.
            assert wait_for(lambda: quarantined_count(database_url) >= 3, timeout=20)
            assert wait_for(lambda: len(publisher.stats.errors_received) >= 3, timeout=10)
            codes = {
                coding["code"]
                for report in publisher.stats.errors_received
                for issue in report["issue"]
                for coding in issue["details"]["coding"]
            }
            assert codes == {"unknown-hub"}
            assert box.depth() == len(sent) and stored_count(database_url) == 0
            enroll(database_url)  # the municipality fixes the enrolment
            # The hub sends again when no receipt came (the wait doubles: 0.5, 1, 2, 4 s ...).
            assert wait_for(lambda: box.depth() == 0, timeout=60), f"{box.depth()} rows still held"
            assert stored_identifiers(database_url) == identifiers(sent)
            assert publisher.stats.bundles_resent >= 3
        finally:
            publisher.stop()
            gateway.stop()
            box.close()


@needs_mosquitto
def test_a_quarantined_reading_is_confirmed_with_its_neighbours(tmp_path: Path, database_url: str) -> None:
    """An impossible value is the gateway's to keep (quarantine, errors topic): the hub lets it go."""
    with EmbeddedBroker(prefer="mosquitto") as endpoint:
        enroll(database_url)
        gateway = start_gateway(database_url, endpoint)
        config = hub_config(tmp_path, endpoint, bundle_size=BUNDLE)
        box = Outbox(config.outbox_path)
        sent = readings(10)
        sent[2]["valueQuantity"]["value"] = 140  # SpO2 140 % (even positions are SpO2)
        box.put(sent)
        publisher = MqttPublisher(config, box)
        try:
            publisher.start()
            assert wait_for(lambda: box.depth() == 0, timeout=20)
            assert stored_count(database_url) == 9 and quarantined_count(database_url) == 1
            with psycopg.connect(database_url) as conn:
                row = conn.execute("SELECT municipality_id, hub_id, reason FROM quarantine").fetchone()
            assert row is not None and (row[0], row[1]) == (MUNICIPALITY, HUB)
            assert "impossible-value" in row[2]
        finally:
            publisher.stop()
            gateway.stop()
            box.close()
