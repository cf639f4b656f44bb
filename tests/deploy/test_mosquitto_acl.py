"""The shipped Mosquitto configuration and access rules, run by a real Mosquitto: each hub stays in its own
lane when it publishes and reads. (What it may subscribe to: test_mosquitto_subscribe.py.)"""

from __future__ import annotations

import time

import pytest
from conftest import NEEDS_MOSQUITTO
from shipped_mosquitto import GATEWAY, GRANTED, HUBS, NOT_AUTHORIZED, Client, ShippedBroker, topic

pytestmark = NEEDS_MOSQUITTO

HUB1, HUB2 = HUBS[0], HUBS[1]


def test_nobody_gets_in_without_an_account(shipped: ShippedBroker) -> None:
    anonymous = Client(shipped.port, None, client_id="t-anonymous")
    wrong = Client(shipped.port, HUB1, password_override="not-the-password")
    unknown = Client(shipped.port, "hub-9999")
    try:
        assert anonymous.refused is not None
        assert wrong.refused is not None
        assert unknown.refused is not None
    finally:
        for client in (anonymous, wrong, unknown):
            client.close()


def test_a_hub_publishes_only_under_its_own_prefix(shipped: ShippedBroker) -> None:
    gateway = Client(shipped.port, GATEWAY)
    hub = Client(shipped.port, HUB1)
    try:
        assert gateway.refused is None and hub.refused is None
        assert gateway.subscribe("homewatch/v1/+/+/observations") == GRANTED
        hub.publish(topic(HUB1, "observations"))
        hub.publish(topic(HUB2, "observations"))  # pretending to be another hub
        time.sleep(0.3)
        assert gateway.received() == [topic(HUB1, "observations")]
    finally:
        gateway.close()
        hub.close()


@pytest.mark.parametrize("leaf", ["errors", "receipts"])
def test_a_hub_reads_only_its_own_errors_and_receipts(shipped: ShippedBroker, leaf: str) -> None:
    gateway = Client(shipped.port, GATEWAY)
    hub1 = Client(shipped.port, HUB1)
    hub2 = Client(shipped.port, HUB2)
    try:
        assert hub1.subscribe(f"homewatch/v1/+/+/{leaf}") == NOT_AUTHORIZED  # everyone's: refused outright
        assert hub1.subscribe(topic(HUB1, leaf)) == GRANTED
        assert hub2.subscribe(topic(HUB2, leaf)) == GRANTED
        gateway.publish(topic(HUB1, leaf))
        gateway.publish(topic(HUB2, leaf))
        time.sleep(0.3)
        assert hub1.received() == [topic(HUB1, leaf)]
        assert hub2.received() == [topic(HUB2, leaf)]
    finally:
        for client in (gateway, hub1, hub2):
            client.close()


def test_a_hub_cannot_forge_a_receipt(shipped: ShippedBroker) -> None:
    """A receipt makes a hub delete readings: only the gateway may send one, even to the hub itself."""
    hub1 = Client(shipped.port, HUB1)
    hub2 = Client(shipped.port, HUB2)
    try:
        assert hub1.subscribe(topic(HUB1, "receipts")) == GRANTED
        hub2.publish(topic(HUB1, "receipts"))
        hub1.publish(topic(HUB1, "receipts"))
        time.sleep(0.3)
        assert hub1.received() == []
    finally:
        hub1.close()
        hub2.close()
