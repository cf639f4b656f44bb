"""gateway/broker_check.py against real brokers: Mosquitto with its default queue (a warning naming the
settings), the shipped configuration and the embedded broker (no warning), amqtt, and probes that cannot
run (one INFO line saying why, never an exception, never past the deadline)."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from conftest import NEEDS_MOSQUITTO
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from shipped_mosquitto import GATEWAY, HUBS, ShippedBroker, password, wait_listening

from gateway.broker import EmbeddedBroker, free_port, mosquitto_binary, run_as_root_line
from gateway.broker_check import (
    PROBE_DEADLINE_S,
    PROBE_MESSAGES,
    BrokerCheck,
    ProbeTarget,
    check_external_broker,
    probe_broker,
    report,
)
from gateway.service import Gateway, GatewayOptions
from gateway.settings import GatewaySettings

pytestmark = NEEDS_MOSQUITTO

SETTINGS = ("max_queued_messages", "max_queued_bytes", "persistence", "autosave_interval")
# Closing the clients after the deadline may take up to a second more (paho's network loop).
CLOSE_S = 1.5


@pytest.fixture
def default_mosquitto(tmp_path: Path) -> Iterator[int]:
    """Mosquitto with nothing configured but a loopback listener open to anyone: its defaults."""
    port = free_port()
    (tmp_path / "default.conf").write_text(
        f"{run_as_root_line()}\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
    )
    binary = mosquitto_binary()
    assert binary is not None
    process = subprocess.Popen([binary, "-c", str(tmp_path / "default.conf")], stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _settings(
    port: int, user: str | None = None, secret: str | None = None, mqtt5: bool = True
) -> GatewaySettings:
    return GatewaySettings(
        mqtt_host="127.0.0.1", mqtt_port=port, mqtt_username=user, mqtt_password=secret, mqtt_v5=mqtt5
    )


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "gateway.broker_check"]


@pytest.mark.parametrize("mqtt5", [True, False], ids=["mqtt5", "mqtt311"])
def test_a_broker_with_mosquittos_default_queue_gets_one_warning_naming_the_settings(
    default_mosquitto: int, caplog: pytest.LogCaptureFixture, mqtt5: bool
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.broker_check")
    check = check_external_broker(_settings(default_mosquitto, mqtt5=mqtt5))
    assert (check.sent, check.kept, check.looks_default) == (PROBE_MESSAGES, 1_000, True)
    assert check.version is not None and check.version.startswith("mosquitto version")
    lines = _lines(caplog)
    assert [level for level, _ in lines] == [logging.WARNING]
    assert all(name in lines[0][1] for name in SETTINGS), lines[0][1]
    assert check.seconds < PROBE_DEADLINE_S


def test_the_shipped_configuration_passes_without_a_warning(
    shipped: ShippedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """The gateway's account may use the probe topic and read the version (deploy/mosquitto/acl)."""
    caplog.set_level(logging.INFO, logger="gateway.broker_check")
    check = check_external_broker(_settings(shipped.port, GATEWAY, password(GATEWAY)))
    assert (check.unchecked, check.sent, check.kept) == (None, PROBE_MESSAGES, PROBE_MESSAGES)
    assert check.version is not None and check.version.startswith("mosquitto version")
    lines = _lines(caplog)
    assert [level for level, _ in lines] == [logging.INFO]
    assert f"kept all {PROBE_MESSAGES}" in lines[0][1]


def test_the_embedded_mosquitto_keeps_every_probe_message() -> None:
    with EmbeddedBroker("mosquitto") as endpoint:
        check = probe_broker(ProbeTarget(endpoint.host, endpoint.port, False, None, None, True))
    assert (check.unchecked, check.kept, check.looks_default) == (None, PROBE_MESSAGES, False)


def test_amqtt_keeps_nothing_for_an_offline_session_and_the_probe_says_so() -> None:
    """amqtt 0.12 with anonymous access marks every session anonymous and queues nothing for it."""
    with EmbeddedBroker("amqtt") as endpoint:
        check = probe_broker(ProbeTarget(endpoint.host, endpoint.port, False, GATEWAY, "any", False))
    assert (check.unchecked, check.sent, check.kept, check.version) == (None, PROBE_MESSAGES, 0, None)
    assert check.looks_default


@pytest.mark.parametrize("mqtt5", [True, False], ids=["mqtt5", "mqtt311"])
def test_the_probes_session_is_gone_afterwards(default_mosquitto: int, mqtt5: bool) -> None:
    check = probe_broker(ProbeTarget("127.0.0.1", default_mosquitto, False, None, None, mqtt5))
    assert check.kept is not None
    assert _session_present(default_mosquitto, check.probe_client_id, mqtt5) is False


def _session_present(port: int, client_id: str, mqtt5: bool) -> bool:
    """Whether the broker still holds a session for ``client_id`` (connecting without a clean start)."""
    present: list[bool] = []
    done = threading.Event()

    def on_connect(_c: object, _u: object, flags: mqtt.ConnectFlags, _r: object, _p: object) -> None:
        present.append(bool(flags.session_present))
        done.set()

    protocol = MQTTProtocolVersion.MQTTv5 if mqtt5 else MQTTProtocolVersion.MQTTv311
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if mqtt5 else False,
    )
    client.on_connect = on_connect
    if mqtt5:
        client.connect("127.0.0.1", port, clean_start=False)
    else:
        client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(5)
        return present[0]
    finally:
        client.disconnect()
        client.loop_stop()


def _cannot_run(check: BrokerCheck, caplog: pytest.LogCaptureFixture, deadline_s: float, why: str) -> None:
    lines = _lines(caplog)
    assert (check.kept, check.looks_default) == (None, False)
    assert check.unchecked is not None and why in check.unchecked, check.unchecked
    assert [level for level, _ in lines] == [logging.INFO]
    assert "could not check" in lines[0][1]
    assert check.seconds < deadline_s + CLOSE_S


def test_an_unreachable_broker_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.broker_check")
    check = check_external_broker(_settings(free_port()))
    _cannot_run(check, caplog, PROBE_DEADLINE_S, "cannot connect")


def test_wrong_credentials_are_logged_not_raised(
    shipped: ShippedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.broker_check")
    check = check_external_broker(_settings(shipped.port, GATEWAY, "not-the-password"))
    _cannot_run(check, caplog, PROBE_DEADLINE_S, "refused the connection")


def test_an_account_without_the_probe_topic_is_logged_not_raised(
    shipped: ShippedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A hub's account (or a broker whose rules lack the probe topic): the subscription is refused."""
    caplog.set_level(logging.INFO, logger="gateway.broker_check")
    check = check_external_broker(_settings(shipped.port, HUBS[0], password(HUBS[0])))
    _cannot_run(check, caplog, PROBE_DEADLINE_S, "refused the probe's subscription")


def test_a_broker_that_never_answers_costs_the_deadline_and_no_more(caplog: pytest.LogCaptureFixture) -> None:
    """A listener that accepts TCP connections (the kernel's backlog) but never speaks MQTT."""
    caplog.set_level(logging.INFO, logger="gateway.broker_check")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        check = probe_broker(ProbeTarget("127.0.0.1", port, False, None, None, True), deadline_s=1.0)
    report(check)
    _cannot_run(check, caplog, 1.0, "did not answer CONNECT")


def test_gateway_serve_warns_once_at_start_up_about_a_default_broker_and_starts_anyway(
    database_url: str, default_mosquitto: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gateway = Gateway(GatewayOptions(database_url, f"mqtt://127.0.0.1:{default_mosquitto}", port=free_port()))
    try:
        gateway.start()
        assert gateway.workers is not None and gateway.workers.wait_ready(1)
    finally:
        gateway.stop()
    assert [level for level, _ in _lines(caplog)] == [logging.WARNING]
