"""Enrolling homes: municipalities, care teams, patients, hubs (with their broker accounts) and devices.

One function per thing an administrator does; ``homewatch admin`` and the administrators' pages call
the same ones. Each checks its input first (ids are FHIR ids, a municipality code four digits, a
Bluetooth address ``AA:BB:CC:DD:EE:FF``, a device kind one the hub reads), changes the database in one
transaction with an audit row (who: ``by``), and then tells the broker. What is wrong is one line in an
``AdministrationError`` that says what to do, in the reader's language on a page and English at the
command line (``gateway.api.i18n``); nothing is changed then.

Scope: ``within`` is the one municipality a caller's administrator may change (a municipality admin's
page); a hub, device or patient of another municipality then looks unknown. None (the command line, a
system administrator) is any municipality.

Hubs and devices are never deleted (migration 0015). Enrolling a hub again issues new credentials: the
broker gets a new password, the old one stops working, and the new kit has it. A revoked hub id is never
used again: its readings stay attributed to it, and a new hub in the same home gets a new id. A hub
is enrolled for one patient for its life, for the same reason; others of the home join it as residents
(``gateway.administration.household``), and a device is assigned to any resident. Revoking marks the
hub in the database first and commits, so the gateway refuses the hub at once, then deletes its broker
account (which disconnects it) and clears its retained config; when the broker is away the revocation
stands at the gateway, and revoking again (idempotent) finishes the broker's part.

Assigning or removing a device counts one change of the hub's configuration (``config_version``) and
publishes the retained config (``gateway.hub_config.publish_hub_config``); when the broker is away the
gateway's config job publishes it later.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from fhir_contract.limits import MAX_BUNDLE_ENTRIES
from gateway.administration.checks import NAME_CHARS as _NAME_CHARS
from gateway.administration.checks import checked_by as _by
from gateway.administration.checks import checked_id as _id
from gateway.administration.checks import fail as _fail
from gateway.administration.errors import AdministrationError
from gateway.administration.kit import (
    CA_FILE,
    DEFAULT_OUTBOX_PATH,
    HUB_TOML,
    PASSWORD_FILE,
    PIN_FILE,
    KitDevice,
    KitSpec,
    render_hub_toml,
)
from gateway.administration.transactions import committed as _committed
from gateway.api.i18n import gettext as _
from gateway.broker_accounts import BrokerAccounts, BrokerAccountsError
from gateway.broker_session import BrokerUnavailable
from gateway.hub_config import SETTINGS_KEYS, ConfigPublisher, publish_hub_config
from gateway.settings import GatewaySettings
from gateway.store import administration as store
from gateway.store import household

# The device kinds a hub reads (``edge_agent.config.DeviceKind``; the server imports nothing of the hub,
# a test keeps the two lists equal).
DEVICE_KINDS: tuple[str, ...] = (
    "blood-pressure-cuff",
    "pulse-oximeter",
    "scale",
    "thermometer",
    "heart-rate-monitor",
    "continuous-oximeter",
    "body-composition-scale",
    "glucose-meter",
    "cgm",
)
# What an administrator may call a kind, besides its own name.
KIND_ALIASES: dict[str, str] = {
    "blood-pressure": "blood-pressure-cuff",
    "blood-pressure-monitor": "blood-pressure-cuff",
    "oximeter": "pulse-oximeter",
    "weight": "scale",
    "weight-scale": "scale",
    "body-composition": "body-composition-scale",
    "body-composition-analyzer": "body-composition-scale",
    "heart-rate": "heart-rate-monitor",
    "glucose": "glucose-meter",
    "continuous-glucose-monitor": "cgm",
}
# The conditions the disease rules and the risk model know (``models.features.CONDITIONS``), and the
# short names an administrator may type.
CONDITIONS: tuple[str, ...] = ("heart-failure", "copd", "diabetes", "frailty")
CONDITION_ALIASES: dict[str, str] = {"hf": "heart-failure"}

Outcome = Literal["added", "updated", "unchanged"]

# Danish municipality codes are four digits (0101 København, 0147 Frederiksberg).
_MUNICIPALITY_CODE = re.compile(r"[0-9]{4}")
_BLUETOOTH_ADDRESS = re.compile(r"[0-9A-F]{2}(:[0-9A-F]{2}){5}")
# A phone number as people write it: an optional +, then digits with spaces or dashes between.
_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,22}[0-9]")
_PASSWORD_BYTES = 24  # secrets.token_urlsafe(24): 32 characters, 192 random bits
# A device that should report less often than this is no device of home monitoring: a typo.
_LONGEST_INTERVAL = timedelta(days=31)


@dataclass(frozen=True, slots=True)
class HubKit:
    """What ``hub enroll`` writes into the hub's folder (``write_kit``)."""

    municipality_id: str
    hub_id: str
    patient_id: str
    hub_toml: str  # complete hub.toml text, devices included, ready for `homewatch edge run --config`
    password: str | None  # None when the broker keeps no accounts (embedded anonymous broker)
    ca_certificate: bytes | None  # settings.hub_ca_file's bytes, or None (no CA of our own)
    # Whether this enrolment created the hub (False: it was enrolled before and got new credentials).
    new: bool = True
    # The household's PIN for the patient view (new at every enrolment, kept nowhere but the kit).
    pin: str | None = None


def new_household_pin() -> str:
    """Six random digits: what the household types on the hub's patient view (locked after 5 wrong)."""
    return f"{secrets.randbelow(10**6):06d}"


def kit_files(kit: HubKit) -> list[tuple[str, bytes, int]]:
    """The kit's files as (name, bytes, mode): ``hub.toml``, the broker password and the household PIN
    (both 0600) when there are, and the broker's CA certificate when it is ours."""
    files: list[tuple[str, bytes, int]] = [(HUB_TOML, kit.hub_toml.encode(), 0o644)]
    if kit.password is not None:
        files.append((PASSWORD_FILE, kit.password.encode() + b"\n", 0o600))
    if kit.pin is not None:
        files.append((PIN_FILE, kit.pin.encode() + b"\n", 0o600))
    if kit.ca_certificate is not None:
        files.append((CA_FILE, kit.ca_certificate, 0o644))
    return files


@dataclass(frozen=True, slots=True)
class DeviceAssignment:
    """What ``assign_device`` did: the device's id, whether anything changed, whether the hub's new
    config reached the broker (False: the broker was away or none was given; the config job sends it)."""

    device_id: str
    outcome: Outcome
    published: bool


@dataclass(frozen=True, slots=True)
class Revocation:
    """What ``revoke_hub`` did: when the hub was revoked, whether before this call, whether its broker
    account was deleted (None: the broker keeps no accounts) and its retained config cleared."""

    hub_id: str
    revoked_at: datetime
    already: bool
    account_removed: bool | None
    config_cleared: bool


# --- checks ---------------------------------------------------------------------------------------


def _municipality_code(value: str) -> str:
    if _MUNICIPALITY_CODE.fullmatch(value) is None:
        raise _fail(_("%(value)r is not a municipality code: four digits, e.g. 0101.", value=value))
    return value


def _text(value: str) -> str:
    text = " ".join(value.split())
    if not text or len(text) > _NAME_CHARS or not text.isprintable():
        raise _fail(_("The name must be 1 to %(chars)d printable characters.", chars=_NAME_CHARS))
    return text


def _within(within: str | None, municipality_id: str) -> None:
    if within is not None and within != municipality_id:
        raise _fail(_("There is no municipality %(municipality)s.", municipality=municipality_id))


def device_kind(value: str) -> str:
    """The hub's name of a device kind given by its name or an alias (``blood-pressure``)."""
    kind = KIND_ALIASES.get(value.strip().lower(), value.strip().lower())
    if kind not in DEVICE_KINDS:
        raise _fail(
            _("Unknown device kind %(kind)r; one of %(kinds)s.", kind=value, kinds=", ".join(DEVICE_KINDS))
        )
    return kind


def bluetooth_address(value: str) -> str:
    """``value`` as a Bluetooth address in capitals (``AA:BB:CC:DD:EE:FF``)."""
    address = value.strip().upper()
    if _BLUETOOTH_ADDRESS.fullmatch(address) is None:
        raise _fail(_("%(value)r is not a Bluetooth address: six hex pairs, AA:BB:CC:DD:EE:FF.", value=value))
    return address


def condition(value: str) -> str:
    """A condition's name given by its name or short name (``hf``)."""
    name = CONDITION_ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in CONDITIONS:
        names = ", ".join(("hf", *CONDITIONS))
        raise _fail(
            _("Unknown condition %(condition)r; one of %(conditions)s.", condition=value, conditions=names)
        )
    return name


def _phone(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    phone = " ".join(value.split())
    if _PHONE.fullmatch(phone) is None:
        raise _fail(
            _("%(value)r is not a phone number (digits, spaces, an optional leading +).", value=value)
        )
    return phone


def _birth_date(value: date | None, today: date) -> date | None:
    if value is not None and not date(1900, 1, 1) <= value <= today:
        raise _fail(_("The birth date %(date)s is not between 1900-01-01 and today.", date=value.isoformat()))
    return value


def _interval(value: timedelta | None) -> timedelta | None:
    if value is not None and not timedelta(0) < value <= _LONGEST_INTERVAL:
        days = _LONGEST_INTERVAL.days
        raise _fail(_("The expected interval must be more than 0 and at most %(days)d days.", days=days))
    return value


def default_device_id(address: str) -> str:
    """The id a device gets when the administrator names none: from its Bluetooth address, which is the
    physical device's own (so assigning it again finds the same device)."""
    return "dev-" + address.replace(":", "").lower()


# --- municipalities, care teams, patients ---------------------------------------------------------


def add_municipality(
    conn: psycopg.Connection[Any],
    code: str,
    name: str,
    *,
    by: str,
    within: str | None = None,
    client: str | None = None,
) -> Outcome:
    """Add the municipality (with its default care team, id = its code) or rename it."""
    code, name, by = _municipality_code(code), _text(name), _by(by)
    _within(within, code)
    with conn.transaction():
        known = store.municipality_name(conn, code)
        if known == name:
            return "unchanged"
        store.upsert_municipality(conn, code, name)
        store.audit_administration(
            conn, by, code, "municipality-add", [None], f"{code} {name}", client=client
        )
    return "added" if known is None else "updated"


def add_care_team(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    team_id: str,
    name: str,
    *,
    by: str,
    within: str | None = None,
    client: str | None = None,
) -> Outcome:
    """Add a care team to the municipality or rename it (a team id of another municipality is taken)."""
    municipality_id, team_id = _municipality_code(municipality_id), _id(team_id)
    name, by = _text(name), _by(by)
    _within(within, municipality_id)
    with conn.transaction():
        _known_municipality(conn, municipality_id)
        known = store.care_team(conn, team_id)
        if known is not None and known[0] != municipality_id:
            raise _fail(_("Care team id %(team)s is taken: choose another.", team=team_id))
        if known == (municipality_id, name):
            return "unchanged"
        store.upsert_care_team(conn, municipality_id, team_id, name)
        store.audit_administration(
            conn, by, municipality_id, "care-team-add", [None], f"{team_id} {name}", client=client
        )
    return "added" if known is None else "updated"


def _known_municipality(conn: psycopg.Connection[Any], municipality_id: str) -> None:
    if store.municipality_name(conn, municipality_id) is None:
        raise _fail(_("There is no municipality %(municipality)s.", municipality=municipality_id))


def add_patient(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    *,
    name: str,
    care_team: str | None,
    phone: str | None,
    conditions: Sequence[str],
    birth_date: date | None,
    by: str,
    within: str | None = None,
    client: str | None = None,
) -> Outcome:
    """Enrol the patient, or update what was enrolled (adding them again updates). ``care_team`` None is
    the municipality's default team; ``conditions`` by name or short name (``hf``)."""
    municipality_id, patient_id = _municipality_code(municipality_id), _id(patient_id)
    team = None if care_team is None else _id(care_team)
    record = store.PatientRecord(
        municipality_id=municipality_id,
        id=patient_id,
        name=_text(name),
        care_team_id=municipality_id if team is None else team,
        phone=_phone(phone),
        conditions=tuple(dict.fromkeys(condition(c) for c in conditions)),
        birth_date=_birth_date(birth_date, date.today()),
    )
    by = _by(by)
    _within(within, municipality_id)
    with conn.transaction():
        _known_municipality(conn, municipality_id)
        known_team = store.care_team(conn, record.care_team_id)
        if known_team is None or known_team[0] != municipality_id:
            raise _fail(
                _(
                    "Municipality %(municipality)s has no care team %(team)s.",
                    municipality=municipality_id,
                    team=record.care_team_id,
                )
            )
        known = store.patient_record(conn, patient_id)
        if known is not None and known.municipality_id != municipality_id:
            raise _fail(_("Patient id %(patient)s is taken: choose another.", patient=patient_id))
        if known == record:
            return "unchanged"
        store.upsert_patient(conn, record)
        action = "patient-add" if known is None else "patient-update"
        store.audit_administration(
            conn, by, municipality_id, action, [patient_id], record.care_team_id, client=client
        )
    return "added" if known is None else "updated"


# --- hubs -----------------------------------------------------------------------------------------


def _hub(conn: psycopg.Connection[Any], hub_id: str, within: str | None) -> store.HubRecord:
    hub = store.hub_record(conn, hub_id)
    if hub is None or (within is not None and hub.municipality_id != within):
        raise _fail(_("There is no hub %(hub)s.", hub=hub_id))
    return hub


def _revoked(hub: store.HubRecord) -> AdministrationError:
    assert hub.revoked_at is not None
    return _fail(
        _(
            "Hub %(hub)s was revoked on %(date)s: a revoked hub id is never used again (its readings stay"
            " attributed to it); enrol the home's hub under a new id.",
            hub=hub.id,
            date=f"{hub.revoked_at:%Y-%m-%d}",
        )
    )


# What the broker's adapters raise when the broker refuses or is away.
_BROKER_FAILURES = (BrokerAccountsError, BrokerUnavailable, OSError)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def enroll_hub(
    conn: psycopg.Connection[Any],
    settings: GatewaySettings,
    municipality_id: str,
    hub_id: str,
    patient_id: str,
    *,
    by: str,
    accounts: BrokerAccounts | None,
    within: str | None = None,
    client: str | None = None,
    outbox_path: str = DEFAULT_OUTBOX_PATH,
) -> HubKit:
    """Enrol the patient's hub, or issue new credentials to it: a new broker password every time (the
    old one stops working), and the kit ``homewatch edge run`` is configured from. ``accounts`` None:
    the broker keeps no accounts (the embedded, anonymous broker) and the hub connects without one."""
    municipality_id, hub_id = _municipality_code(municipality_id), _id(hub_id)
    patient_id, by = _id(patient_id), _by(by)
    _within(within, municipality_id)
    ca_certificate = _ca_certificate(settings)
    password = secrets.token_urlsafe(_PASSWORD_BYTES) if accounts is not None else None
    with conn.transaction():
        _known_municipality(conn, municipality_id)
        patient = store.patient_record(conn, patient_id)
        if patient is None or patient.municipality_id != municipality_id:
            raise _fail(
                _(
                    "Municipality %(municipality)s has no patient %(patient)s: add the patient first.",
                    municipality=municipality_id,
                    patient=patient_id,
                )
            )
        hub = store.hub_record(conn, hub_id)
        if hub is None:
            store.insert_hub(conn, municipality_id, hub_id, patient_id)
        elif hub.municipality_id != municipality_id:
            raise _fail(_("Hub id %(hub)s is taken: choose another.", hub=hub_id))
        elif hub.revoked_at is not None:
            raise _revoked(hub)
        elif hub.patient_id != patient_id:
            raise _fail(
                _(
                    "Hub %(hub)s serves patient %(patient)s: a hub serves one patient (its readings stay"
                    " theirs); give the other home's hub a new id.",
                    hub=hub_id,
                    patient=hub.patient_id,
                )
            )
        store.record_credentials(conn, hub_id, hub_id if accounts is not None else None)
        # The enrolled patient's own devices only: a shared device or another resident's, read before
        # the retained config told the hub whose it is, would be taken for the enrolled patient's.
        shared = household.hub_device_users(conn, hub_id)
        devices = [
            d for d in store.hub_devices(conn, hub_id) if d.patient_id == patient_id and d.id not in shared
        ]
        action = "hub-enrol" if hub is None else "hub-credentials"
        store.audit_administration(conn, by, municipality_id, action, [patient_id], hub_id, client=client)
        if accounts is not None and password is not None:
            try:  # in the transaction: a broker that refuses leaves the database as it was
                accounts.ensure_hub(hub_id, password)
            except _BROKER_FAILURES as exc:
                raise _fail(
                    _(
                        "The broker did not take hub %(hub)s's account, nothing changed: %(reason)s",
                        hub=hub_id,
                        reason=_one_line(exc),
                    )
                ) from exc
    spec = KitSpec(
        municipality_id=municipality_id,
        hub_id=hub_id,
        patient_id=patient_id,
        devices=[KitDevice(d.id, d.address or "", d.kind) for d in devices],
        mqtt_host=settings.hub_mqtt_host or settings.mqtt_host,
        mqtt_port=settings.hub_mqtt_port or settings.mqtt_port,
        username=hub_id if accounts is not None else None,
        tls=ca_certificate is not None or settings.mqtt_tls,
        ca=ca_certificate is not None,
        timezone=settings.time_zone,
        outbox_path=outbox_path,
        patient_view=True,
    )
    hub_toml = render_hub_toml(spec)
    return HubKit(
        municipality_id,
        hub_id,
        patient_id,
        hub_toml,
        password,
        ca_certificate,
        hub is None,
        new_household_pin(),
    )


def _ca_certificate(settings: GatewaySettings) -> bytes | None:
    if settings.hub_ca_file is None:
        return None
    try:
        return settings.hub_ca_file.read_bytes()
    except OSError as exc:
        raise _fail(
            _(
                "The hubs' CA certificate (HOMEWATCH_HUB_CA_FILE) %(path)s cannot be read: %(reason)s",
                path=str(settings.hub_ca_file),
                reason=exc.strerror or str(exc),
            )
        ) from exc


def write_kit(kit: HubKit, out_dir: Path) -> list[Path]:
    """Write the kit into ``out_dir`` (created): ``hub.toml``, ``mqtt-password`` (mode 0600) when the hub
    has a password, ``patient-view-pin`` (0600) with the household's PIN, ``ca.crt`` when the broker's CA
    is ours (``kit_files``). Each file is replaced whole (written aside,
    then renamed), so a hub never reads half a kit. The paths written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [_replace(out_dir / name, data, mode) for name, data, mode in kit_files(kit)]
    except OSError as exc:
        raise _fail(
            _(
                "Cannot write the hub's files into %(folder)s: %(reason)s",
                folder=str(out_dir),
                reason=exc.strerror or str(exc),
            )
        ) from exc
    return written


def _replace(path: Path, data: bytes, mode: int) -> Path:
    aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(aside, mode)  # whatever the umask took away
        os.replace(aside, path)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    return path


# --- devices --------------------------------------------------------------------------------------


def assign_device(
    conn: psycopg.Connection[Any],
    settings: GatewaySettings,
    hub_id: str,
    patient_id: str,
    kind: str,
    address: str,
    *,
    by: str,
    device_id: str | None = None,
    expected_interval: timedelta | None = None,
    publisher: ConfigPublisher | None,
    within: str | None = None,
    client: str | None = None,
) -> str:
    """Assign a device to the patient's hub; its id (see ``assign_device_outcome``)."""
    return assign_device_outcome(
        conn,
        settings,
        hub_id,
        patient_id,
        kind,
        address,
        by=by,
        device_id=device_id,
        expected_interval=expected_interval,
        publisher=publisher,
        within=within,
        client=client,
    ).device_id


def assign_device_outcome(
    conn: psycopg.Connection[Any],
    settings: GatewaySettings,
    hub_id: str,
    patient_id: str,
    kind: str,
    address: str,
    *,
    by: str,
    device_id: str | None = None,
    expected_interval: timedelta | None = None,
    publisher: ConfigPublisher | None,
    within: str | None = None,
    client: str | None = None,
) -> DeviceAssignment:
    """Assign a device (its kind by name or alias, its Bluetooth address) to the patient's hub and
    publish the hub's config. Without ``device_id`` the hub's device with that address (assigned, else
    removed last) keeps its id, else a new device is named from its address. Assigning the same device
    again is a no-op (``unchanged``); a device of another hub moves (both hubs' configs change); a
    removed one returns.
    ``expected_interval``: how long it may go without a reading before the fleet view calls it silent
    (None: its kind's default, ``gateway.fleet.silence_window``)."""
    hub_id, patient_id, by = _id(hub_id), _id(patient_id), _by(by)
    kind, address = device_kind(kind), bluetooth_address(address)
    wanted_id = None if device_id is None else _id(device_id)
    interval = _interval(expected_interval)
    with _committed(conn):
        hub = _hub(conn, hub_id, within)
        if hub.revoked_at is not None:
            raise _revoked(hub)
        if patient_id not in {r.patient_id for r in household.hub_residents(conn, hub_id)}:
            raise _fail(
                _(
                    "Hub %(hub)s serves patient %(patient)s, not %(other)s.",
                    hub=hub_id,
                    patient=hub.patient_id,
                    other=patient_id,
                )
            )
        same_address = store.hub_device_at(conn, hub_id, address)
        if wanted_id is None:
            wanted_id = same_address.id if same_address is not None else default_device_id(address)
        elif same_address is not None and same_address.removed_at is None and same_address.id != wanted_id:
            raise _fail(
                _(
                    "Address %(address)s is device %(device)s on hub %(hub)s: remove it first, or give its"
                    " id %(device)s.",
                    address=address,
                    device=same_address.id,
                    hub=hub_id,
                )
            )
        known = store.device_record(conn, wanted_id)
        if known is not None and known.municipality_id != hub.municipality_id:
            raise _fail(_("Device id %(device)s is taken: give the device another id.", device=wanted_id))
        device = store.DeviceRecord(
            municipality_id=hub.municipality_id,
            id=wanted_id,
            hub_id=hub_id,
            patient_id=patient_id,
            kind=kind,
            address=address,
            expected_interval=interval,
            assigned_at=known.assigned_at if known is not None else datetime.min,
            removed_at=None,
        )
        if known == device:
            return DeviceAssignment(wanted_id, "unchanged", False)
        store.upsert_device(conn, device)
        store.bump_config_version(conn, hub_id)
        changed = [hub_id]
        moved_from = known.hub_id if known is not None and known.removed_at is None else None
        if moved_from is not None and moved_from != hub_id:
            store.bump_config_version(conn, moved_from)
            previous = store.hub_record(conn, moved_from)
            if previous is not None and previous.revoked_at is None:  # a revoked hub gets no config
                changed.append(moved_from)
        detail = f"{wanted_id} {kind} {address} on {hub_id}" + (
            f" (from {moved_from})" if moved_from != hub_id and moved_from else ""
        )
        store.audit_administration(
            conn, by, hub.municipality_id, "device-assign", [patient_id], detail, client=client
        )
    published = [publish_hub_config(conn, publisher, hub.municipality_id, h) for h in changed]
    outcome: Outcome = "added" if known is None or known.removed_at is not None else "updated"
    return DeviceAssignment(wanted_id, outcome, published[0])


def remove_device(
    conn: psycopg.Connection[Any],
    settings: GatewaySettings,
    device_id: str,
    *,
    by: str,
    publisher: ConfigPublisher | None,
    within: str | None = None,
    client: str | None = None,
) -> bool:
    """Take the device off its hub (ingest refuses its readings from now on) and publish the hub's
    config; False when it was removed already (nothing changes)."""
    device_id, by = _id(device_id), _by(by)
    with _committed(conn):
        device = store.device_record(conn, device_id)
        if device is None or (within is not None and device.municipality_id != within):
            raise _fail(_("There is no device %(device)s.", device=device_id))
        if store.remove_device(conn, device_id) is None:
            return False
        store.bump_config_version(conn, device.hub_id)
        detail = f"{device_id} {device.kind} {device.address} from {device.hub_id}"
        store.audit_administration(
            conn, by, device.municipality_id, "device-remove", [device.patient_id], detail, client=client
        )
        hub = store.hub_record(conn, device.hub_id)
    if hub is not None and hub.revoked_at is None:
        publish_hub_config(conn, publisher, device.municipality_id, device.hub_id)
    return True


@dataclass(frozen=True, slots=True)
class HubSettings:
    """What an administrator may set for a hub besides its devices (``gateway.hub_config.SETTINGS_KEYS``):
    None leaves a setting as it is; ``reset`` names settings given back to the hub's own file."""

    status_interval_s: float | None = None
    timezone: str | None = None
    bundle_size: int | None = None
    max_connections: int | None = None
    reset: tuple[str, ...] = ()


# The ranges the hub accepts (edge_agent.remote_config.RemoteConfig): a value outside them would make the
# hub refuse the whole config. A status more often than every 10 s is no use to anyone and costs the
# broker (docs/scaling.md); one a day would leave a hub offline for days before the fleet says so.
MIN_STATUS_INTERVAL_S, MAX_STATUS_INTERVAL_S = 10.0, 3_600.0
MAX_HUB_CONNECTIONS = 32


def _hub_setting_changes(wanted: HubSettings) -> dict[str, Any]:
    changes: dict[str, Any] = {name: None for name in wanted.reset}
    unknown = sorted(set(wanted.reset) - set(SETTINGS_KEYS))
    if unknown:
        raise _fail(
            _(
                "%(name)s is not a hub setting; one of %(names)s.",
                name=unknown[0],
                names=", ".join(SETTINGS_KEYS),
            )
        )
    if wanted.status_interval_s is not None:
        if not MIN_STATUS_INTERVAL_S <= wanted.status_interval_s <= MAX_STATUS_INTERVAL_S:
            raise _fail(
                _(
                    "The status interval must be %(low)d to %(high)d seconds.",
                    low=MIN_STATUS_INTERVAL_S,
                    high=MAX_STATUS_INTERVAL_S,
                )
            )
        changes["status_interval_s"] = wanted.status_interval_s
    if wanted.timezone is not None:
        try:
            ZoneInfo(wanted.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise _fail(
                _("%(zone)r is not a time zone, e.g. Europe/Copenhagen.", zone=wanted.timezone)
            ) from None
        changes["timezone"] = wanted.timezone
    if wanted.bundle_size is not None:
        if not 1 <= wanted.bundle_size <= MAX_BUNDLE_ENTRIES:
            raise _fail(_("The bundle size must be 1 to %(high)d readings.", high=MAX_BUNDLE_ENTRIES))
        changes["bundle_size"] = wanted.bundle_size
    if wanted.max_connections is not None:
        if not 1 <= wanted.max_connections <= MAX_HUB_CONNECTIONS:
            raise _fail(_("The connections must be 1 to %(high)d.", high=MAX_HUB_CONNECTIONS))
        changes["max_connections"] = wanted.max_connections
    return changes


def configure_hub(
    conn: psycopg.Connection[Any],
    settings: GatewaySettings,
    hub_id: str,
    wanted: HubSettings,
    *,
    by: str,
    publisher: ConfigPublisher | None,
    within: str | None = None,
    client: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Set the hub's remote settings (its status interval, time zone, bundle size, connections) and publish
    its config, so the hub applies them without a restart; the settings now and whether they changed."""
    hub_id, by = _id(hub_id), _by(by)
    changes = _hub_setting_changes(wanted)
    with _committed(conn):
        hub = _hub(conn, hub_id, within)
        if hub.revoked_at is not None:
            raise _revoked(hub)
        changed = bool(changes) and store.merge_hub_settings(conn, hub_id, changes)
        if changed:
            store.bump_config_version(conn, hub_id)
            detail = f"{hub_id} " + ", ".join(f"{k}={v}" for k, v in sorted(changes.items()))
            store.audit_administration(
                conn, by, hub.municipality_id, "hub-configure", [hub.patient_id], detail, client=client
            )
        now = store.hub_settings(conn, hub_id)
    if changed:
        publish_hub_config(conn, publisher, hub.municipality_id, hub_id)
    return now, changed


def revoke_hub(
    conn: psycopg.Connection[Any],
    settings: GatewaySettings,
    hub_id: str,
    *,
    by: str,
    accounts: BrokerAccounts | None,
    publisher: ConfigPublisher | None,
    within: str | None = None,
    client: str | None = None,
) -> Revocation:
    """Take the hub out of service: the gateway first (committed, so ingest refuses it at once), then the
    broker (its account deleted, which disconnects it; its retained config cleared). Revoking again is
    safe: the first revocation stands and the broker's part is done again."""
    hub_id, by = _id(hub_id), _by(by)
    with _committed(conn):
        hub = _hub(conn, hub_id, within)
        revoked_at = store.revoke_hub(conn, hub_id, by)
        if revoked_at is not None:
            store.audit_administration(
                conn, by, hub.municipality_id, "hub-revoke", [hub.patient_id], hub_id, client=client
            )
    already = revoked_at is None
    when = hub.revoked_at if revoked_at is None else revoked_at
    assert when is not None
    account_removed: bool | None = None
    cleared = False
    try:
        if accounts is not None:
            account_removed = accounts.remove_hub(hub_id)
        if publisher is not None:
            publisher.clear(hub.municipality_id, hub_id)
            cleared = True
    except _BROKER_FAILURES as exc:
        raise _fail(
            _(
                "Hub %(hub)s is revoked at the gateway, which refuses it already, but the broker was not"
                " told (%(reason)s): revoke it again when the broker is back.",
                hub=hub_id,
                reason=_one_line(exc),
            )
        ) from exc
    return Revocation(hub_id, when, already, account_removed, cleared)
