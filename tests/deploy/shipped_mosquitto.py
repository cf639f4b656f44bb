"""A real Mosquitto running exactly the shipped deploy/mosquitto files, and a small MQTT 5 test client.

The TLS listener section of homewatch.conf is swapped for a loopback one and /var/lib/mosquitto/ points
into the test's folder; every other line is the shipped one. The accounts are created as deploy/README.md
says, by the shipped homewatch-broker-accounts.sh: `init` before the broker starts, then `setup` and
`add-hub` against the running broker. That takes a few seconds, so it is done once (``provision``) and
each test starts its own broker on a copy of the resulting accounts file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway.broker import free_port, mosquitto_binary, run_as_root_line

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
ACCOUNTS_SCRIPT = DEPLOY / "homewatch-broker-accounts.sh"
ACCOUNTS_FILE = "dynamic-security.json"
ADMIN = "admin"
GATEWAY = "homewatch-gateway"
HUBS = tuple(f"hub-{n:04d}" for n in range(1, 9))
MUNICIPALITY = "0101"
SHARE = "$share/homewatch-ingest/homewatch/v1/+/+/observations"
GRANTED = 0x01  # SUBACK: granted at QoS 1
NOT_AUTHORIZED = 0x87  # SUBACK: refused by the broker's access rules


def password(user: str) -> str:
    return f"pw-{user}"


def topic(hub: str, leaf: str) -> str:
    return f"homewatch/v1/{MUNICIPALITY}/{hub}/{leaf}"


def shipped_plugin() -> Path:
    """The dynamic-security plugin the shipped configuration loads."""
    found = re.search(r"^plugin (\S+)$", (DEPLOY / "homewatch.conf").read_text(), re.MULTILINE)
    assert found is not None, "homewatch.conf loads no plugin"
    return Path(found.group(1))


def missing_tools() -> list[str]:
    """What this machine lacks to run the shipped configuration (empty when nothing)."""
    missing = [] if mosquitto_binary() else ["mosquitto"]
    missing += [] if shutil.which("mosquitto_ctrl") else ["mosquitto_ctrl"]
    return missing + ([] if shipped_plugin().exists() else [str(shipped_plugin())])


@dataclass(frozen=True, slots=True)
class ShippedBroker:
    port: int
    folder: Path


def _config(folder: Path, port: int) -> str:
    text = (DEPLOY / "homewatch.conf").read_text()
    head, _, rest = text.partition("# --- listener:")
    _, _, tail = rest.partition("# --- end listener ---")
    text = head + f"{run_as_root_line()}\nlistener {port} 127.0.0.1\n" + tail
    return text.replace("/var/lib/mosquitto/", f"{folder}/")


def wait_listening(port: int) -> None:
    """Return once an MQTT broker accepts connections on ``port`` (10 s at most)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        probe = mqtt.Client(CallbackAPIVersion.VERSION2)
        try:
            probe.connect("127.0.0.1", port)
            probe.disconnect()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on port {port}")


@contextmanager
def shipped_broker(folder: Path) -> Iterator[ShippedBroker]:
    """Mosquitto with the shipped configuration, its accounts file in ``folder``."""
    port = free_port()
    (folder / "mosquitto.conf").write_text(_config(folder, port))
    binary = mosquitto_binary()
    assert binary is not None
    log = (folder / "mosquitto.log").open("wb")
    process = subprocess.Popen([binary, "-c", str(folder / "mosquitto.conf")], stdout=log, stderr=log)
    log.close()
    try:
        wait_listening(port)
        yield ShippedBroker(port, folder)
    finally:
        process.terminate()
        process.wait(timeout=10)


def admin_options(broker: ShippedBroker) -> None:
    """mosquitto_ctrl's options file for the admin account, in the $XDG_CONFIG_HOME accounts() sets."""
    options = f"-h 127.0.0.1\n-p {broker.port}\n-u {ADMIN}\n-P {password(ADMIN)}\n"
    (broker.folder / "mosquitto_ctrl").write_text(options)


def accounts(
    folder: Path, *args: str, secret: str, rules: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the shipped homewatch-broker-accounts.sh as the broker's admin, ``secret`` on its stdin
    (``rules``: another rules file than the shipped acl)."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(folder)}
    if rules is not None:
        env["HOMEWATCH_ACL"] = str(rules)
    return subprocess.run(
        [str(ACCOUNTS_SCRIPT), *args],
        input=secret + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def provision(folder: Path) -> Path:
    """The accounts file of a broker set up as deploy/README.md says, with GATEWAY and HUBS."""
    done = accounts(folder, "init", str(folder / ACCOUNTS_FILE), ADMIN, secret=password(ADMIN))
    assert done.returncode == 0, done.stderr
    with shipped_broker(folder) as broker:
        admin_options(broker)
        for args, user in [(("setup",), GATEWAY), *((("add-hub", hub), hub) for hub in HUBS)]:
            done = accounts(folder, *args, secret=password(user))
            assert done.returncode == 0, done.stderr
    return folder / ACCOUNTS_FILE


class Client:
    """An MQTT 5 client of the test: records what it receives and the SUBACK of each subscription."""

    def __init__(
        self,
        port: int,
        user: str | None,
        client_id: str | None = None,
        will: tuple[str, bytes] | None = None,
        password_override: str | None = None,
    ) -> None:
        self.messages: list[str] = []
        self.refused: str | None = None
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._suback = threading.Condition(self._lock)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{user}", protocol=mqtt.MQTTv5
        )
        if user:
            self.client.username_pw_set(user, password_override or password(user))
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._connected.wait(5)

    def _on_connect(self, _c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        self._connected.set()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(message.topic)

    def _on_subscribe(self, _c: object, _u: object, mid: int, reasons: list[ReasonCode], _p: object) -> None:
        with self._suback:
            self._subacks[mid] = reasons
            self._suback.notify_all()

    def subscribe(self, topic_filter: str) -> int:
        """Subscribe at QoS 1; the SUBACK's reason code (GRANTED, or NOT_AUTHORIZED when refused)."""
        _, mid = self.client.subscribe(topic_filter, qos=1)
        assert mid is not None, "not connected"
        with self._suback:
            assert self._suback.wait_for(lambda: mid in self._subacks, timeout=5), "no SUBACK"
            reasons = self._subacks.pop(mid)
        return int(reasons[0].value)

    def publish(self, topic_name: str, payload: bytes = b"{}") -> None:
        self.client.publish(topic_name, payload, qos=1).wait_for_publish(5)

    def received(self) -> list[str]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()  # first, so that the network loop ends at once rather than at its timeout
        self.client.loop_stop()
