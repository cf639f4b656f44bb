"""``configure_hub`` and ``homewatch admin hub configure``: a hub's settings (status interval, time zone,
bundle size, connections) set by an administrator reach the hub in its retained config, which the hub
accepts; bad values are one line and change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from retained_config import retained_config
from typer.testing import CliRunner

from edge_agent.remote_config import parse_remote
from gateway.administration.errors import AdministrationError
from gateway.administration.homes import (
    HubSettings,
    add_municipality,
    add_patient,
    configure_hub,
    enroll_hub,
    revoke_hub,
)
from gateway.broker import BrokerEndpoint
from gateway.hub_config import config_publisher
from gateway.settings import GatewaySettings
from homewatch.cli import app

TOPIC = "homewatch/v1/0101/hub-1/config"


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        add_municipality(connection, "0101", "København", by="ops")
        add_municipality(connection, "0147", "Frederiksberg", by="ops")
        add_patient(
            connection, "0101", "p-1", name="Ane Hansen", care_team=None, phone=None, conditions=[],
            birth_date=date(1940, 5, 1), by="ops",
        )  # fmt: skip
        enroll_hub(
            connection,
            GatewaySettings(environment="development"),
            "0101",
            "hub-1",
            "p-1",
            by="ops",
            accounts=None,
        )
        yield connection


def _settings(broker: BrokerEndpoint) -> GatewaySettings:
    return GatewaySettings(
        environment="development",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        mqtt_v5=broker.kind == "mosquitto",
    )


def _version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT config_version FROM hubs WHERE id = 'hub-1'").fetchone()
    assert row is not None
    return int(row[0])


def test_settings_reach_the_hub_in_its_retained_config_and_again_changes_nothing(
    conn: psycopg.Connection[Any], broker: BrokerEndpoint
) -> None:
    gateway = _settings(broker)
    publisher = config_publisher(gateway)
    wanted = HubSettings(status_interval_s=300, timezone="Europe/Copenhagen", bundle_size=20)
    now, changed = configure_hub(conn, gateway, "hub-1", wanted, by="ops", publisher=publisher)
    assert changed and now == {"status_interval_s": 300, "timezone": "Europe/Copenhagen", "bundle_size": 20}
    remote = parse_remote(retained_config(broker, TOPIC))  # what the hub makes of it: accepted whole
    assert (remote.status_interval_s, remote.timezone, remote.bundle_size) == (300, "Europe/Copenhagen", 20)
    assert remote.version == str(_version(conn))
    version = _version(conn)
    assert configure_hub(conn, gateway, "hub-1", wanted, by="ops", publisher=publisher)[1] is False
    assert _version(conn) == version
    now, changed = configure_hub(
        conn, gateway, "hub-1", HubSettings(reset=("bundle_size",)), by="ops", publisher=publisher
    )
    assert (
        changed
        and "bundle_size" not in now
        and parse_remote(retained_config(broker, TOPIC)).bundle_size is None
    )
    actions = conn.execute("SELECT action FROM audit_log WHERE action = 'hub-configure'").fetchall()
    assert len(actions) == 2


@pytest.mark.parametrize(
    "wanted",
    [
        HubSettings(status_interval_s=5),
        HubSettings(status_interval_s=86_400),
        HubSettings(timezone="Europe/Nowhere"),
        HubSettings(bundle_size=0),
        HubSettings(bundle_size=501),
        HubSettings(max_connections=33),
        HubSettings(reset=("mqtt",)),
    ],
)
def test_a_value_the_hub_would_refuse_is_one_line_and_changes_nothing(
    conn: psycopg.Connection[Any], wanted: HubSettings
) -> None:
    with pytest.raises(AdministrationError) as refused:
        configure_hub(
            conn, GatewaySettings(environment="development"), "hub-1", wanted, by="ops", publisher=None
        )
    assert "\n" not in str(refused.value)
    assert _version(conn) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    interval=st.floats(allow_nan=True, allow_infinity=True) | st.none(),
    bundle=st.integers(-10, 1_000) | st.none(),
    connections=st.integers(-5, 100) | st.none(),
)
def test_whatever_is_accepted_is_a_config_the_hub_takes(
    conn: psycopg.Connection[Any], interval: float | None, bundle: int | None, connections: int | None
) -> None:
    wanted = HubSettings(status_interval_s=interval, bundle_size=bundle, max_connections=connections)
    try:
        now, _changed = configure_hub(
            conn, GatewaySettings(environment="development"), "hub-1", wanted, by="ops", publisher=None
        )
    except AdministrationError:
        return
    parse_remote(__import__("orjson").dumps(now))  # raises when the hub would refuse it


def test_a_revoked_hub_and_another_municipalitys_hub_are_refused(conn: psycopg.Connection[Any]) -> None:
    gateway = GatewaySettings(environment="development")
    with pytest.raises(AdministrationError, match="no hub"):
        configure_hub(
            conn, gateway, "hub-1", HubSettings(bundle_size=10), by="ops", publisher=None, within="0147"
        )
    revoke_hub(conn, gateway, "hub-1", by="ops", accounts=None, publisher=None)
    with pytest.raises(AdministrationError, match="revoked"):
        configure_hub(conn, gateway, "hub-1", HubSettings(bundle_size=10), by="ops", publisher=None)


def test_the_command_sets_them_and_bad_input_exits_2(
    conn: psycopg.Connection[Any], database_url: str
) -> None:
    runner = CliRunner()
    env = {"HOMEWATCH_ENVIRONMENT": "development", "HOMEWATCH_MQTT_PORT": "1"}  # no broker: published later
    base = ["admin", "hub", "configure", "--hub", "hub-1", "--database-url", database_url]
    done = runner.invoke(app, [*base, "--status-interval", "600"], env=env)
    assert done.exit_code == 0, done.output
    assert "settings changed (status_interval_s=600.0)" in done.stdout
    bad = runner.invoke(app, [*base, "--timezone", "Mars/Olympus"], env=env)
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
