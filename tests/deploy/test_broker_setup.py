"""``homewatch admin broker init`` (homewatch/broker_cli.py, gateway/broker_setup.py): the files it writes,
their modes, what it refuses; and, with a real Mosquitto running them, that the certificate is the
broker's for every name it was made for and for no other."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from generated_mosquitto import NEEDS_GENERATED, generated_broker, read_env
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gateway.broker_check import ProbeTarget, probe_broker
from gateway.broker_rules import ADMIN_ROLE, GATEWAY_ROLE, GATEWAY_USERNAME, admin_acls, gateway_acls
from gateway.broker_session import BrokerAddress
from gateway.broker_setup import BrokerPlan, BrokerSetupError, certificate_authority, server_certificate
from gateway.settings import GatewaySettings
from homewatch.broker_cli import app

runner = CliRunner()
TLS_FILES = {"ca.crt", "ca.key", "server.crt", "server.key"}
SECRETS = {"ca.key", "server.key", "dynamic-security.json", "gateway.env"}


def _init(out: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["init", "--out", str(out), *args])
    return result.exit_code, result.stdout, result.stderr


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_a_whole_broker_with_secrets_readable_by_the_owner_only(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    code, stdout, _ = _init(out, "--host", "broker.example", "--host", "192.0.2.7")
    assert code == 0, stdout
    names = {path.name for path in out.iterdir()}
    assert names == {"mosquitto.conf", "dynamic-security.json", "gateway.env"} | TLS_FILES
    for name in names:
        assert _mode(out / name) == (0o600 if name in SECRETS else 0o644), name
    env = read_env(out / "gateway.env")
    for secret in (env["HOMEWATCH_MQTT_PASSWORD"], env["HOMEWATCH_BROKER_ADMIN_PASSWORD"]):
        assert len(secret) >= 43 and secret not in stdout  # 32 random bytes, never printed
    assert env["HOMEWATCH_MQTT_PASSWORD"] != env["HOMEWATCH_BROKER_ADMIN_PASSWORD"]
    assert env["HOMEWATCH_MQTT_URL"] == "mqtt://127.0.0.1:1883" and env["HOMEWATCH_MQTT_TLS"] == "false"
    assert env["HOMEWATCH_HUB_MQTT_HOST"] == "broker.example" and env["HOMEWATCH_HUB_MQTT_PORT"] == "8883"
    assert env["HOMEWATCH_HUB_CA_FILE"] == str(out.resolve() / "ca.crt")
    accounts = json.loads((out / "dynamic-security.json").read_text())
    assert accounts["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    assert [c["username"] for c in accounts["clients"]] == ["homewatch-admin", GATEWAY_USERNAME]
    roles = {r["rolename"]: r["acls"] for r in accounts["roles"]}
    assert roles == {ADMIN_ROLE: admin_acls(), GATEWAY_ROLE: gateway_acls()}
    ca = x509.load_pem_x509_certificate((out / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((out / "server.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    names_in_cert = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names_in_cert.get_values_for_type(x509.DNSName) == ["broker.example"]
    assert [str(ip) for ip in names_in_cert.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    assert "next: chown -R mosquitto:" in stdout


def test_init_refuses_to_overwrite_unless_forced_and_then_issues_new_passwords(tmp_path: Path) -> None:
    assert _init(tmp_path, "--host", "broker.example")[0] == 0
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    code, _, stderr = _init(tmp_path, "--host", "broker.example")
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "--force" in stderr
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    assert _init(tmp_path, "--host", "broker.example", "--force")[0] == 0
    after = read_env(tmp_path / "gateway.env")
    assert after["HOMEWATCH_MQTT_PASSWORD"] not in before["gateway.env"].decode()
    assert (tmp_path / "ca.crt").read_bytes() != before["ca.crt"]


def test_one_existing_file_is_enough_to_refuse_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "server.key").write_text("someone's key")
    code, _, stderr = _init(tmp_path, "--host", "broker.example")
    assert code == 2 and "server.key" in stderr
    assert [p.name for p in tmp_path.iterdir()] == ["server.key"]


def test_without_tls_there_is_no_certificate_and_the_configuration_says_so(tmp_path: Path) -> None:
    assert _init(tmp_path, "--host", "lab.example", "--no-tls", "--port", "1884")[0] == 0
    assert {p.name for p in tmp_path.iterdir()} == {"mosquitto.conf", "dynamic-security.json", "gateway.env"}
    conf = (tmp_path / "mosquitto.conf").read_text()
    assert "certfile" not in conf and "WITHOUT TLS" in conf and "\nlistener 1884\n" in conf
    assert "HOMEWATCH_HUB_CA_FILE" not in read_env(tmp_path / "gateway.env")


def test_without_a_local_listener_the_gateway_uses_the_hubs_listener_over_tls(tmp_path: Path) -> None:
    assert _init(tmp_path, "--host", "broker.example", "--local-port", "0")[0] == 0
    env = read_env(tmp_path / "gateway.env")
    assert env["HOMEWATCH_MQTT_URL"] == "mqtts://broker.example:8883" and env["HOMEWATCH_MQTT_TLS"] == "true"
    assert "127.0.0.1" not in (tmp_path / "mosquitto.conf").read_text()
    assert env["HOMEWATCH_MQTT_CA_FILE"] == str(tmp_path / "ca.crt")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--host", "bad host"], "--host"),
        (["--host", "broker.example/x"], "--host"),
        (["--host", "broker.example", "--port", "70000"], "--port"),
        (["--host", "broker.example", "--port", "1883"], "--local-port"),
        (["--host", "broker.example", "--admin", "homewatch-gateway"], "--admin"),
        (["--host", "broker.example", "--admin", "a/b"], "--admin"),
        (["--host", "broker.example", "--bind", "everywhere"], "--bind"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path: Path, args: list[str], said: str) -> None:
    out = tmp_path / "broker"
    code, _, stderr = _init(out, *args)
    assert code == 2, stderr
    assert len(stderr.strip().splitlines()) == 1 and said in stderr and "Traceback" not in stderr
    assert not out.exists()


def test_out_naming_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, _, stderr = _init(tmp_path / "file", "--host", "broker.example")
    assert code == 2 and "not a folder" in stderr


@NEEDS_GENERATED
def test_the_broker_presents_a_certificate_for_each_of_its_names_and_for_no_other(tmp_path: Path) -> None:
    with generated_broker(tmp_path) as broker:
        context = ssl.create_default_context(cafile=str(broker.ca_file))
        for name in ("127.0.0.1", "broker.homewatch.example"):
            with (
                socket.create_connection(("127.0.0.1", broker.hub_port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=name) as tls,
            ):
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
        with (
            socket.create_connection(("127.0.0.1", broker.hub_port), timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            context.wrap_socket(raw, server_hostname="other.example")
        untrusting = ssl.create_default_context()  # the system's CAs do not know ours
        with (
            socket.create_connection(("127.0.0.1", broker.hub_port), timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            untrusting.wrap_socket(raw, server_hostname="127.0.0.1")


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=70) | st.from_regex(r"[a-z0-9.\-]{1,70}", fullmatch=True) | st.ip_addresses().map(str)
)
def test_any_host_is_either_refused_in_one_line_or_written_into_a_valid_certificate(host: str) -> None:
    plan = BrokerPlan(out_dir=Path("/nonexistent-homewatch-test"), hosts=(host,), plugin=Path("/x.so"))
    try:
        plan.check()
    except BrokerSetupError as exc:
        assert "\n" not in str(exc) and "--host" in str(exc)
        return
    now = datetime.now(UTC)
    ca, ca_key = certificate_authority(host, now)
    cert, _ = server_certificate(ca, ca_key, (host,), now)
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(v) for v in names.get_values_for_type(x509.IPAddress)] + names.get_values_for_type(
        x509.DNSName
    ) == [str(ipaddress.ip_address(host)) if _is_ip(host) else host]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@NEEDS_GENERATED
def test_the_gateway_reaches_the_brokers_tls_listener_through_its_private_ca(tmp_path: Path) -> None:
    # HOMEWATCH_MQTT_CA_FILE: ingest's start-up check and the gateway's own errands (broker accounts,
    # config publishing) trust the CA `broker init` made; without it, the system's CAs refuse the broker.
    with generated_broker(tmp_path) as broker:
        password = broker.password("HOMEWATCH_MQTT_PASSWORD")

        def gateway_settings(ca_file: Path | None) -> GatewaySettings:
            return GatewaySettings(
                environment="development",
                mqtt_port=broker.hub_port,
                mqtt_tls=True,
                mqtt_ca_file=ca_file,
                mqtt_username=GATEWAY_USERNAME,
                mqtt_password=password,
            )

        trusted = probe_broker(ProbeTarget.from_settings(gateway_settings(broker.ca_file)), messages=10)
        assert trusted.unchecked is None and trusted.kept == 10, trusted
        untrusting = probe_broker(ProbeTarget.from_settings(gateway_settings(None)), messages=10)
        assert untrusting.sent == 0 and untrusting.unchecked is not None
        assert BrokerAddress.of_gateway(gateway_settings(broker.ca_file)).ca_file == broker.ca_file
