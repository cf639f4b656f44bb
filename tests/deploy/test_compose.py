"""deploy/compose/: the compose file for a municipality's server. Nothing here starts a container (this
machine has no container registry; the file's header says so); what can be checked without one is: the
YAML parses, every file it mounts or builds from exists, the broker runs the shipped homewatch.conf at
the paths that file names, its variables are real homewatch settings, its shell commands parse, and the
gateway's entry point really makes a TLS client trust the broker's CA."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from gateway.settings import GatewaySettings
from homewatch.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
ENV_EXAMPLE = COMPOSE_DIR / "homewatch.env.example"
ENTRYPOINT = COMPOSE_DIR / "gateway-entrypoint.sh"
SHIPPED_CONF = ROOT / "deploy" / "mosquitto" / "homewatch.conf"
# What the operator puts next to compose.yaml before the first start (its header and deploy/README.md
# say so; .gitignore keeps it out of the repository).
OPERATOR_FILES = {"homewatch.env", "tls", "tls/ca.crt", "backups"}


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose file")
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of each bind mount (a source that is a path, not a volume name)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts.append((source, target))
    return mounts


def shell_commands(services: dict[str, Any]) -> list[str]:
    """Every shell text of the file (commands run by sh -c, CMD-SHELL health checks), as the container's
    shell gets it: compose turns $$ into $."""
    texts = []
    for service in services.values():
        if service.get("entrypoint") == ["/bin/sh", "-c"]:
            texts.extend(service["command"])
        test = service.get("healthcheck", {}).get("test", [])
        if test and test[0] == "CMD-SHELL":
            texts.append(test[1])
    return [text.replace("$$", "$") for text in texts]


def conf_values(key: str) -> list[str]:
    return [
        line.split(None, 1)[1] for line in SHIPPED_CONF.read_text().splitlines() if line.startswith(f"{key} ")
    ]


def test_the_file_says_it_is_not_exercised_here() -> None:
    header = COMPOSE.read_text().split("\nname:", 1)[0]
    assert "NOT EXERCISED" in header and "no container registry" in header
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert "compose/compose.yaml" in readme and "not exercised" in readme.lower()


def test_it_runs_timescaledb_mosquitto_and_the_gateway_with_health_checks() -> None:
    services = compose()["services"]
    assert {"db", "mosquitto", "gateway"} <= set(services)
    assert re.fullmatch(r"timescale/timescaledb:[0-9.]+-pg1[4-9]", services["db"]["image"])
    mosquitto_from = (COMPOSE_DIR / services["mosquitto"]["build"]["dockerfile"]).read_text()
    assert re.search(r"^FROM eclipse-mosquitto:2\.0\.\d+$", mosquitto_from, re.M)
    for name, service in services.items():
        if service.get("restart") == "unless-stopped":  # the long-running ones
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert services["mosquitto"]["ports"] == ["8883:8883"]
    assert services["gateway"]["ports"] == ["127.0.0.1:8000:8000"]  # behind the municipality's proxy
    assert set(compose()["volumes"]) == {"db-data", "mosquitto-data"}


def test_everything_it_mounts_or_builds_from_exists() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for source, _ in bind_mounts(service):
            path = (COMPOSE_DIR / source).resolve()
            here = COMPOSE_DIR.resolve()
            if path.is_relative_to(here) and str(path.relative_to(here)) in OPERATOR_FILES:
                continue
            assert path.is_relative_to(ROOT) and path.exists(), (
                f"{name} mounts {source}: not in the repository"
            )
        assert service.get("env_file") in (None, "homewatch.env")
        build = service.get("build")
        if build:
            context = (COMPOSE_DIR / build["context"]).resolve()
            dockerfile = context / build["dockerfile"]
            assert dockerfile.is_file(), f"{name} builds from {dockerfile}, which does not exist"
            for line in dockerfile.read_text().splitlines():
                if line.startswith("COPY "):
                    for copied in line.split()[1:-1]:
                        assert (context / copied).exists(), f"{dockerfile.name} copies {copied}: missing"
    assert ENV_EXAMPLE.is_file()
    header = COMPOSE.read_text().split("\nname:", 1)[0]
    assert all(name.split("/")[0] in header for name in OPERATOR_FILES), "the header names what to add"
    ignored = (COMPOSE_DIR / ".gitignore").read_text().split()
    assert {"homewatch.env", "tls/", "backups/"} <= set(ignored)


def test_the_broker_runs_the_shipped_configuration_at_the_paths_it_names() -> None:
    services = compose()["services"]
    broker = services["mosquitto"]
    mounts = dict(bind_mounts(broker))
    config_path = broker["command"][broker["command"].index("-c") + 1]
    assert mounts["../mosquitto/homewatch.conf"] == config_path
    # The plugin: Debian's path in the file, made to exist in the image.
    [plugin] = conf_values("plugin")
    assert (
        f"ln -s /usr/lib/mosquitto_dynamic_security.so {plugin}"
        in (COMPOSE_DIR / "mosquitto.Dockerfile").read_text()
    )
    # TLS material where the listener section looks for it, from the operator's tls/ folder.
    tls_dir = mounts["./tls"]
    for key in ("cafile", "certfile", "keyfile"):
        [path] = conf_values(key)
        assert str(Path(path).parent) == tls_dir, key
    # Persistence and the accounts file on the broker's volume, the same file broker-init makes.
    data = next(v.split(":")[1] for v in broker["volumes"] if v.startswith("mosquitto-data:"))
    [accounts] = conf_values("plugin_opt_config_file")
    [persistence] = conf_values("persistence_location")
    assert accounts.startswith(data + "/") and persistence.rstrip("/") == data
    assert f"init {accounts}" in " ".join(services["broker-init"]["command"])
    # broker-setup checks the broker with the CA at the path its options file names.
    setup_mounts = dict(bind_mounts(services["broker-setup"]))
    assert setup_mounts["./tls/ca.crt"] in " ".join(services["broker-setup"]["command"])


def test_its_variables_are_real_homewatch_settings() -> None:
    written = re.findall(r"^#?(HOMEWATCH_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M)
    defined = set(re.findall(r"^([A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    options: set[str] = set()

    def walk(command: Any) -> None:
        options.update(p.envvar for p in command.params if isinstance(p.envvar, str))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    known = {f"HOMEWATCH_{field.upper()}" for field in GatewaySettings.model_fields} | options
    assert written and set(written) <= known, sorted(set(written) - known)
    used = set(re.findall(r"\$\$\{?([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    used -= {"SYS"}  # '$$SYS/broker/version': a topic, not a variable
    assert used <= defined, f"compose.yaml uses {sorted(used - defined)}, which homewatch.env.example lacks"
    # The gateway trusts the CA it hands to the hubs: the file the compose file mounts.
    gateway = compose()["services"]["gateway"]
    ca_in_env = re.search(r"^HOMEWATCH_HUB_CA_FILE=(.+)$", ENV_EXAMPLE.read_text(), re.M)
    assert ca_in_env and dict(bind_mounts(gateway))["./tls/ca.crt"] == ca_in_env[1]


def test_its_shell_commands_parse() -> None:
    texts = shell_commands(compose()["services"])
    assert len(texts) >= 4
    for text in texts:
        done = subprocess.run(["sh", "-n", "-c", text], capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, f"{text!r}: {done.stderr}"
    for script in (ENTRYPOINT,):
        assert subprocess.run(["sh", "-n", str(script)], timeout=10).returncode == 0
    probe = compose()["services"]["gateway"]["healthcheck"]["test"]
    assert probe[:3] == ["CMD", "python", "-c"]
    compile(probe[3], "healthcheck", "exec")


# -- the entry point: a TLS client trusts the broker's CA through it -----------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS server on loopback whose certificate (for localhost) a throwaway CA signed: (port, CA file)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl for a throwaway CA")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=homewatch test CA",
        "-keyout", "ca.key", "-out", "ca.crt", cwd=tmp_path,
    )  # fmt: skip
    (tmp_path / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr", cwd=tmp_path,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "1", "-extfile", "san.ext", "-out", "server.crt", cwd=tmp_path,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)  # accept() wakes up to see the test has ended
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], tmp_path / "ca.crt"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


# What paho's tls_set() does with no ca_certs (the gateway's MQTT and broker check): the default CA
# certificates, host name checked.
CLIENT = """
import socket, ssl, sys
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.load_default_certs()
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        print(tls.recv(2).decode())
"""


def test_the_entrypoint_makes_the_brokers_ca_trusted(tls_server: tuple[int, Path], tmp_path: Path) -> None:
    port, ca = tls_server
    client = [sys.executable, "-c", CLIENT, str(port)]
    base = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)}

    alone = subprocess.run(client, env=base, capture_output=True, text=True, timeout=30)
    assert alone.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in alone.stderr

    trusted = subprocess.run(
        [str(ENTRYPOINT), *client], env={**base, "HOMEWATCH_HUB_CA_FILE": str(ca)}, capture_output=True,
        text=True, timeout=30,
    )  # fmt: skip
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip() == "ok"
    bundle = (tmp_path / "homewatch-ca-bundle.crt").read_text()
    assert bundle.endswith(ca.read_text()) and bundle.count("BEGIN CERTIFICATE") > 10  # the system's too

    missing = subprocess.run(
        [str(ENTRYPOINT), "true"], env={**base, "HOMEWATCH_HUB_CA_FILE": str(tmp_path / "nope.crt")},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert missing.returncode == 2 and "cannot be read" in missing.stderr
