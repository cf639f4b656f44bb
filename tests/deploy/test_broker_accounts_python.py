"""The gateway's broker accounts (``gateway.broker_accounts.DynsecAccounts``) against a real Mosquitto
running the configuration ``homewatch admin broker init`` writes (``generated_mosquitto.py``): hubs reach
it over TLS with the generated CA, the gateway and the administrator on its loopback listener.

An enrolled hub connects and publishes; a hub stays in its own lane; removing a hub cuts a connected hub
off at once and keeps it out; a new password locks the old one out; the plugin's refusals, a broker that
never answers and a hub id that could widen a rule are each one line.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from generated_mosquitto import (
    NEEDS_GENERATED,
    NEEDS_MOSQUITTO_ONLY,
    GeneratedBroker,
    TlsClient,
    generated_broker,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shipped_mosquitto import GRANTED, NOT_AUTHORIZED

from gateway.broker import EmbeddedBroker, free_port
from gateway.broker_accounts import BrokerAccountsError, DynsecAccounts, _DynsecSession, broker_accounts
from gateway.broker_rules import GATEWAY_USERNAME, HUB_ID_PATTERN, hub_acls, hub_role
from gateway.broker_session import BrokerAddress
from gateway.settings import GatewaySettings

MUNICIPALITY = "0101"
HUB1, HUB2 = "hub-a1", "hub-b2"
# A kicked client notices within milliseconds on loopback; the bound only keeps a broken test short.
KICK_WAIT_S = 5.0
SETTLE_S = 0.3


def topic(hub: str, leaf: str) -> str:
    return f"homewatch/v1/{MUNICIPALITY}/{hub}/{leaf}"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[GeneratedBroker]:
    with generated_broker(tmp_path) as running:
        yield running


def _accounts(broker: GeneratedBroker, timeout: float = 5.0) -> DynsecAccounts:
    return DynsecAccounts(
        broker.local,
        broker.env["HOMEWATCH_BROKER_ADMIN_USERNAME"],
        broker.env["HOMEWATCH_BROKER_ADMIN_PASSWORD"],
        timeout=timeout,
    )


def _hub(broker: GeneratedBroker, hub: str, password: str) -> TlsClient:
    return TlsClient(
        broker.hub_port, hub, password, ca_file=broker.ca_file, client_id=f"{hub}-{time.time_ns()}"
    )


def _gateway(broker: GeneratedBroker) -> TlsClient:
    return TlsClient(
        broker.hub_port, GATEWAY_USERNAME, broker.env["HOMEWATCH_MQTT_PASSWORD"], ca_file=broker.ca_file
    )


@NEEDS_GENERATED
def test_the_generated_broker_refuses_anonymous_and_wrong_passwords_and_takes_its_two_accounts(
    broker: GeneratedBroker,
) -> None:
    anonymous = TlsClient(broker.hub_port, None, None, ca_file=broker.ca_file, client_id="t-anonymous")
    anonymous_local = TlsClient(broker.local_port, None, None, ca_file=None, client_id="t-anonymous-local")
    wrong = TlsClient(broker.hub_port, GATEWAY_USERNAME, "not-the-password", ca_file=broker.ca_file)
    gateway = _gateway(broker)
    admin = TlsClient(
        broker.local_port,
        broker.env["HOMEWATCH_BROKER_ADMIN_USERNAME"],
        broker.env["HOMEWATCH_BROKER_ADMIN_PASSWORD"],
        ca_file=None,
    )
    try:
        assert anonymous.refused is not None and anonymous_local.refused is not None
        assert wrong.refused is not None
        assert gateway.accepted and admin.accepted  # the PBKDF2 hashes we wrote are the broker's own
        assert gateway.subscribe("$share/homewatch-ingest/homewatch/v1/+/+/observations") == GRANTED
        assert admin.subscribe("homewatch/v1/+/+/observations") == NOT_AUTHORIZED  # accounts only
    finally:
        for client in (anonymous, anonymous_local, wrong, gateway, admin):
            client.close()


@NEEDS_GENERATED
def test_an_ensured_hub_connects_over_tls_and_its_observations_reach_the_gateway(
    broker: GeneratedBroker,
) -> None:
    _accounts(broker).ensure_hub(HUB1, "pw-1")
    gateway = _gateway(broker)
    hub = _hub(broker, HUB1, "pw-1")
    try:
        assert hub.accepted, hub.refused
        assert gateway.subscribe("homewatch/v1/+/+/observations") == GRANTED
        assert hub.subscribe(topic(HUB1, "config")) == GRANTED
        hub.publish(topic(HUB1, "observations"), b'{"resourceType": "Bundle"}')
        assert gateway.wait_messages(1) == [(topic(HUB1, "observations"), b'{"resourceType": "Bundle"}')]
    finally:
        gateway.close()
        hub.close()


@NEEDS_GENERATED
def test_a_hub_cannot_publish_under_another_hubs_topic_nor_read_its_receipts(broker: GeneratedBroker) -> None:
    accounts = _accounts(broker)
    accounts.ensure_hub(HUB1, "pw-1")
    accounts.ensure_hub(HUB2, "pw-2")
    gateway = _gateway(broker)
    hub1, hub2 = _hub(broker, HUB1, "pw-1"), _hub(broker, HUB2, "pw-2")
    try:
        assert gateway.subscribe("homewatch/v1/+/+/observations") == GRANTED
        hub1.publish(topic(HUB2, "observations"))  # pretending to be hub 2
        hub1.publish(topic(HUB1, "receipts"))  # forging its own receipt
        assert hub1.subscribe(topic(HUB2, "receipts")) == NOT_AUTHORIZED
        assert hub1.subscribe("homewatch/v1/+/+/receipts") == NOT_AUTHORIZED
        assert hub1.subscribe(topic(HUB1, "receipts")) == GRANTED
        assert hub2.subscribe(topic(HUB2, "receipts")) == GRANTED
        gateway.publish(topic(HUB2, "receipts"))
        gateway.publish(topic(HUB1, "receipts"))
        assert hub1.wait_messages(1) == [(topic(HUB1, "receipts"), b"{}")]
        assert hub2.wait_messages(1) == [(topic(HUB2, "receipts"), b"{}")]
        time.sleep(SETTLE_S)
        assert gateway.received() == []
        assert hub1.received() == [(topic(HUB1, "receipts"), b"{}")]
    finally:
        for client in (gateway, hub1, hub2):
            client.close()


@NEEDS_GENERATED
def test_remove_hub_disconnects_a_connected_hub_at_once_and_it_cannot_come_back(
    broker: GeneratedBroker,
) -> None:
    accounts = _accounts(broker)
    accounts.ensure_hub(HUB1, "pw-1")
    hub = _hub(broker, HUB1, "pw-1")
    try:
        assert hub.accepted
        started = time.monotonic()
        assert accounts.remove_hub(HUB1) is True
        assert hub.disconnected.wait(KICK_WAIT_S), "the removed hub stayed connected"
        assert time.monotonic() - started < 1.0
    finally:
        hub.close()
    again = _hub(broker, HUB1, "pw-1")
    again.close()
    assert again.refused is not None
    assert accounts.remove_hub(HUB1) is False  # nothing left to remove
    assert accounts.remove_hub("hub-never-made") is False


@NEEDS_GENERATED
def test_ensuring_a_hub_again_with_a_new_password_cuts_the_old_connection_and_refuses_the_old_password(
    broker: GeneratedBroker,
) -> None:
    accounts = _accounts(broker)
    accounts.ensure_hub(HUB1, "old-password")
    connected = _hub(broker, HUB1, "old-password")
    try:
        assert connected.accepted
        accounts.ensure_hub(HUB1, "new-password")
        assert connected.disconnected.wait(KICK_WAIT_S), "the hub on the old password stayed connected"
    finally:
        connected.close()
    old, new = _hub(broker, HUB1, "old-password"), _hub(broker, HUB1, "new-password")
    try:
        assert old.refused is not None
        assert new.accepted and new.subscribe(topic(HUB1, "config")) == GRANTED
    finally:
        old.close()
        new.close()


@NEEDS_GENERATED
def test_ensure_hub_repairs_a_role_with_other_rules_and_a_client_with_other_roles(
    broker: GeneratedBroker,
) -> None:
    accounts = _accounts(broker)
    accounts.ensure_hub(HUB1, "pw-1")
    accounts.ensure_hub(HUB2, "pw-2")
    with accounts._session() as session:
        # Someone widened hub 1's rules by hand and gave it hub 2's role too.
        session.run(
            [
                {
                    "command": "modifyRole",
                    "rolename": hub_role(HUB1),
                    "acls": [{"acltype": "subscribePattern", "topic": "#", "allow": True}],
                },
                {"command": "addClientRole", "username": HUB1, "rolename": hub_role(HUB2)},
            ]
        )
    accounts.ensure_hub(HUB1, "pw-1b")
    with accounts._session() as session:
        role, client = session.run(
            [{"command": "getRole", "rolename": hub_role(HUB1)}, {"command": "getClient", "username": HUB1}]
        )
    assert sorted(role["data"]["role"]["acls"], key=str) == sorted(hub_acls(HUB1), key=str)
    assert [r["rolename"] for r in client["data"]["client"]["roles"]] == [hub_role(HUB1)]
    hub = _hub(broker, HUB1, "pw-1b")
    try:
        assert hub.subscribe("#") == NOT_AUTHORIZED
        assert hub.subscribe(topic(HUB2, "config")) == NOT_AUTHORIZED
    finally:
        hub.close()


@NEEDS_GENERATED
def test_the_plugins_refusal_is_one_line_naming_the_command(broker: GeneratedBroker) -> None:
    with _accounts(broker)._session() as session, pytest.raises(BrokerAccountsError) as refused:
        session.run([{"command": "addClientRole", "username": "nobody", "rolename": "no-role"}])
    assert "addClientRole" in str(refused.value) and "Client not found" in str(refused.value)
    assert "\n" not in str(refused.value)


@NEEDS_GENERATED
def test_a_wrong_admin_password_is_one_line(broker: GeneratedBroker) -> None:
    accounts = DynsecAccounts(broker.local, broker.env["HOMEWATCH_BROKER_ADMIN_USERNAME"], "wrong", timeout=3)
    with pytest.raises(BrokerAccountsError, match="refused the account homewatch-admin") as refused:
        accounts.ensure_hub(HUB1, "pw")
    assert "\n" not in str(refused.value)


@NEEDS_MOSQUITTO_ONLY
def test_a_broker_without_the_plugin_never_answers_and_that_is_one_line_after_the_timeout() -> None:
    with EmbeddedBroker(prefer="mosquitto") as endpoint:  # anonymous, no dynamic-security plugin
        accounts = DynsecAccounts(BrokerAddress(endpoint.host, endpoint.port), "admin", "pw", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(BrokerAccountsError, match="did not answer") as silent:
            accounts.ensure_hub(HUB1, "pw")
        assert 1.0 <= time.monotonic() - started < 3.0
    assert "\n" not in str(silent.value)


def test_an_unreachable_broker_is_one_line() -> None:
    accounts = DynsecAccounts(BrokerAddress("127.0.0.1", free_port()), "admin", "pw", timeout=2.0)
    with pytest.raises(BrokerAccountsError, match="cannot reach the broker") as away:
        accounts.remove_hub(HUB1)
    assert "\n" not in str(away.value)


@pytest.mark.parametrize(
    "hub_id", ["hub/0001", "+", "#", "hub-+", "", "$SYS", "hub 1", "h\u00f8b", GATEWAY_USERNAME]
)
def test_a_hub_id_that_could_widen_a_rule_is_refused_before_the_broker_is_asked(hub_id: str) -> None:
    accounts = DynsecAccounts(BrokerAddress("127.0.0.1", free_port()), "admin", "pw", timeout=2.0)
    for attempt in (lambda: accounts.ensure_hub(hub_id, "pw"), lambda: accounts.remove_hub(hub_id)):
        with pytest.raises(BrokerAccountsError, match="a hub id is"):
            attempt()


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(min_size=0, max_size=80))
def test_any_text_is_either_a_topic_safe_hub_id_or_refused_before_the_broker_is_asked(hub_id: str) -> None:
    accounts = DynsecAccounts(BrokerAddress("127.0.0.1", 1), "admin", "pw", timeout=0.5)
    safe = HUB_ID_PATTERN.fullmatch(hub_id) is not None and hub_id != GATEWAY_USERNAME
    if safe:  # written into its rules, it names exactly its own topics: five levels, no wildcard of its own
        for acl in hub_acls(hub_id):
            levels = acl["topic"].split("/")
            assert len(levels) == 5 and levels[3] == hub_id and levels[2] == "+"
        return
    with pytest.raises(BrokerAccountsError, match="a hub id is"):
        accounts.ensure_hub(hub_id, "pw")


@NEEDS_GENERATED
def test_the_gateway_env_file_is_settings_that_reach_the_broker(
    broker: GeneratedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in broker.env.items():
        monkeypatch.setenv(name, value)
    settings = GatewaySettings(environment="development")
    assert settings.mqtt_port == broker.local_port and settings.hub_mqtt_port == broker.hub_port
    assert settings.hub_ca_file == broker.ca_file and settings.hub_mqtt_host == "127.0.0.1"
    accounts = broker_accounts(settings)
    assert accounts is not None
    accounts.ensure_hub(HUB1, "pw-env")
    hub = _hub(broker, HUB1, "pw-env")
    hub.close()
    assert hub.accepted
    assert broker_accounts(settings.model_copy(update={"broker_admin_username": None})) is None


@NEEDS_GENERATED
def test_a_session_subscribes_before_it_sends_so_no_answer_is_missed(broker: GeneratedBroker) -> None:
    """Fifty commands in a row each get their answer (none lost between subscribing and publishing)."""
    with _DynsecSession(
        broker.local,
        broker.env["HOMEWATCH_BROKER_ADMIN_USERNAME"],
        broker.env["HOMEWATCH_BROKER_ADMIN_PASSWORD"],
        5.0,
    ) as session:
        for _ in range(50):
            (answer,) = session.run([{"command": "getDefaultACLAccess"}])
            assert "error" not in answer
