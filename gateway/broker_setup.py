"""A new Mosquitto for this homewatch, written as files: ``homewatch admin broker init --out DIR``.

What ``deploy/mosquitto/homewatch.conf`` and ``homewatch-broker-accounts.sh init`` + ``setup`` make by
hand, in one step and with no mosquitto_ctrl: a complete ``mosquitto.conf`` (the dynamic-security
plugin, persistence, the queue limits the gateway needs, no anonymous access; a listener for the hubs,
TLS by default, and a loopback one for the gateway and the broker's administrator on the same host),
the plugin's accounts file ``dynamic-security.json`` with deny-by-default and two accounts (the broker's
administrator, whose role reaches only the plugin's control topics, and the gateway, with the gateway's
rules of ``gateway.broker_rules``), a CA and the broker's server certificate for its host names and
addresses (``cryptography``), and ``gateway.env``: the gateway's broker settings with both passwords,
for the gateway's environment (systemd ``EnvironmentFile=``). The hubs' accounts come later, one per
enrolment (``gateway.broker_accounts``), while the broker runs.

The passwords are random (``secrets``) and appear only in ``gateway.env`` (mode 0600); the accounts file
holds them hashed as the plugin does (:func:`dynsec_password`: PBKDF2-HMAC-SHA512, a 12-byte salt, a
64-byte hash, both base64, and the iteration count; Mosquitto 2.0's ``plugins/dynamic-security/auth.c``
and ``src/password_mosq.h``). Private keys, the accounts file and ``gateway.env`` are written 0600.
Nothing existing is overwritten unless asked (``force``).

The configuration names its files by their absolute paths in the output folder: the folder is where the
broker runs from (``mosquitto -c DIR/mosquitto.conf``), and it must be the mosquitto user's, since the
broker rewrites the accounts file on every change and keeps its persistence there. Left to others: the
hubs' accounts (``gateway.broker_accounts``), the shipped hand-made path (``deploy/mosquitto``).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import secrets
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.broker import MAX_QUEUED_MESSAGES
from gateway.broker_rules import ADMIN_ROLE, GATEWAY_ROLE, GATEWAY_USERNAME, admin_acls, gateway_acls
from gateway.errors import GatewayFailure

DEFAULT_ADMIN = "homewatch-admin"
HUB_PORT = 8883  # MQTT over TLS (IANA)
LOCAL_PORT = 1883  # MQTT, on the loopback interface only
# Mosquitto 2.0's own count (PW_DEFAULT_ITERATIONS, also what setClientPassword uses for every hub):
# the passwords are 32 random bytes, which no iteration count makes easier or harder to guess, while the
# broker pays the count at every CONNECT, 2,000 hubs at once after a broker restart.
PASSWORD_ITERATIONS = 101
SALT_BYTES = 12  # SALT_LEN in Mosquitto 2.0; the plugin refuses any other length
HASH_BYTES = 64  # SHA-512's output; the plugin refuses any other length
# 32 random bytes (secrets.token_urlsafe: letters, digits, '-' and '_': safe in an env file and a URL).
PASSWORD_BYTES = 32
# The CA outlives many server certificates: hubs in homes trust it for years. A server certificate is
# renewed on the broker alone (signed with ca.key); hubs keep trusting the CA.
CA_DAYS = 10 * 365
SERVER_DAYS = 3 * 365
# Where Debian and Ubuntu put the plugin (amd64, arm64, armhf), and a source build's place.
PLUGIN_CANDIDATES = (
    Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so"),
    Path("/usr/local/lib/mosquitto_dynamic_security.so"),
)
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# A DNS name: labels of letters, digits and '-', separated by dots.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_PATTERN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")

CONF = "mosquitto.conf"
ACCOUNTS = "dynamic-security.json"
ENV = "gateway.env"
CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
SECRET = 0o600
PUBLIC = 0o644


class BrokerSetupError(ValueError, GatewayFailure):
    """The broker's files cannot be written as asked: one line saying why."""


def find_plugin() -> Path:
    """The dynamic-security plugin of this machine, or Debian's amd64 path when none is found here."""
    return next((path for path in PLUGIN_CANDIDATES if path.exists()), PLUGIN_CANDIDATES[0])


@dataclass(frozen=True, slots=True)
class BrokerPlan:
    """What to write. ``hosts``: the names and addresses hubs reach the broker by (the first is the one
    written into their hub.toml; all are in the server certificate). ``local_port`` None: no loopback
    listener (the gateway then uses the hubs' listener). ``bind``: the hubs' listener's address (None:
    every interface)."""

    out_dir: Path
    hosts: tuple[str, ...]
    port: int = HUB_PORT
    tls: bool = True
    local_port: int | None = LOCAL_PORT
    bind: str | None = None
    admin_username: str = DEFAULT_ADMIN
    plugin: Path = field(default_factory=find_plugin)

    def check(self) -> None:
        """BrokerSetupError naming the first thing wrong."""
        if not self.hosts:
            raise BrokerSetupError("name at least one host the hubs reach the broker by (--host)")
        for host in self.hosts:
            if not _is_address(host) and HOSTNAME_PATTERN.fullmatch(host) is None:
                raise BrokerSetupError(f"--host {host!r} is neither a host name nor an IP address")
        if self.bind is not None and not _is_address(self.bind):
            raise BrokerSetupError(f"--bind {self.bind!r} is not an IP address")
        for name, port in (("--port", self.port), ("--local-port", self.local_port)):
            if port is not None and not 1 <= port <= 65535:
                raise BrokerSetupError(f"{name} {port} is not a TCP port (1-65535)")
        if self.local_port == self.port:
            raise BrokerSetupError(f"--port and --local-port are both {self.port}")
        if USERNAME_PATTERN.fullmatch(self.admin_username) is None or self.admin_username == GATEWAY_USERNAME:
            raise BrokerSetupError(
                f"--admin {self.admin_username!r}: letters, digits, '_', '.' and '-' only, and not "
                f"{GATEWAY_USERNAME}"
            )
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise BrokerSetupError(f"--out {self.out_dir} is not a folder")

    def file_names(self) -> tuple[str, ...]:
        return (CONF, ACCOUNTS, ENV) + ((CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY) if self.tls else ())


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """What was written: every file, and which is which."""

    paths: tuple[Path, ...]
    conf: Path
    accounts: Path
    env: Path
    ca_certificate: Path | None


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# -- the accounts file --------------------------------------------------------------------------------


def dynsec_password(
    password: str, *, salt: bytes | None = None, iterations: int = PASSWORD_ITERATIONS
) -> dict[str, Any]:
    """A client's ``password``, ``salt`` and ``iterations`` as the plugin stores and checks them."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise BrokerSetupError(f"a dynamic-security salt is {SALT_BYTES} bytes, not {len(salt)}")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
    }


def accounts_file(admin_username: str, admin_password: str, gateway_password: str) -> dict[str, Any]:
    """The plugin's accounts: deny-by-default (a client may do only what a role of its allows; it may
    always unsubscribe), the administrator and the gateway."""
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [
            {
                "username": admin_username,
                "textname": "homewatch broker administrator (accounts only)",
                "roles": [{"rolename": ADMIN_ROLE}],
                **dynsec_password(admin_password),
            },
            {
                "username": GATEWAY_USERNAME,
                "textname": "homewatch gateway",
                "roles": [{"rolename": GATEWAY_ROLE}],
                **dynsec_password(gateway_password),
            },
        ],
        "groups": [],
        "roles": [
            {"rolename": ADMIN_ROLE, "acls": admin_acls()},
            {"rolename": GATEWAY_ROLE, "acls": gateway_acls()},
        ],
    }


# -- mosquitto.conf -----------------------------------------------------------------------------------


def mosquitto_conf(plan: BrokerPlan, folder: Path, written: datetime) -> str:
    """The broker's configuration; ``folder`` is the output folder's absolute path."""
    hubs = f"listener {plan.port}" + (f" {plan.bind}" if plan.bind else "")
    lines = [
        f"# Mosquitto 2.x for homewatch, written by `homewatch admin broker init` on {written:%Y-%m-%d}",
        f"# for {', '.join(plan.hosts)}. Run it as: mosquitto -c {folder / CONF}",
        "# This folder must be the mosquitto user's: the broker rewrites the accounts file on every change",
        "# and keeps its persistence here. Hubs' accounts are made by the gateway at enrolment.",
        "",
        "per_listener_settings false",
        "allow_anonymous false",
        "# Accounts and access rules: the dynamic-security plugin, which refuses any SUBSCRIBE its rules do",
        "# not allow (an acl_file cannot; deploy/README.md).",
        f"plugin {plan.plugin}",
        f"plugin_opt_config_file {folder / ACCOUNTS}",
        "",
        "# Readings must survive a broker restart and a gateway that is down for hours.",
        "persistence true",
        f"persistence_location {folder}/",
        "autosave_interval 60",
        "# Mosquitto's default keeps 1,000 queued QoS 1 messages per client and then DROPS. Size this to",
        "# hubs x readings per hour x hours of gateway outage (docs/gateway.md).",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "max_queued_bytes 0",
        "max_inflight_messages 100",
        "# A hub Bundle is ~12 kB; anything near this is not a hub.",
        "message_size_limit 1048576",
        "",
        "# --- the hubs' listener ---",
        hubs,
    ]
    if plan.tls:
        lines += [
            f"cafile {folder / CA_CERT}",
            f"certfile {folder / SERVER_CERT}",
            f"keyfile {folder / SERVER_KEY}",
            "tls_version tlsv1.2",
        ]
    else:
        lines.append("# WITHOUT TLS: passwords and readings cross the network in clear. A lab only.")
    if plan.local_port is not None:
        lines += [
            "",
            "# --- the gateway and the broker's administrator, on this host only ---",
            f"listener {plan.local_port} 127.0.0.1",
        ]
    return "\n".join(lines) + "\n"


# -- gateway.env --------------------------------------------------------------------------------------


def gateway_env(plan: BrokerPlan, folder: Path, admin_password: str, gateway_password: str) -> str:
    """The gateway's broker settings (docs/configuration.md), both passwords included."""
    if plan.local_port is not None:
        host, port, tls = "127.0.0.1", plan.local_port, False
    else:
        host, port, tls = plan.hosts[0], plan.port, plan.tls
    scheme = "mqtts" if tls else "mqtt"
    lines = [
        "# The gateway's side of the broker in " + str(folder) + " (homewatch admin broker init).",
        "# Secrets: keep this file 0600, for the gateway's environment (systemd EnvironmentFile=).",
    ]
    lines += [
        f"HOMEWATCH_MQTT_URL={scheme}://{_url_host(host)}:{port}",
        f"HOMEWATCH_MQTT_HOST={host}",
        f"HOMEWATCH_MQTT_PORT={port}",
        f"HOMEWATCH_MQTT_TLS={'true' if tls else 'false'}",
        *([f"HOMEWATCH_MQTT_CA_FILE={folder / CA_CERT}"] if tls else []),
        f"HOMEWATCH_MQTT_USERNAME={GATEWAY_USERNAME}",
        f"HOMEWATCH_MQTT_PASSWORD={gateway_password}",
        f"HOMEWATCH_BROKER_ADMIN_USERNAME={plan.admin_username}",
        f"HOMEWATCH_BROKER_ADMIN_PASSWORD={admin_password}",
        "# What an enrolled hub is told: the broker as the homes reach it.",
        f"HOMEWATCH_HUB_MQTT_HOST={plan.hosts[0]}",
        f"HOMEWATCH_HUB_MQTT_PORT={plan.port}",
    ]
    if plan.tls:
        lines.append(f"HOMEWATCH_HUB_CA_FILE={folder / CA_CERT}")
    return "\n".join(lines) + "\n"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# -- certificates ---------------------------------------------------------------------------------------


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def certificate_authority(name: str, now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA that signs the broker's certificate (and only server certificates: path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "homewatch"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"homewatch broker CA {name}"[:64]),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def server_certificate(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hosts: tuple[str, ...], now: datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The broker's certificate for ``hosts`` (DNS names and IP addresses), signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(h)) if _is_address(h) else x509.DNSName(h) for h in hosts
    ]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


# -- writing ------------------------------------------------------------------------------------------


def write_broker(plan: BrokerPlan, *, force: bool = False, now: datetime | None = None) -> BrokerFiles:
    """Write the broker's files into ``plan.out_dir`` (made if missing). BrokerSetupError, with nothing
    written, when the plan is wrong or a file exists already and ``force`` is not given."""
    plan.check()
    folder = plan.out_dir.resolve()
    existing = [name for name in plan.file_names() if (folder / name).exists()]
    if existing and not force:
        raise BrokerSetupError(
            f"{folder} holds {', '.join(existing)} already; nothing written (--force replaces them, and "
            "with them every account and password of that broker)"
        )
    now = now or datetime.now(UTC)
    admin_password = secrets.token_urlsafe(PASSWORD_BYTES)
    gateway_password = secrets.token_urlsafe(PASSWORD_BYTES)
    contents: dict[str, tuple[bytes, int]] = {
        CONF: (mosquitto_conf(plan, folder, now).encode(), PUBLIC),
        ACCOUNTS: (
            orjson.dumps(
                accounts_file(plan.admin_username, admin_password, gateway_password),
                option=orjson.OPT_INDENT_2,
            ),
            SECRET,
        ),
        ENV: (gateway_env(plan, folder, admin_password, gateway_password).encode(), SECRET),
    }
    if plan.tls:
        ca_cert, ca_key = certificate_authority(plan.hosts[0], now)
        cert, key = server_certificate(ca_cert, ca_key, plan.hosts, now)
        pem = serialization.Encoding.PEM
        contents[CA_CERT] = (ca_cert.public_bytes(pem), PUBLIC)
        contents[CA_KEY] = (_pem_key(ca_key), SECRET)
        contents[SERVER_CERT] = (cert.public_bytes(pem), PUBLIC)
        contents[SERVER_KEY] = (_pem_key(key), SECRET)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, (data, mode) in contents.items():
            _write(folder / name, data, mode)
    except OSError as exc:
        raise BrokerSetupError(f"cannot write {exc.filename or folder}: {exc.strerror or exc}") from exc
    return BrokerFiles(
        tuple(folder / name for name in contents),
        folder / CONF,
        folder / ACCOUNTS,
        folder / ENV,
        folder / CA_CERT if plan.tls else None,
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` with ``mode`` from its first byte (a secret is never readable by others, not even
    for a moment), replacing it atomically."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)  # the umask may have taken bits off a public file
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def default_host() -> str:
    """This machine's fully qualified name: the default --host."""
    return socket.getfqdn()
