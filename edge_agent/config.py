"""A hub's configuration: who it reports for, which devices belong to the patient, where to send.

Pydantic models so a bad configuration file fails at start-up with a message naming the field
(:meth:`HubConfig.from_toml` reads a TOML file with the stdlib ``tomllib``; unknown keys are errors, so
a typo never passes silently). What each device kind subscribes to, whether it bonds or keeps a history,
is data in :mod:`edge_agent.ble.profiles`; what the server may change remotely is
:mod:`edge_agent.remote_config`.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from datetime import time as dt_time
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge_agent.outbox.sqlite_outbox import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS
from fhir_contract.limits import MAX_BUNDLE_ENTRIES
from fhir_contract.plan import PlanError, PlanItem, parse_plan

DeviceKind = Literal[
    "blood-pressure-cuff",
    "pulse-oximeter",
    "scale",
    "thermometer",
    "heart-rate-monitor",
    "continuous-oximeter",
    "body-composition-scale",
    "glucose-meter",
    "cgm",
]


class HubConfigError(ValueError):
    """A hub configuration that cannot be used; ``field`` is the dotted path of the bad value."""

    def __init__(self, source: str, field: str | None, reason: str) -> None:
        self.source = source
        self.field = field
        self.reason = reason
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {reason}")


def first_error(exc: ValidationError) -> tuple[str, str]:
    """(dotted field path, message) of the first error pydantic found."""
    error = exc.errors()[0]
    return ".".join(str(part) for part in error["loc"]) or "(top level)", str(error["msg"])


class DeviceConfig(BaseModel):
    """One paired device: its FHIR Device id, Bluetooth address and kind, and whose readings it takes.

    A personal device measures one resident: ``patient_id`` (None: the hub's own ``patient_id``). A
    device two residents share (a cuff or a scale with user slots) maps the User Index it sends with
    each measurement to a resident in ``users``; a reading whose index is not in the map, or that
    carries none, is attributed to nobody: it waits on the hub until a resident says on the patient view
    that it was theirs (never guessed; ``edge_agent.household``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    address: str = Field(min_length=1)
    kind: DeviceKind
    patient_id: str | None = Field(default=None, min_length=1)
    # User Index (1-254, as the SIG services number the users of a device) -> the resident's patient id.
    users: dict[int, str] | None = None

    @model_validator(mode="after")
    def _personal_or_shared(self) -> Self:
        if self.patient_id is not None and self.users is not None:
            raise ValueError("a device is personal (patient_id) or shared (users), not both")
        if self.users is not None:
            if not self.users:
                raise ValueError("users needs at least one User Index")
            if any(not 1 <= index <= 254 for index in self.users):
                raise ValueError("a User Index is 1-254 (0xFF means an unknown user)")
            if len(set(self.users.values())) != len(self.users):
                raise ValueError("each resident has one User Index on a device")
        return self

    @property
    def shared(self) -> bool:
        return self.users is not None


def _readable_plan(plan: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """``plan`` when ``fhir_contract.plan.parse_plan`` (the rule the gateway writes by) reads it."""
    try:
        parse_plan(list(plan))
    except PlanError as exc:
        raise ValueError(str(exc)) from None
    return plan


class ResidentConfig(BaseModel):
    """One monitored person in the home. ``name`` is what the patient view and the voice call them
    (a first name); it never leaves the hub."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: str = Field(min_length=1)
    name: str = Field(default="", max_length=60)
    # The daily symptom check this resident answers on the patient view: a Questionnaire id of the
    # contract ("heart-failure-daily", "copd-daily"); None: none is offered.
    questionnaire: str | None = None
    # This resident's measurement plan (fhir_contract.plan's JSON form), for a resident other than the
    # hub's enrolled patient, whose plan is HubConfig.plan. Empty: no plan, no reminders.
    plan: tuple[dict[str, Any], ...] = ()

    @field_validator("plan", mode="after")
    @classmethod
    def _a_plan_both_sides_read(cls, plan: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        return _readable_plan(plan)

    @field_validator("questionnaire", mode="after")
    @classmethod
    def _a_contract_questionnaire(cls, key: str | None) -> str | None:
        # Imported here: the contract's questionnaires load fhir.resources, which a hub without a
        # patient view need not pay for at start.
        from fhir_contract.questionnaire import current

        if key is not None:
            try:
                current(key)
            except KeyError as exc:
                raise ValueError(str(exc.args[0])) from None
        return key


class NurseMessage(BaseModel):
    """A message from the care team to one resident, sent in the retained config; shown on the patient
    view (and announced by the voice) to that resident only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    patient_id: str = Field(min_length=1)
    sent_at: datetime
    text: str = Field(min_length=1, max_length=1000)

    @field_validator("sent_at", mode="after")
    @classmethod
    def _aware(cls, sent_at: datetime) -> datetime:
        if sent_at.tzinfo is None:
            raise ValueError("sent_at must carry a time zone")
        return sent_at


class MqttConfig(BaseModel):
    """The broker, and how this hub proves who it is: TLS (server CA, optional client certificate) and
    its own account (username = hub id in the shipped ACL; the password inline or, better, in a file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    mqtt5: bool = True
    username: str | None = None
    password: str | None = None
    # A file holding the password (trailing newline ignored), so the secret is not in the TOML.
    password_file: Path | None = None
    tls: bool = False
    # CA that signed the broker's certificate; None with tls = the system's trust store.
    ca_file: Path | None = None
    # Client certificate and key, for brokers that authenticate hubs by certificate.
    cert_file: Path | None = None
    key_file: Path | None = None
    # When the hub may forget a reading: "gateway" (the default) once the gateway's receipt says it
    # stored or quarantined it; "broker" at the broker's PUBACK, for a server that sends no receipts.
    # A broker that dies holding acknowledged messages loses them in "broker" mode (docs/outbox.md).
    delete_after: Literal["gateway", "broker"] = "gateway"
    # A Bundle the broker acknowledged but the gateway has not confirmed in this time is sent again
    # (the wait doubles while no receipt comes, up to 30 min). Also sent again after every reconnect.
    receipt_timeout_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if not self.tls and (self.ca_file or self.cert_file):
            raise ValueError("ca_file/cert_file/key_file need tls = true")
        return self

    def secret(self) -> str | None:
        """The password: inline, or read from ``password_file`` (HubConfigError if unreadable)."""
        if self.password_file is None:
            return self.password
        try:
            return self.password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise HubConfigError(
                str(self.password_file), "mqtt.password_file", exc.strerror or str(exc)
            ) from exc


class EmulationConfig(BaseModel):
    """TESTS AND DEMOS ONLY: emulate the configured devices (Bumble) instead of using the radio."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Each emulated device takes a measurement this often.
    interval_s: float = Field(default=5.0, gt=0)


class VoiceConfig(BaseModel):
    """What the hub says to the patient (``edge_agent.reminders``): the plan's reminders and
    confirmations, spoken by a local engine. Local only: the server's config message cannot set it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # None (the default): the reminders when the hub has a measurement plan, and the care team's messages
    # and the "contact my nurse" confirmation always (edge_agent.announcements); false: never a word.
    enabled: bool | None = None
    language: Literal["da", "en"] = "da"
    # Nothing is said from start (included) to end (excluded), on the home's wall clock; equal: never quiet.
    quiet_hours_start: dt_time = dt_time(22, 0)
    quiet_hours_end: dt_time = dt_time(7, 0)
    # "espeak": the loudspeaker (espeak-ng); "wav": one WAV file per prompt in wav_dir (tests, a player
    # of its own); "tone": a chime pattern per event instead of words (for a patient who hears tones
    # better than speech), rendered in wav_dir and played with aplay; "none": decide and log what
    # would be said, say nothing.
    engine: Literal["espeak", "wav", "tone", "none"] = "espeak"
    wav_dir: Path | None = None

    @model_validator(mode="after")
    def _wav_needs_a_folder(self) -> Self:
        if (self.engine in ("wav", "tone")) != (self.wav_dir is not None):
            raise ValueError('wav_dir goes with engine = "wav" or "tone" (and only with them)')
        return self


class PatientViewConfig(BaseModel):
    """The patient view the hub serves on the home network (``edge_agent.patient_view``). Local only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    # The home network's side of the hub (a tablet or a TV browser opens http://<hub>:8080/).
    host: str = "0.0.0.0"  # served to the home network only, behind the household PIN
    # 0: any free port (tests; the demo prints the one it got).
    port: int = Field(default=8080, ge=0, le=65535)
    # The household's PIN (4-12 digits), inline or, better, in a file; required when enabled.
    pin: str | None = Field(default=None, pattern=r"^[0-9]{4,12}$")
    pin_file: Path | None = None
    language: Literal["da", "en"] = "da"

    @model_validator(mode="after")
    def _a_pin_when_served(self) -> Self:
        if self.pin is not None and self.pin_file is not None:
            raise ValueError("give pin or pin_file, not both")
        if self.enabled and self.pin is None and self.pin_file is None:
            raise ValueError("the patient view needs the household's pin (or pin_file)")
        return self

    def secret(self) -> str:
        """The PIN: inline, or read from ``pin_file`` (HubConfigError if unreadable or not 4-12 digits)."""
        if self.pin is not None:
            return self.pin
        if self.pin_file is None:
            raise HubConfigError("patient_view", "patient_view.pin", "no pin configured")
        try:
            pin = self.pin_file.read_text().strip()
        except OSError as exc:
            raise HubConfigError(
                str(self.pin_file), "patient_view.pin_file", exc.strerror or str(exc)
            ) from exc
        if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
            raise HubConfigError(str(self.pin_file), "patient_view.pin_file", "the pin is 4-12 digits")
        return pin


class HubConfig(BaseModel):
    """Everything one hub needs to run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    municipality: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    hub_id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    patient_id: str = Field(min_length=1)
    devices: tuple[DeviceConfig, ...]
    mqtt: MqttConfig = MqttConfig()
    outbox_path: Path
    # The outbox's bound (docs/outbox.md): past it the oldest non-critical readings are evicted, counted
    # and logged. Local only: the server cannot change how much a hub keeps.
    outbox_max_rows: int = Field(default=DEFAULT_MAX_ROWS, ge=1)
    outbox_max_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=1)
    # Device clocks carry local time without a zone; this is the zone the hub reads them in.
    timezone: str = "Europe/Copenhagen"
    # Observations per MQTT message (one FHIR batch Bundle); the gateway takes no more than the contract's.
    bundle_size: int = Field(default=50, ge=1, le=MAX_BUNDLE_ENTRIES)
    # Bluetooth links open at once. A BlueZ adapter holds about 7 LE connections in practice; devices
    # beyond that take turns (an idle connection gives way to a device that waits).
    max_connections: int = Field(default=7, ge=1, le=32)
    # The retained status message is sent again this often (and on device changes, at most every 5 s).
    status_interval_s: float = Field(default=60.0, ge=1.0)
    # Send a blood-pressure cuff's intermediate cuff pressure (0x2A36) as preliminary Observations.
    # Off by default (PHD IG: a value still being measured); the gateway never scores them.
    send_intermediate_cuff_pressure: bool = False
    # The patient's measurement plan (fhir_contract.plan: what to measure, when, with what grace), in its
    # JSON form; usually set by the nurse and sent in the retained config. Empty: no plan, no reminders.
    plan: tuple[dict[str, Any], ...] = ()
    voice: VoiceConfig = VoiceConfig()
    # Everyone the hub measures. Empty: one resident, ``patient_id``. When given, ``patient_id`` (the
    # patient the hub was enrolled for) is one of them; at most a household's four.
    residents: tuple[ResidentConfig, ...] = Field(default=(), max_length=4)
    # The care team's messages to the residents (usually from the retained config); newest last.
    messages: tuple[NurseMessage, ...] = Field(default=(), max_length=50)
    patient_view: PatientViewConfig = PatientViewConfig()
    emulation: EmulationConfig | None = None

    @field_validator("timezone", mode="after")
    @classmethod
    def _a_known_zone(cls, timezone: str) -> str:
        # Checked here, so a bad zone (in the file or a config message) is refused, not a crash later.
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {timezone!r} (an IANA name such as Europe/Copenhagen)"
            ) from None
        return timezone

    @field_validator("plan", mode="after")
    @classmethod
    def _a_plan_both_sides_read(cls, plan: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        return _readable_plan(plan)

    @model_validator(mode="after")
    def _devices_measure_residents(self) -> Self:
        residents = set(self.resident_ids)
        if len(residents) != len(self.resident_ids):
            raise ValueError("residents: each patient once")
        if self.residents and self.patient_id not in residents:
            raise ValueError(f"residents must include the hub's patient_id {self.patient_id!r}")
        if any(r.plan for r in self.residents if r.patient_id == self.patient_id):
            # One place for one plan: a second copy that is ignored would pass a mistake silently.
            raise ValueError("the hub's patient_id has their plan in the top-level plan, not in residents")
        for device in self.devices:
            measured = set(device.users.values()) if device.users else {device.patient_id or self.patient_id}
            strangers = sorted(measured - residents)
            if strangers:
                raise ValueError(f"device {device.id} measures {strangers[0]!r}, who is not a resident")
        return self

    @property
    def resident_ids(self) -> tuple[str, ...]:
        """The patient ids of everyone the hub measures (the hub's patient first when none are listed)."""
        return tuple(r.patient_id for r in self.residents) or (self.patient_id,)

    @property
    def plan_items(self) -> tuple[PlanItem, ...]:
        """The plan as ``fhir_contract.plan`` items (validated when the configuration was made)."""
        return parse_plan(list(self.plan))

    def plan_of(self, patient_id: str) -> tuple[PlanItem, ...]:
        """A resident's plan: the enrolled patient's is ``plan``, another resident's is their
        ``ResidentConfig.plan``; empty for anyone else (validated when the configuration was made)."""
        if patient_id == self.patient_id:
            return self.plan_items
        resident = next((r for r in self.residents if r.patient_id == patient_id), None)
        return () if resident is None else parse_plan(list(resident.plan))

    def speaks_for(self, patient_id: str) -> bool:
        """Whether the hub says ``patient_id``'s prompts: they have a plan and the voice is not off."""
        return self.voice.enabled is not False and bool(self.plan_of(patient_id))

    @property
    def speaks(self) -> bool:
        """Whether the hub says any plan's prompts: a resident has a plan and the voice is not off."""
        return any(self.speaks_for(patient_id) for patient_id in self.resident_ids)

    @classmethod
    def from_toml(cls, path: Path) -> HubConfig:
        """Read a hub's TOML file. Relative paths in it are taken from the file's folder.

        Raises :class:`HubConfigError` naming the file and the field.
        """
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise HubConfigError(str(path), None, exc.strerror or str(exc)) from exc
        except tomllib.TOMLDecodeError as exc:
            raise HubConfigError(str(path), None, f"not valid TOML: {exc}") from exc
        return cls.from_mapping(data, source=str(path), base=path.parent)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, source: str, base: Path | None = None) -> HubConfig:
        """Validate a parsed configuration; relative paths are resolved against ``base``."""
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            field, reason = first_error(exc)
            raise HubConfigError(source, field, reason) from exc
        return config.resolved(base) if base is not None else config

    def resolved(self, base: Path) -> HubConfig:
        """This configuration with relative file paths taken from ``base``."""

        def fix(path: Path | None) -> Path | None:
            return None if path is None or path.is_absolute() else base / path

        mqtt = self.mqtt.model_copy(
            update={
                name: fix(getattr(self.mqtt, name)) or getattr(self.mqtt, name)
                for name in ("password_file", "ca_file", "cert_file", "key_file")
            }
        )
        outbox = self.outbox_path if self.outbox_path.is_absolute() else base / self.outbox_path
        voice = self.voice.model_copy(update={"wav_dir": fix(self.voice.wav_dir) or self.voice.wav_dir})
        view = self.patient_view.model_copy(
            update={"pin_file": fix(self.patient_view.pin_file) or self.patient_view.pin_file}
        )
        return self.model_copy(
            update={"mqtt": mqtt, "outbox_path": outbox, "voice": voice, "patient_view": view}
        )

    @property
    def remote_cache_path(self) -> Path:
        """Where the last good remote configuration is kept: next to the outbox."""
        return self.outbox_path.with_name(self.outbox_path.stem + ".remote-config.json")

    def topic(self, leaf: str) -> str:
        """``homewatch/v1/{municipality}/{hub}/{leaf}``: leaf is observations, status, errors,
        receipts or config."""
        return f"homewatch/v1/{self.municipality}/{self.hub_id}/{leaf}"
