"""Enrolment and revocation (``gateway.administration.homes``) against a real Mosquitto running the
configuration ``homewatch admin broker init`` writes (``generated_mosquitto.py``), on a real PostgreSQL.

The kit an enrolment writes connects over TLS with the generated CA and the hub's new account; the
devices assigned afterwards reach the hub as its retained config; enrolling again locks the old password
out; revoking cuts a connected hub off and keeps it out. A broker that is away leaves enrolment undone
and revocation done at the gateway, to be finished by revoking again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import NEEDS_MOSQUITTO
from generated_mosquitto import GeneratedBroker, TlsClient, generated_broker
from shipped_mosquitto import GRANTED

from edge_agent.config import HubConfig
from gateway.administration.errors import AdministrationError
from gateway.administration.homes import (
    add_municipality,
    add_patient,
    assign_device_outcome,
    enroll_hub,
    revoke_hub,
    write_kit,
)
from gateway.broker import free_port
from gateway.broker_accounts import broker_accounts
from gateway.hub_config import config_publisher
from gateway.settings import GatewaySettings
from gateway.store.repository import hub_assignment

pytestmark = NEEDS_MOSQUITTO

CUFF = "C4:7C:8D:6A:12:0F"
CONFIG = "homewatch/v1/0101/hub-1/config"
KICK_WAIT_S = 5.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[GeneratedBroker]:
    with generated_broker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def settings(broker: GeneratedBroker, monkeypatch: pytest.MonkeyPatch) -> GatewaySettings:
    """The gateway's settings as its environment file from `broker init` gives them."""
    for name, value in broker.env.items():
        monkeypatch.setenv(name, value)
    return GatewaySettings(environment="development")


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        add_municipality(connection, "0101", "København", by="ops")
        add_patient(
            connection, "0101", "p-1", name="Ane Hansen", care_team=None, phone=None, conditions=["hf"],
            birth_date=date(1940, 1, 2), by="ops",
        )  # fmt: skip
        yield connection


def _hub_client(config: HubConfig, password: str | None) -> TlsClient:
    assert config.mqtt.ca_file is not None
    return TlsClient(config.mqtt.port, config.mqtt.username, password, ca_file=config.mqtt.ca_file)


def test_an_enrolled_hub_connects_with_its_kit_gets_its_devices_and_is_cut_off_when_revoked(
    conn: psycopg.Connection[Any], settings: GatewaySettings, tmp_path: Path
) -> None:
    accounts, publisher = broker_accounts(settings), config_publisher(settings)
    assert accounts is not None
    kit = enroll_hub(
        conn, settings, "0101", "hub-1", "p-1", by="ops", accounts=accounts, outbox_path="outbox.db"
    )
    write_kit(kit, tmp_path / "hub-1")
    config = HubConfig.from_toml(tmp_path / "hub-1" / "hub.toml")
    assert config.mqtt.tls and config.mqtt.username == "hub-1" and config.mqtt.secret() == kit.password
    hub = _hub_client(config, config.mqtt.secret())
    try:
        assert hub.accepted, hub.refused
        assert hub.subscribe(CONFIG) == GRANTED
        done = assign_device_outcome(
            conn, settings, "hub-1", "p-1", "blood-pressure", CUFF, by="ops", publisher=publisher
        )
        assert done.published
        topic, payload = hub.wait_messages(1)[0]
        assert topic == CONFIG
        assert json.loads(payload) == {
            "version": "1",
            "patient_id": "p-1",
            "devices": [{"id": done.device_id, "address": CUFF, "kind": "blood-pressure-cuff"}],
            "plan": [],  # no measurement plan yet: sent empty, so a removed plan reaches the hub too
            # the household: Ane alone, offered the heart-failure check; no messages yet
            "residents": [{"patient_id": "p-1", "name": "Ane", "questionnaire": "heart-failure-daily"}],
            "messages": [],
        }
        revoked = revoke_hub(conn, settings, "hub-1", by="ops", accounts=accounts, publisher=publisher)
        assert revoked.account_removed and revoked.config_cleared
        assert hub.disconnected.wait(KICK_WAIT_S), "a revoked hub stays connected"
    finally:
        hub.close()
    again = _hub_client(config, config.mqtt.secret())
    try:
        assert not again.accepted
    finally:
        again.close()
    assert hub_assignment(conn, "0101", "hub-1") is None


def test_enrolling_again_locks_the_old_password_out(
    conn: psycopg.Connection[Any], settings: GatewaySettings, tmp_path: Path
) -> None:
    accounts = broker_accounts(settings)
    first = enroll_hub(conn, settings, "0101", "hub-1", "p-1", by="ops", accounts=accounts)
    second = enroll_hub(conn, settings, "0101", "hub-1", "p-1", by="ops", accounts=accounts)
    assert first.password != second.password
    write_kit(second, tmp_path / "hub-1")
    config = HubConfig.from_toml(tmp_path / "hub-1" / "hub.toml")
    old, new = _hub_client(config, first.password), _hub_client(config, second.password)
    try:
        assert not old.accepted and new.accepted
    finally:
        old.close()
        new.close()


def test_a_broker_away_leaves_enrolment_undone_and_revocation_done_at_the_gateway(
    conn: psycopg.Connection[Any], settings: GatewaySettings, tmp_path: Path
) -> None:
    away = settings.model_copy(update={"mqtt_port": free_port()})
    with pytest.raises(AdministrationError, match="nothing changed"):
        enroll_hub(conn, away, "0101", "hub-1", "p-1", by="ops", accounts=broker_accounts(away))
    assert conn.execute("SELECT count(*) FROM hubs").fetchone() == (0,)

    kit = enroll_hub(conn, settings, "0101", "hub-1", "p-1", by="ops", accounts=broker_accounts(settings))
    write_kit(kit, tmp_path / "hub-1")
    with pytest.raises(AdministrationError, match="which refuses it already") as refused:
        revoke_hub(
            conn, away, "hub-1", by="ops", accounts=broker_accounts(away), publisher=config_publisher(away)
        )
    assert "again" in str(refused.value)
    assert hub_assignment(conn, "0101", "hub-1") is None  # the gateway refuses it already
    config = HubConfig.from_toml(tmp_path / "hub-1" / "hub.toml")
    still = _hub_client(config, kit.password)
    try:
        assert still.accepted  # the broker was not told yet
    finally:
        still.close()
    done = revoke_hub(
        conn,
        settings,
        "hub-1",
        by="ops",
        accounts=broker_accounts(settings),
        publisher=config_publisher(settings),
    )
    assert done.already and done.account_removed
    gone = _hub_client(config, kit.password)
    try:
        assert not gone.accepted
    finally:
        gone.close()
