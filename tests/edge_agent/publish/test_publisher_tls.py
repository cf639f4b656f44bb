"""The publisher over TLS with the hub's own account: it connects to a Mosquitto TLS listener with the
right CA and a password read from a file, and refuses a broker whose certificate another CA signed.

A throwaway CA and server certificate are made with ``openssl`` in the test's folder; skipped with the
reason when ``openssl``, ``mosquitto`` or ``mosquitto_passwd`` is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.config import HubConfig, MqttConfig
from edge_agent.outbox import Outbox
from edge_agent.publish import MqttPublisher
from gateway.broker import free_port, mosquitto_binary, run_as_root_line

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or mosquitto_binary() is None or shutil.which("mosquitto_passwd") is None,
    reason="needs openssl (throwaway CA), mosquitto (TLS listener) and mosquitto_passwd",
)

HUB, PASSWORD = "hub-tls", "pw-tls"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(folder: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=folder,
    )  # fmt: skip


def _server_cert(folder: Path, ca: str) -> None:
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr", cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-days", "1", "-extfile", "san.ext", "-out", "server.crt", cwd=folder,
    )  # fmt: skip


@pytest.fixture
def tls_port(tmp_path: Path) -> Iterator[int]:
    """Mosquitto with one TLS listener on a free port, accounts required (gateway/broker.py's style)."""
    _ca(tmp_path, "ca")
    _ca(tmp_path, "other-ca")
    _server_cert(tmp_path, "ca")
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(tmp_path / "passwd"), HUB, PASSWORD], check=True)
    (tmp_path / "passwd").chmod(0o600)
    port = free_port()
    (tmp_path / "mosquitto.conf").write_text(
        "\n".join(
            [
                run_as_root_line(),
                f"listener {port} 127.0.0.1",
                f"cafile {tmp_path}/ca.crt",
                f"certfile {tmp_path}/server.crt",
                f"keyfile {tmp_path}/server.key",
                "tls_version tlsv1.2",
                "allow_anonymous false",
                f"password_file {tmp_path}/passwd",
                "persistence false",
                f"log_dest file {tmp_path}/mosquitto.log",
                "",
            ]
        )
    )
    binary = mosquitto_binary()
    assert binary is not None
    process = subprocess.Popen([binary, "-c", str(tmp_path / "mosquitto.conf")], stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_listening(port: int) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not listen")


def _publisher(tmp_path: Path, port: int, ca: str, password_file: Path) -> tuple[MqttPublisher, Outbox]:
    config = HubConfig(
        municipality="0101",
        hub_id=HUB,
        patient_id="p",
        devices=(),
        mqtt=MqttConfig(
            host="localhost",
            port=port,
            tls=True,
            ca_file=tmp_path / f"{ca}.crt",
            username=HUB,
            password_file=password_file,
        ),
        outbox_path=tmp_path / f"outbox-{ca}.sqlite3",
    )
    outbox = Outbox(config.outbox_path)
    return MqttPublisher(config, outbox), outbox


def _connected_within(publisher: MqttPublisher, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if publisher.connected:
            return True
        time.sleep(0.05)
    return False


def test_publisher_connects_over_tls_with_the_right_ca_and_password_file(
    tls_port: int, tmp_path: Path
) -> None:
    (tmp_path / "mqtt-password").write_text(PASSWORD + "\n")
    publisher, outbox = _publisher(tmp_path, tls_port, "ca", tmp_path / "mqtt-password")
    publisher.start()
    try:
        assert _connected_within(publisher, 10)
    finally:
        publisher.stop(timeout=2)
        outbox.close()


def test_publisher_refuses_a_broker_signed_by_another_ca(tls_port: int, tmp_path: Path) -> None:
    (tmp_path / "mqtt-password").write_text(PASSWORD + "\n")
    publisher, outbox = _publisher(tmp_path, tls_port, "other-ca", tmp_path / "mqtt-password")
    publisher.start()
    try:
        assert not _connected_within(publisher, 2)
    finally:
        publisher.stop(timeout=1)
        outbox.close()


def test_publisher_with_a_wrong_password_is_refused(tls_port: int, tmp_path: Path) -> None:
    (tmp_path / "mqtt-password").write_text("wrong\n")
    publisher, outbox = _publisher(tmp_path, tls_port, "ca", tmp_path / "mqtt-password")
    publisher.start()
    try:
        assert not _connected_within(publisher, 2)
    finally:
        publisher.stop(timeout=1)
        outbox.close()
