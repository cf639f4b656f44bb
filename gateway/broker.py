"""The embedded MQTT broker for the demo and the tests: Mosquitto when its binary exists, else amqtt.

Both run as child processes on a free loopback port with a configuration written here, so the
configuration is deliberate rather than inherited from the machine:

- Mosquitto's defaults keep at most 1,000 queued QoS 1 messages per client and then drop messages
  silently; a gateway that falls behind must never lose readings, so the queue limits are raised on
  purpose (``max_queued_messages``, ``max_queued_bytes``), persistence is on and its snapshot interval is
  written down. ``gateway.broker_check`` measures it: 1,100 of 1,100 probe messages kept for an offline
  session (a default Mosquitto keeps 1,000).
- amqtt (pure Python, MQTT 3.1.1 only) is the fallback where Mosquitto is absent: no MQTT 5, so clients
  fall back to MQTT 3.1.1 and no shared subscriptions. It queues nothing for an offline session: with
  anonymous access allowed (as here) amqtt 0.12 marks every session anonymous, username or not, and keeps
  no messages for those (the probe: 0 of 1,100 kept). Readings published while the gateway is away come
  again when the hubs resend them after their receipt timeout: late, not lost.

Production uses an external broker given by URL (``deploy/mosquitto/homewatch.conf``; ``gateway serve``
probes it at start-up); nothing outside this module knows which broker runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from gateway.errors import GatewayFailure

log = logging.getLogger(__name__)

BrokerKind = Literal["mosquitto", "amqtt"]

# Enough for several days of readings from hundreds of hubs while a gateway is down; QoS 1 messages
# beyond this would be dropped by Mosquitto, so the figure is a capacity decision, not a default.
MAX_QUEUED_MESSAGES = 1_000_000
# How long a broker may take to accept connections before we give up (amqtt imports take ~1 s).
START_TIMEOUT_S = 15.0


class BrokerError(RuntimeError, GatewayFailure):
    """The embedded broker could not be started."""


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    """Where clients connect and which MQTT version they may use."""

    host: str
    port: int
    kind: BrokerKind
    mqtt5: bool

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the broker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str | None:
    """Path of the Mosquitto broker binary, looking where Debian puts it when it is not on PATH."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def run_as_root_line() -> str:
    """Mosquitto started by root drops to the ``mosquitto`` user, which cannot use our private temporary
    folder (persistence, password files). A broker we start for a test or the demo stays our user."""
    return "user root" if os.geteuid() == 0 else ""


def _mosquitto_config(port: int, workdir: Path) -> str:
    return "\n".join(
        [
            run_as_root_line(),
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {workdir}/",
            f"max_queued_messages {MAX_QUEUED_MESSAGES}",
            "max_queued_bytes 0",  # no byte limit either: the message count is the decision
            # Mosquitto's default snapshot interval, written down: what a crash loses since the last
            # snapshot comes again from the hubs, which delete a reading only on the gateway's receipt.
            # Production: 60 s (deploy/mosquitto/homewatch.conf).
            "autosave_interval 1800",
            # Per-client in-flight window; larger windows only add reordering on redelivery.
            "max_inflight_messages 100",
            f"log_dest file {workdir}/mosquitto.log",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "",
        ]
    )


def _amqtt_config(port: int) -> str:
    return "\n".join(
        [
            "listeners:",
            "  default:",
            "    type: tcp",
            f"    bind: 127.0.0.1:{port}",
            "plugins:",
            "  amqtt.plugins.authentication.AnonymousAuthPlugin:",
            "    allow_anonymous: true",
            "",
        ]
    )


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the parent dies.

    Linux ties this to the *thread* that started the child: start the broker from the main thread or a
    thread that lives as long as the broker should (asyncio's default executor threads do).
    """
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedBroker:
    """An MQTT broker child process on a free loopback port. Use as a context manager or start/stop."""

    def __init__(self, prefer: BrokerKind | None = None, port: int | None = None) -> None:
        binary = mosquitto_binary()
        if prefer == "mosquitto" and binary is None:
            raise BrokerError("mosquitto was asked for but no mosquitto binary is installed")
        self.kind: BrokerKind = prefer or ("mosquitto" if binary else "amqtt")
        self._binary = binary
        self._port = port
        self._workdir = Path(tempfile.mkdtemp(prefix=f"homewatch-{self.kind}-"))
        self._process: subprocess.Popen[bytes] | None = None
        self.endpoint: BrokerEndpoint | None = None

    def start(self) -> BrokerEndpoint:
        port = self._port or free_port()
        if self.kind == "mosquitto":
            conf = self._workdir / "mosquitto.conf"
            conf.write_text(_mosquitto_config(port, self._workdir))
            assert self._binary is not None
            cmd = [self._binary, "-c", str(conf)]
        else:
            conf = self._workdir / "amqtt.yaml"
            conf.write_text(_amqtt_config(port))
            cmd = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
        log_file = (self._workdir / "stdout.log").open("wb")
        # Own process group: Ctrl-C in the terminal reaches us, and we stop the broker in order. On Linux
        # the broker also dies with us if we are killed outright, so no broker outlives its owner.
        self._process = subprocess.Popen(
            cmd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        log_file.close()
        self._wait_until_listening(port)
        self.endpoint = BrokerEndpoint("127.0.0.1", port, self.kind, mqtt5=self.kind == "mosquitto")
        if self.kind == "mosquitto":
            log.info(
                "mosquitto broker listening on 127.0.0.1:%d (max_queued_messages %d, max_queued_bytes 0, "
                "persistence true)",
                port,
                MAX_QUEUED_MESSAGES,
            )
        else:
            log.info("amqtt broker listening on 127.0.0.1:%d (MQTT 3.1.1; no offline queue)", port)
        return self.endpoint

    def _wait_until_listening(self, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise BrokerError(f"{self.kind} exited at start-up: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"{self.kind} did not listen on port {port} within {START_TIMEOUT_S:.0f} s")

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        for name in ("mosquitto.log", "stdout.log"):
            path = self._workdir / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def save_state(self, timeout: float = 5.0) -> bool:
        """Make Mosquitto write its persistence file now (SIGUSR1), as its autosave does periodically.

        Mosquitto persists by snapshot, not by log: a broker killed outright comes back with what its last
        snapshot held. True once the file was written; False for amqtt, which keeps nothing on disk.
        """
        if self.kind != "mosquitto" or self._process is None or self._process.poll() is not None:
            return False
        database = self._workdir / "mosquitto.db"
        before = database.stat().st_mtime_ns if database.exists() else None
        self._process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if database.exists() and database.stat().st_mtime_ns != before:
                time.sleep(0.1)  # let it finish writing
                return True
            time.sleep(0.02)
        return False

    def kill(self) -> None:
        """SIGKILL the broker (tests of crash recovery); ``start()`` brings it back on the same port."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self.endpoint is not None:
            self._port = self.endpoint.port

    def stop(self) -> None:
        """Stop the broker and remove its folder. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT if self.kind == "amqtt" else signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> BrokerEndpoint:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
