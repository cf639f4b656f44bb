"""The text of an enrolled hub's ``hub.toml``: a pure function of what the gateway knows about the hub.

``homewatch admin hub enroll`` writes it into the hub's folder with the password file and the CA
certificate (``gateway.administration.homes.write_kit``); ``homewatch edge run --config DIR/hub.toml``
reads it (``edge_agent.config.HubConfig.from_toml``, which takes relative paths from the file's folder,
so the folder can be copied to the hub as it is). Every value was checked before it got here (ids are
FHIR ids, addresses Bluetooth addresses, kinds the hub's): strings are still written as TOML basic
strings with every special character escaped, so no value can break out of its quotes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

# Where a hub keeps its outbox by default: systemd's StateDirectory=homewatch (deploy/hub.example.toml).
DEFAULT_OUTBOX_PATH = "/var/lib/homewatch/outbox.sqlite3"
# The names of the kit's files in the hub's folder; hub.toml names them relative to itself.
HUB_TOML = "hub.toml"
PASSWORD_FILE = "mqtt-password"
CA_FILE = "ca.crt"
# The household's PIN for the patient view the hub serves at home (edge_agent.patient_view), mode 0600.
PIN_FILE = "patient-view-pin"


@dataclass(frozen=True, slots=True)
class KitDevice:
    """A device the hub reads: its FHIR Device id, Bluetooth address and kind (the hub's vocabulary)."""

    id: str
    address: str
    kind: str


@dataclass(frozen=True, slots=True)
class KitSpec:
    """What goes into a hub's ``hub.toml``."""

    municipality_id: str
    hub_id: str
    patient_id: str
    devices: Sequence[KitDevice]
    mqtt_host: str
    mqtt_port: int
    # The hub's broker username (its hub id on the shipped access rules); None: it connects anonymously.
    username: str | None
    # Whether the hub connects with TLS, and whether the broker's CA certificate is in the kit (then the
    # hub trusts only it; without it, the system's trust store).
    tls: bool
    ca: bool = False
    timezone: str = "Europe/Copenhagen"
    outbox_path: str = DEFAULT_OUTBOX_PATH
    # Whether the hub serves the patient view, its PIN in PIN_FILE beside hub.toml.
    patient_view: bool = False


def _string(value: str) -> str:
    # JSON's escapes (\" \\ \n \uXXXX) are all TOML basic-string escapes, and json.dumps never writes
    # the one JSON-only escape (\/).
    return json.dumps(value, ensure_ascii=False)


def _devices(devices: Sequence[KitDevice]) -> list[str]:
    if not devices:  # assigned later: the retained config brings them
        return ["devices = []"]
    return [
        "devices = [",
        *(
            f"  {{ id = {_string(d.id)}, address = {_string(d.address)}, kind = {_string(d.kind)} }},"
            for d in devices
        ),
        "]",
    ]


def render_hub_toml(spec: KitSpec) -> str:
    """The complete ``hub.toml`` for ``spec``, devices included, ready for ``homewatch edge run``."""
    lines = [
        f"# homewatch hub {spec.hub_id} of municipality {spec.municipality_id}, written by"
        " `homewatch admin hub enroll`.",
        "# `homewatch edge run --config hub.toml`. Relative paths are taken from this file's folder. The",
        "# gateway sends device changes in the retained config; enrolling again writes a new password.",
        f"municipality = {_string(spec.municipality_id)}",
        f"hub_id = {_string(spec.hub_id)}",
        f"patient_id = {_string(spec.patient_id)}",
        f"timezone = {_string(spec.timezone)}",
        f"outbox_path = {_string(spec.outbox_path)}",
        "",
        *_devices(spec.devices),
        "",
        "[mqtt]",
        f"host = {_string(spec.mqtt_host)}",
        f"port = {spec.mqtt_port}",
        "mqtt5 = true",
        f"tls = {'true' if spec.tls else 'false'}",
    ]
    if spec.tls and spec.ca:
        lines.append(f"ca_file = {_string(CA_FILE)}")
    if spec.username is not None:
        lines += [
            f"username = {_string(spec.username)}",
            f"password_file = {_string(PASSWORD_FILE)}   # mode 0600: never the password here",
        ]
    if spec.patient_view:
        lines += [
            "",
            "# The patient view on the home network (http://<hub>:8080/), behind the household's PIN.",
            "[patient_view]",
            "enabled = true",
            f"pin_file = {_string(PIN_FILE)}   # mode 0600: the PIN the household was given",
        ]
    return "\n".join(lines) + "\n"
