"""The care team's messages in a hub's retained config (issue 21): which messages a hub is sent (its
residents' only, newest last, a month before the newest, at most 20), that whatever a nurse wrote makes
a payload the hub's own parser takes, and that a message changes the config version so the config job
publishes it when the broker was away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from observation_factory import Home, Nurse, nurse_of
from retained_config import retained_config

from edge_agent.remote_config import parse_remote
from gateway.broker import BrokerEndpoint
from gateway.config_job import ConfigJob
from gateway.hub_config import config_payload, config_publisher, publish_hub_config
from gateway.settings import GatewaySettings
from gateway.store.hub_config import HubConfigRecord, lock_hub_config
from gateway.store.patient_messages import (
    HUB_MAX_MESSAGES,
    HUB_WINDOW,
    MESSAGE_MAX_CHARS,
    HubMessage,
    hub_messages,
    send_message,
)

HOME = Home(patient_id="p-msg", hub_id="hub-msg")
NEIGHBOUR = Home(patient_id="p-next-door", hub_id="hub-next-door", oximeter_id="OXI9", cuff_id="BPC9")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def homes(database_url: str) -> tuple[str, Nurse]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        HOME.enroll(conn)
        NEIGHBOUR.enroll(conn)
        nurse = nurse_of(conn, HOME)
    return database_url, nurse


def _send(database_url: str, nurse: Nurse, patient_id: str, text: str, at: datetime) -> tuple[str, ...]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        sent = send_message(conn, nurse, patient_id, text, at=at, client="test")
    assert sent.message is not None
    return sent.hubs


def _sent_to(database_url: str, hub_id: str, patient_ids: list[str]) -> tuple[HubMessage, ...]:
    with psycopg.connect(database_url) as conn:
        return hub_messages(conn, "0101", patient_ids)


def test_a_hub_gets_its_residents_newest_messages_newest_last_within_a_month_of_the_newest(
    homes: tuple[str, Nurse],
) -> None:
    database_url, nurse = homes
    _send(database_url, nurse, HOME.patient_id, "for long ago", T0 - HUB_WINDOW - timedelta(days=1))
    for i in range(HUB_MAX_MESSAGES + 3):
        _send(database_url, nurse, HOME.patient_id, f"besked {i}", T0 + timedelta(minutes=i))
    assert _send(database_url, nurse, NEIGHBOUR.patient_id, "naboens", T0) == (NEIGHBOUR.hub_id,)
    sent = _sent_to(database_url, HOME.hub_id, [HOME.patient_id])
    assert [m.text for m in sent] == [f"besked {i}" for i in range(3, HUB_MAX_MESSAGES + 3)]
    assert all(m.patient_id == HOME.patient_id for m in sent)
    assert [m.sent_at for m in sent] == sorted(m.sent_at for m in sent)


def test_a_message_bumps_the_hubs_config_version_and_the_config_job_delivers_it(
    homes: tuple[str, Nurse], broker: BrokerEndpoint
) -> None:
    database_url, nurse = homes
    with psycopg.connect(database_url) as conn:
        before = lock_hub_config(conn, "0101", HOME.hub_id)
    assert before is not None
    assert _send(database_url, nurse, HOME.patient_id, "Husk vægten i morgen.", T0) == (HOME.hub_id,)
    with psycopg.connect(database_url) as conn:
        after = lock_hub_config(conn, "0101", HOME.hub_id)
        neighbour = lock_hub_config(conn, "0101", NEIGHBOUR.hub_id)
    assert after is not None and neighbour is not None
    assert after.config_version == before.config_version + 1 > after.config_published
    assert [m.text for m in after.messages] == ["Husk vægten i morgen."] and neighbour.messages == ()
    # The broker was away when the nurse wrote (no publisher): the config job sends it.
    job = ConfigJob(database_url, config_publisher(_settings(broker, database_url)), interval_s=30)
    job.run_once()
    remote = parse_remote(retained_config(broker, f"homewatch/v1/0101/{HOME.hub_id}/config"))
    assert remote.messages is not None
    assert [(m.patient_id, m.text) for m in remote.messages] == [(HOME.patient_id, "Husk vægten i morgen.")]
    assert remote.version == str(after.config_version)


def _settings(broker: BrokerEndpoint, database_url: str) -> GatewaySettings:
    return GatewaySettings(
        database_url=database_url, mqtt_host=broker.host, mqtt_port=broker.port, mqtt_v5=broker.mqtt5
    )


def _record(messages: tuple[HubMessage, ...]) -> HubConfigRecord:
    return HubConfigRecord("0101", HOME.hub_id, HOME.patient_id, (), {}, 3, 2, False, (), (), messages)


_TEXTS = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.just("\n"), min_size=1, max_size=MESSAGE_MAX_CHARS
).filter(lambda text: text.strip() != "")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_TEXTS, st.integers(0, 10**6)), max_size=HUB_MAX_MESSAGES))
def test_whatever_a_nurse_wrote_the_payload_is_one_the_hub_accepts(messages: list[tuple[str, int]]) -> None:
    built = tuple(
        HubMessage(f"{i:08d}-0000-4000-8000-000000000000", HOME.patient_id, T0 + timedelta(seconds=s), text)
        for i, (text, s) in enumerate(messages)
    )
    payload = config_payload(_record(built))
    remote = parse_remote(payload)
    assert remote.messages is not None
    assert [(m.id, m.text, m.sent_at) for m in remote.messages] == [(m.id, m.text, m.sent_at) for m in built]
    body: dict[str, Any] = orjson.loads(payload)
    assert body["messages"] == [] if not built else body["messages"][0]["patient_id"] == HOME.patient_id


def test_publishing_sends_the_messages_with_the_version(
    homes: tuple[str, Nurse], broker: BrokerEndpoint
) -> None:
    database_url, nurse = homes
    _send(database_url, nurse, HOME.patient_id, "Første", T0)
    _send(database_url, nurse, HOME.patient_id, "Anden", T0 + timedelta(hours=1))
    publisher = config_publisher(_settings(broker, database_url))
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert publish_hub_config(conn, publisher, "0101", HOME.hub_id)
    remote = parse_remote(retained_config(broker, f"homewatch/v1/0101/{HOME.hub_id}/config"))
    assert [m.text for m in remote.messages or ()] == ["Første", "Anden"]
