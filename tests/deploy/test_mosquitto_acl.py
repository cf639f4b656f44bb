"""The shipped Mosquitto configuration and ACL, run by a real Mosquitto: each hub stays in its own lane."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import free_port, mosquitto_binary, run_as_root_line

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
PASSWORDS = {"hub-0001": "pw-one", "hub-0002": "pw-two", "homewatch-gateway": "pw-gateway"}

pytestmark = pytest.mark.skipif(
    mosquitto_binary() is None or shutil.which("mosquitto_passwd") is None,
    reason="tests the Mosquitto configuration; needs the mosquitto and mosquitto_passwd binaries",
)


def _config(tmp: Path, port: int) -> str:
    text = (DEPLOY / "homewatch.conf").read_text()
    head, _, rest = text.partition("# --- listener:")
    _, _, tail = rest.partition("# --- end listener ---")
    text = head + f"{run_as_root_line()}\nlistener {port} 127.0.0.1\n" + tail
    return (
        text.replace("/etc/mosquitto/homewatch/passwd", str(tmp / "passwd"))
        .replace("/etc/mosquitto/homewatch/acl", str(DEPLOY / "acl"))
        .replace("/var/lib/mosquitto/", f"{tmp}/")
    )


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    for user, password in PASSWORDS.items():
        flags = ["-c"] if not (tmp_path / "passwd").exists() else []
        subprocess.run(
            ["mosquitto_passwd", *flags, "-b", str(tmp_path / "passwd"), user, password], check=True
        )
    (tmp_path / "passwd").chmod(0o600)
    number = free_port()
    (tmp_path / "mosquitto.conf").write_text(_config(tmp_path, number))
    binary = mosquitto_binary()
    assert binary is not None
    process = subprocess.Popen([binary, "-c", str(tmp_path / "mosquitto.conf")], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = mqtt.Client(CallbackAPIVersion.VERSION2)
            try:
                probe.connect("127.0.0.1", number)
                probe.disconnect()
                break
            except OSError:
                time.sleep(0.05)
        yield number
    finally:
        process.terminate()
        process.wait(timeout=10)


class _Client:
    def __init__(self, port: int, user: str | None, password: str | None) -> None:
        self.messages: list[str] = []
        self.refused: str | None = None
        self._connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}", protocol=mqtt.MQTTv5)
        if user:
            self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.messages.append(m.topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._connected.wait(5)

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            self.refused = str(reason)
        self._connected.set()

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        time.sleep(0.2)

    def publish(self, topic: str) -> None:
        self.client.publish(topic, b"{}", qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_nobody_gets_in_without_an_account(port: int) -> None:
    anonymous = _Client(port, None, None)
    wrong = _Client(port, "hub-0001", "not-the-password")
    try:
        assert anonymous.refused is not None
        assert wrong.refused is not None
    finally:
        anonymous.close()
        wrong.close()


def test_a_hub_publishes_only_under_its_own_prefix(port: int) -> None:
    gateway = _Client(port, "homewatch-gateway", PASSWORDS["homewatch-gateway"])
    hub = _Client(port, "hub-0001", PASSWORDS["hub-0001"])
    try:
        assert gateway.refused is None and hub.refused is None
        gateway.subscribe("homewatch/v1/+/+/observations")
        hub.publish("homewatch/v1/0101/hub-0001/observations")
        hub.publish("homewatch/v1/0101/hub-0002/observations")  # pretending to be another hub
        time.sleep(0.3)
        assert gateway.messages == ["homewatch/v1/0101/hub-0001/observations"]
    finally:
        gateway.close()
        hub.close()


@pytest.mark.parametrize("leaf", ["errors", "receipts"])
def test_a_hub_reads_only_its_own_errors_and_receipts(port: int, leaf: str) -> None:
    gateway = _Client(port, "homewatch-gateway", PASSWORDS["homewatch-gateway"])
    hub1 = _Client(port, "hub-0001", PASSWORDS["hub-0001"])
    hub2 = _Client(port, "hub-0002", PASSWORDS["hub-0002"])
    try:
        hub1.subscribe(f"homewatch/v1/+/+/{leaf}")  # asks for everyone's; gets only what the ACL allows
        hub2.subscribe(f"homewatch/v1/0101/hub-0002/{leaf}")
        gateway.publish(f"homewatch/v1/0101/hub-0001/{leaf}")
        gateway.publish(f"homewatch/v1/0101/hub-0002/{leaf}")
        time.sleep(0.3)
        assert hub1.messages == [f"homewatch/v1/0101/hub-0001/{leaf}"]
        assert hub2.messages == [f"homewatch/v1/0101/hub-0002/{leaf}"]
    finally:
        for client in (gateway, hub1, hub2):
            client.close()


def test_a_hub_cannot_forge_a_receipt(port: int) -> None:
    """A receipt makes a hub delete readings: only the gateway may send one, even to the hub itself."""
    hub1 = _Client(port, "hub-0001", PASSWORDS["hub-0001"])
    hub2 = _Client(port, "hub-0002", PASSWORDS["hub-0002"])
    try:
        hub1.subscribe("homewatch/v1/0101/hub-0001/receipts")
        hub2.publish("homewatch/v1/0101/hub-0001/receipts")
        hub1.publish("homewatch/v1/0101/hub-0001/receipts")
        time.sleep(0.3)
        assert hub1.messages == []
    finally:
        hub1.close()
        hub2.close()
