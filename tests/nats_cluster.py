"""A real three-node NATS JetStream cluster on loopback for the broker-tier tests (issue 22).

Three ``nats-server`` processes (Debian's package; ``make nats`` installs it) with free ports of their
own: each one's client port, cluster route port and MQTT 3.1.1 listener (what hubs speak), JetStream
stored in a folder per node. :meth:`NatsCluster.kill` SIGKILLs a node (no clean shutdown: what a crash or
a pulled cable does) and :meth:`NatsCluster.start` brings it back with its own store, so a test can kill
nodes mid-stream and reconcile. Nothing here is product code: the gateway's side of a cluster is its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.broker import free_port

CLUSTER = "homewatch"
NODES = 3
NO_NATS_SERVER = "no nats-server: install it (apt-get install -y nats-server, which `make test` does as root)"


def find_nats_server() -> str | None:
    return shutil.which("nats-server")


@dataclass
class Node:
    name: str
    client_port: int
    route_port: int
    mqtt_port: int
    store: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"


@dataclass
class NatsCluster:
    """Three nodes on free loopback ports; a context manager that starts them and always stops them."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="homewatch-nats-")))
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i in range(1, NODES + 1):
            self.nodes.append(Node(f"n{i}", free_port(), free_port(), free_port(), self.folder / f"n{i}"))

    def _config(self, node: Node) -> Path:
        routes = ", ".join(f"nats://127.0.0.1:{n.route_port}" for n in self.nodes)
        text = (
            f"server_name: {node.name}\n"
            f"listen: 127.0.0.1:{node.client_port}\n"
            f'jetstream {{ store_dir: "{node.store}" }}\n'
            f"cluster {{ name: {CLUSTER}, listen: 127.0.0.1:{node.route_port}, routes: [{routes}] }}\n"
            f"mqtt {{ listen: 127.0.0.1:{node.mqtt_port} }}\n"
        )
        path = self.folder / f"{node.name}.conf"
        path.write_text(text)
        return path

    def start(self, index: int) -> None:
        """Start node ``index`` (0-based) and wait until its client and MQTT ports take connections."""
        node = self.nodes[index]
        executable = find_nats_server()
        assert executable is not None, NO_NATS_SERVER
        log = (self.folder / f"{node.name}.log").open("ab")
        node.process = subprocess.Popen(
            [executable, "-c", str(self._config(node))], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 15
        for port in (node.client_port, node.mqtt_port):
            while not _listening(port):
                if node.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server {node.name} did not start: {self.log(index)[-2000:]}")
                time.sleep(0.05)

    def kill(self, index: int) -> None:
        """SIGKILL node ``index``: no goodbye to its peers or its clients."""
        process = self.nodes[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def log(self, index: int) -> str:
        path = self.folder / f"{self.nodes[index].name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def urls(self, *, without: int | None = None) -> list[str]:
        return [n.url for i, n in enumerate(self.nodes) if i != without]

    def __enter__(self) -> NatsCluster:
        try:
            for index in range(NODES):
                self.start(index)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        for index in range(NODES):
            self.kill(index)
        if not os.environ.get("HOMEWATCH_KEEP_NATS"):
            shutil.rmtree(self.folder, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0
