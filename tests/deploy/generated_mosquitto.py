"""A real Mosquitto running a configuration written by ``homewatch admin broker init``
(``gateway.broker_setup``), and a small MQTT 5 test client that speaks TLS.

The configuration is used as written, with three test-only differences: the ports are free ones, the
hubs' listener binds the loopback address (``--bind``), and the run-as-root line of
``gateway.broker.run_as_root_line`` comes first (a broker started by root would otherwise drop to the
mosquitto user, who cannot read the test's folder). The plugin is the one ``broker init`` finds on this
machine (``gateway.broker_setup.find_plugin``). ``NEEDS_GENERATED`` skips, saying why, where Mosquitto
or the plugin is missing.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from shipped_mosquitto import wait_listening

from gateway.broker import free_port, mosquitto_binary, run_as_root_line
from gateway.broker_session import BrokerAddress
from gateway.broker_setup import BrokerFiles, BrokerPlan, find_plugin, write_broker

HOST = "127.0.0.1"


def missing_tools() -> list[str]:
    """What this machine lacks to run a generated configuration (empty when nothing)."""
    missing = [] if mosquitto_binary() else ["mosquitto"]
    return missing + ([] if find_plugin().exists() else [str(find_plugin())])


NEEDS_GENERATED = pytest.mark.skipif(
    bool(missing_tools()),
    reason=f"runs the configuration `broker init` writes; this machine lacks {', '.join(missing_tools())}",
)
NEEDS_MOSQUITTO_ONLY = pytest.mark.skipif(mosquitto_binary() is None, reason="needs the mosquitto binary")


def read_env(path: Path) -> dict[str, str]:
    """The variables of an env file (``NAME=value`` lines; ``#`` lines are comments)."""
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return {name: value for name, value in pairs}


@dataclass(frozen=True, slots=True)
class GeneratedBroker:
    folder: Path
    files: BrokerFiles
    hub_port: int  # TLS
    local_port: int  # plain, loopback: the gateway and the administrator
    env: dict[str, str]

    @property
    def ca_file(self) -> Path:
        assert self.files.ca_certificate is not None
        return self.files.ca_certificate

    @property
    def local(self) -> BrokerAddress:
        return BrokerAddress(HOST, self.local_port)

    @property
    def hubs(self) -> BrokerAddress:
        return BrokerAddress(HOST, self.hub_port, tls=True, ca_file=self.ca_file)

    def password(self, variable: str) -> str:
        return self.env[variable]


def generate(folder: Path) -> tuple[BrokerFiles, int, int]:
    hub_port, local_port = free_port(), free_port()
    plan = BrokerPlan(
        out_dir=folder,
        hosts=(HOST, "broker.homewatch.example"),
        port=hub_port,
        local_port=local_port,
        bind=HOST,
        plugin=find_plugin(),
    )
    files = write_broker(plan)
    conf = files.conf.read_text()
    files.conf.write_text(f"{run_as_root_line()}\n{conf}")
    return files, hub_port, local_port


@contextmanager
def generated_broker(folder: Path) -> Iterator[GeneratedBroker]:
    """Write a configuration into ``folder`` and run Mosquitto on it until the block ends."""
    files, hub_port, local_port = generate(folder)
    binary = mosquitto_binary()
    assert binary is not None
    log = (folder / "mosquitto.log").open("wb")
    process = subprocess.Popen([binary, "-c", str(files.conf)], stdout=log, stderr=log)
    log.close()
    try:
        wait_listening(local_port)
        yield GeneratedBroker(folder, files, hub_port, local_port, read_env(files.env))
    finally:
        process.terminate()
        process.wait(timeout=10)


class TlsClient:
    """An MQTT 5 client of the test over TLS (or plain without ``ca_file``): records what it receives,
    the SUBACK of each subscription, and when the broker cut it off."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        *,
        ca_file: Path | None,
        client_id: str | None = None,
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.refused: str | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self._lock = threading.Condition()
        self._subacks: dict[int, int] = {}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{user}", protocol=mqtt.MQTTv5
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(HOST, port)
        self.client.loop_start()
        self.connected.wait(5)

    def _on_connect(self, _c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        self.connected.set()

    def _on_disconnect(self, _c: object, _u: object, _f: object, _r: ReasonCode, _p: object) -> None:
        self.disconnected.set()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))
            self._lock.notify_all()

    def _on_subscribe(self, _c: object, _u: object, mid: int, reasons: list[ReasonCode], _p: object) -> None:
        with self._lock:
            self._subacks[mid] = int(reasons[0].value)
            self._lock.notify_all()

    @property
    def accepted(self) -> bool:
        return self.connected.is_set() and self.refused is None

    def subscribe(self, topic_filter: str) -> int:
        """Subscribe at QoS 1; the SUBACK's reason code."""
        _, mid = self.client.subscribe(topic_filter, qos=1)
        assert mid is not None, "not connected"
        with self._lock:
            assert self._lock.wait_for(lambda: mid in self._subacks, timeout=5), "no SUBACK"
            return self._subacks.pop(mid)

    def publish(self, topic_name: str, payload: bytes = b"{}") -> None:
        self.client.publish(topic_name, payload, qos=1).wait_for_publish(5)

    def wait_messages(self, count: int, timeout: float = 5.0) -> list[tuple[str, bytes]]:
        with self._lock:
            self._lock.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)

    def received(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
