"""What a hub may subscribe to on the shipped Mosquitto: its own config, errors and receipts, nothing else.

Issue 15, defect 3: a hub that subscribed to the gateway's shared subscription was granted it, took its
turn of every hub's readings and had them dropped at the read check, so the gateway got 1/(k+1) of the
readings on first delivery with k such hubs. Run against a real Mosquitto with the shipped files.
"""

from __future__ import annotations

import socket
import time

import pytest
from conftest import NEEDS_MOSQUITTO
from shipped_mosquitto import (
    GATEWAY,
    GRANTED,
    HUBS,
    MUNICIPALITY,
    NOT_AUTHORIZED,
    SHARE,
    Client,
    ShippedBroker,
    topic,
)

pytestmark = NEEDS_MOSQUITTO

HUB, OTHER = HUBS[0], HUBS[1]
READINGS = 100
# Enough for 100 QoS 1 messages on loopback many times over; the wait ends as soon as all have arrived.
DELIVERY_WAIT_S = 5.0
# Time for traffic that should not arrive to have arrived if it were going to.
SETTLE_S = 0.3

REFUSED = {
    "another_hubs_errors": topic(OTHER, "errors"),
    "another_hubs_receipts": topic(OTHER, "receipts"),
    "another_hubs_config": topic(OTHER, "config"),
    "every_hubs_readings": "homewatch/v1/+/+/observations",
    "everything": "#",
    "the_homewatch_tree": "homewatch/#",
    "the_gateways_share": SHARE,
    "its_own_errors_through_a_share": f"$share/x/{topic(HUB, 'errors')}",
    "the_brokers_sys_tree": "$SYS/#",
    "its_own_errors_under_any_municipality": f"homewatch/v1/+/{HUB}/errors",
    "all_its_own_topics": f"homewatch/v1/{MUNICIPALITY}/{HUB}/#",
}


def _wait_for(client: Client, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(client.received()) < count:
        time.sleep(0.02)
    return len(client.received())


def _traffic(gateway: Client, other: Client) -> None:
    """Everything a curious hub would like to see: another hub's readings and status, and the gateway's
    errors, receipts and configuration for both hubs."""
    other.publish(topic(OTHER, "observations"))
    other.publish(topic(OTHER, "status"))
    for hub in (HUB, OTHER):
        for leaf in ("errors", "receipts", "config"):
            gateway.publish(topic(hub, leaf))


@pytest.mark.parametrize("leaf", ["config", "errors", "receipts"])
def test_a_hub_subscribes_to_its_own_config_errors_and_receipts(shipped: ShippedBroker, leaf: str) -> None:
    hub, gateway = Client(shipped.port, HUB), Client(shipped.port, GATEWAY)
    try:
        assert hub.subscribe(topic(HUB, leaf)) == GRANTED
        gateway.publish(topic(HUB, leaf))
        assert _wait_for(hub, 1, DELIVERY_WAIT_S) == 1
        assert hub.received() == [topic(HUB, leaf)]
    finally:
        hub.close()
        gateway.close()


@pytest.mark.parametrize("topic_filter", list(REFUSED.values()), ids=list(REFUSED))
def test_a_hub_is_refused_any_other_subscription_and_sees_nothing(
    shipped: ShippedBroker, topic_filter: str
) -> None:
    hub, gateway, other = (Client(shipped.port, user) for user in (HUB, GATEWAY, OTHER))
    try:
        suback = hub.subscribe(topic_filter)
        _traffic(gateway, other)
        time.sleep(SETTLE_S)
        assert (suback, hub.received()) == (NOT_AUTHORIZED, [])
    finally:
        for client in (hub, gateway, other):
            client.close()


@pytest.mark.parametrize("intruders", [1, 6])
def test_hubs_cannot_join_the_gateways_share_so_it_gets_every_reading_first_time(
    shipped: ShippedBroker, intruders: int
) -> None:
    gateway = Client(shipped.port, GATEWAY, client_id="homewatch-ingest-1")
    thieves = [Client(shipped.port, hub) for hub in HUBS[2 : 2 + intruders]]
    sender = Client(shipped.port, HUB)
    try:
        assert gateway.subscribe(SHARE) == GRANTED
        subacks = [thief.subscribe(SHARE) for thief in thieves]
        for n in range(READINGS):
            sender.publish(topic(HUB, "observations"), f'{{"n": {n}}}'.encode())
        received = _wait_for(gateway, READINGS, DELIVERY_WAIT_S)
        assert (received, subacks) == (READINGS, [NOT_AUTHORIZED] * intruders)
        assert [thief.received() for thief in thieves] == [[]] * intruders
    finally:
        for client in (gateway, sender, *thieves):
            client.close()


def test_a_hubs_last_will_on_its_status_reaches_the_gateway(shipped: ShippedBroker) -> None:
    """The hub's Last Will (retained ``offline`` on its status) is still allowed and delivered."""
    gateway = Client(shipped.port, GATEWAY)
    hub = Client(shipped.port, HUB, will=(topic(HUB, "status"), b'{"state": "offline"}'))
    try:
        assert gateway.subscribe("homewatch/v1/+/+/status") == GRANTED
        hub.client.loop_stop()
        sock = hub.client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)  # a power cut: no DISCONNECT, so the broker sends the will
        assert _wait_for(gateway, 1, DELIVERY_WAIT_S) == 1
        assert gateway.received() == [topic(HUB, "status")]
    finally:
        gateway.close()
