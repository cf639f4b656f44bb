"""Reconnecting after the broker went away: jittered back-off (``reconnect_delay``), so hubs that lost a
restarted broker together do not all come back in the same instant, and what they send afterwards
arrives.

The delay function is pure and tested on its own; the publishers are real (paho, their own outbox) and
the broker is a real Mosquitto, SIGKILLed and started again on the same port.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config import HubConfig, MqttConfig
from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from edge_agent.publish.mqtt_publisher import RECONNECT_MAX_S, RECONNECT_MIN_S, reconnect_delay
from gateway.broker import BrokerEndpoint, EmbeddedBroker, mosquitto_binary

needs_mosquitto = pytest.mark.skipif(
    mosquitto_binary() is None, reason="needs Mosquitto (starts in milliseconds; amqtt takes a second)"
)


# --- the delay ------------------------------------------------------------------------------------


@given(attempt=st.integers(min_value=0, max_value=10_000), seed=st.integers(min_value=0))
def test_delay_stays_between_the_floor_and_a_cap_that_doubles_per_attempt(attempt: int, seed: int) -> None:
    delay = reconnect_delay(attempt, random.Random(seed))
    assert RECONNECT_MIN_S <= delay <= min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2 ** min(attempt + 1, 64))


def test_delays_of_hubs_disconnected_together_spread_over_the_whole_range() -> None:
    hubs = [random.Random(n) for n in range(2_000)]
    for attempt, cap in [(0, 2.0), (2, 8.0), (10, RECONNECT_MAX_S)]:
        delays = sorted(reconnect_delay(attempt, rng) for rng in hubs)
        width = cap - RECONNECT_MIN_S
        # uniform: the fastest and slowest near the ends, a tenth of the range holds about a tenth
        assert delays[0] < RECONNECT_MIN_S + 0.01 * width and delays[-1] > cap - 0.01 * width
        in_first_tenth = sum(d < RECONNECT_MIN_S + width / 10 for d in delays)
        assert 120 < in_first_tenth < 280, (attempt, in_first_tenth)


def test_same_seed_same_delays_and_bad_arguments_are_refused() -> None:
    first = [reconnect_delay(a, rng) for rng in [random.Random(7)] for a in range(8)]
    again = [reconnect_delay(a, rng) for rng in [random.Random(7)] for a in range(8)]
    assert first == again
    with pytest.raises(ValueError, match="attempt"):
        reconnect_delay(-1, random.Random(0))
    with pytest.raises(ValueError, match="minimum"):
        reconnect_delay(0, random.Random(0), minimum=5, maximum=1)


# --- real publishers, real broker -----------------------------------------------------------------


def seed_whose_first_delay(low: float, high: float) -> int:
    """The first seed whose first reconnect delay lies in [low, high] (deterministic: a search)."""
    return next(s for s in range(10_000) if low <= reconnect_delay(0, random.Random(s)) <= high)


@pytest.fixture
def restartable() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(prefer="mosquitto")
    broker.start()
    yield broker
    broker.stop()


def publisher(tmp_path: Path, endpoint: BrokerEndpoint, hub: str, seed: int) -> tuple[MqttPublisher, Outbox]:
    config = HubConfig(
        municipality="0101",
        hub_id=hub,
        patient_id=f"p-{hub}",
        devices=(),
        mqtt=MqttConfig(host=endpoint.host, port=endpoint.port, mqtt5=endpoint.mqtt5, delete_after="broker"),
        outbox_path=tmp_path / f"{hub}.sqlite3",
    )
    outbox = Outbox(config.outbox_path)
    return MqttPublisher(config, outbox, rng=random.Random(seed)), outbox


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


@needs_mosquitto
def test_hubs_that_lose_a_restarted_broker_together_come_back_at_their_own_drawn_times(
    tmp_path: Path, restartable: EmbeddedBroker
) -> None:
    endpoint = restartable.endpoint
    assert endpoint is not None
    early_seed, late_seed = seed_whose_first_delay(1.1, 1.25), seed_whose_first_delay(1.85, 2.0)
    early_delay = reconnect_delay(0, random.Random(early_seed))
    late_delay = reconnect_delay(0, random.Random(late_seed))
    hubs = [
        publisher(tmp_path, endpoint, name, seed)
        for name, seed in [("early", early_seed), ("late", late_seed)]
    ]
    try:
        for pub, _ in hubs:
            pub.start()
        assert wait_until(lambda: all(pub.connected for pub, _ in hubs), 10), "never connected"
        restartable.kill()
        killed = time.monotonic()
        restartable.start()  # same port, listening again in milliseconds: the first retry finds it
        assert time.monotonic() - killed < early_delay, "the broker took longer to start than the test allows"
        back: dict[str, float] = {}
        deadline = killed + 10
        while len(back) < len(hubs) and time.monotonic() < deadline:
            for (pub, _), name in zip(hubs, ["early", "late"], strict=True):
                if name not in back and pub.connected:
                    back[name] = time.monotonic() - killed
            time.sleep(0.005)
        assert set(back) == {"early", "late"}, f"not reconnected: {back}"
        # Each came back after its own drawn delay (paho's lock-step back-off: both after 1 s exactly).
        assert early_delay - 0.05 <= back["early"] <= early_delay + 0.5, (early_delay, back)
        assert late_delay - 0.05 <= back["late"] <= late_delay + 0.5, (late_delay, back)
        assert back["late"] - back["early"] > 0.3, back
        # And they work: readings written now reach the broker (deleted at its PUBACK).
        for _, box in hubs:
            box.put(
                {"resourceType": "Observation", "identifier": [{"value": f"after-{n}"}]} for n in range(5)
            )
        assert wait_until(lambda: all(box.depth() == 0 for _, box in hubs), 10), "nothing sent after restart"
    finally:
        for pub, box in hubs:
            pub.stop(timeout=2)
            box.close()
