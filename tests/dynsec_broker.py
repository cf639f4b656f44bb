"""A real Mosquitto with hub accounts (the dynamic-security plugin), as ``homewatch admin broker init``
writes it (``gateway.broker_setup.write_broker``), for tests of pages and commands that enrol hubs.

Test-only differences from a municipality's broker: free ports, the hubs' TLS listener on the loopback
address, and the run-as-root line (``gateway.broker.run_as_root_line``). ``settings`` are a gateway's
settings that reach it as ``gateway.env`` says (its accounts, the hubs' address and CA), so
``broker_accounts(settings)`` and ``config_publisher(settings)`` talk to this broker.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from gateway.broker import free_port, mosquitto_binary, run_as_root_line
from gateway.broker_setup import BrokerPlan, find_plugin, write_broker
from gateway.settings import GatewaySettings

HOST = "127.0.0.1"
# Seconds a broker has to listen on a loaded 2-core machine.
START_S = 10.0


def available() -> str | None:
    """Why this machine cannot run one (None: it can)."""
    if mosquitto_binary() is None:
        return "no mosquitto binary"
    if not find_plugin().exists():
        return f"no dynamic-security plugin at {find_plugin()}"
    return None


@dataclass(frozen=True, slots=True)
class DynsecBroker:
    """A running broker: its folder, the hubs' TLS port, the gateway's loopback port, and ``gateway.env``."""

    folder: Path
    hub_port: int
    local_port: int
    env: dict[str, str]

    @property
    def ca_file(self) -> Path:
        return Path(self.env["HOMEWATCH_HUB_CA_FILE"])

    def settings(self, **more: Any) -> GatewaySettings:
        """A gateway's settings that reach this broker (``more``: the rest, e.g. its database)."""
        env = self.env
        return GatewaySettings(
            mqtt_host=env["HOMEWATCH_MQTT_HOST"],
            mqtt_port=int(env["HOMEWATCH_MQTT_PORT"]),
            mqtt_username=env["HOMEWATCH_MQTT_USERNAME"],
            mqtt_password=env["HOMEWATCH_MQTT_PASSWORD"],
            broker_admin_username=env["HOMEWATCH_BROKER_ADMIN_USERNAME"],
            broker_admin_password=SecretStr(env["HOMEWATCH_BROKER_ADMIN_PASSWORD"]),
            hub_mqtt_host=env["HOMEWATCH_HUB_MQTT_HOST"],
            hub_mqtt_port=int(env["HOMEWATCH_HUB_MQTT_PORT"]),
            hub_ca_file=self.ca_file,
            **more,
        )


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on port {port} within {START_S} s")


@contextmanager
def dynsec_broker(folder: Path) -> Iterator[DynsecBroker]:
    """Write a broker's files into ``folder`` and run Mosquitto on them until the block ends."""
    hub_port, local_port = free_port(), free_port()
    plan = BrokerPlan(out_dir=folder, hosts=(HOST,), port=hub_port, local_port=local_port, bind=HOST)
    files = write_broker(plan)
    files.conf.write_text(f"{run_as_root_line()}\n{files.conf.read_text()}")
    env = dict(
        line.split("=", 1) for line in files.env.read_text().splitlines() if line and not line.startswith("#")
    )
    binary = mosquitto_binary()
    assert binary is not None
    with (folder / "mosquitto.log").open("wb") as log:
        process = subprocess.Popen([binary, "-c", str(files.conf)], stdout=log, stderr=log)
    try:
        _wait_listening(local_port)
        _wait_listening(hub_port)
        yield DynsecBroker(folder, hub_port, local_port, env)
    finally:
        process.terminate()
        process.wait(timeout=10)
