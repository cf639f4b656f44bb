"""The table of emulated device kinds: which SIG services, characteristics, properties and security.

A :class:`DeviceProfile` lists a device's health services as :class:`ServiceSpec` rows of
:class:`CharacteristicSpec` (UUID, GATT properties, initial value, security and the :class:`Role` that says
what the peripheral does with it). :data:`DEVICE_PROFILES` holds every kind the hub supports;
:data:`PROFILES` keeps the four original single-measurement kinds in their original shape
(:class:`HealthProfile`), which the agent's tests and the demo use.

Values are raw bytes chosen to be realistic (feature bits of a typical home device); the comments say what
each bit means. Device Information, Battery and Current Time are added to every device by
:mod:`edge_agent.emulation.peripheral`, which turns these rows into a Bumble GATT database.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from bumble.gatt import Characteristic

from edge_agent.emulation.racp import CGM, GLUCOSE, RacpFlavour

Properties = Characteristic.Properties
READ = Properties.READ
WRITE = Properties.WRITE
NOTIFY = Properties.NOTIFY
INDICATE = Properties.INDICATE

CURRENT_TIME_SERVICE = 0x1805
CURRENT_TIME = 0x2A2B
RECORD_ACCESS_CONTROL_POINT = 0x2A52


class Security(enum.Enum):
    """What the link needs before the value (and its CCCD) may be read or written."""

    OPEN = "open"
    ENCRYPTED = "encrypted"  # *_REQUIRES_ENCRYPTION: an unbonded central gets ATT error 0x0F


class Role(enum.Enum):
    """What the peripheral does with a characteristic."""

    VALUE = "value"  # a plain value: readable, and writable when it has WRITE (else 0x03)
    MEASUREMENT = "measurement"  # measure() values: stored until delivered, or live only (see `stored`)
    RECORD = "record"  # RACP-held measurement (glucose 0x2A18, CGM 0x2AA7)
    CONTEXT = "context"  # glucose measurement context, sent after its record
    RACP = "racp"  # Record Access Control Point
    CGM_CONTROL = "cgm-control"  # CGM Specific Ops Control Point
    CURRENT_TIME = "current-time"  # the device clock (CTS 0x2A2B)


@dataclass(frozen=True, slots=True)
class CharacteristicSpec:
    uuid: int
    properties: Characteristic.Properties
    value: bytes = b""
    role: Role = Role.VALUE
    security: Security = Security.OPEN
    # For MEASUREMENT: keep values taken while nobody listens and deliver them at the next subscription.
    stored: bool = True


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    uuid: int
    characteristics: tuple[CharacteristicSpec, ...]


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """One device kind: its services (the first is primary), what it advertises and does."""

    kind: str
    model: str
    services: tuple[ServiceSpec, ...]
    # The characteristic measure() sends to unless told otherwise.
    measurement_uuid: int
    advertised: tuple[int, ...] = ()
    racp: RacpFlavour | None = None
    # Whether a central may set the clock by writing Current Time.
    clock_writable: bool = True
    # Where measure(..., intermediate=...) notifies values still being measured (a cuff's 0x2A36).
    intermediate_uuid: int | None = None

    @property
    def service_uuid(self) -> int:
        return self.services[0].uuid

    @property
    def advertised_uuids(self) -> tuple[int, ...]:
        return self.advertised or (self.service_uuid,)

    def characteristics(self) -> tuple[CharacteristicSpec, ...]:
        return tuple(c for service in self.services for c in service.characteristics)


@dataclass(frozen=True, slots=True)
class HealthProfile:
    """One of the four original kinds: one INDICATE measurement (stored until delivered), one feature,
    and optionally a live NOTIFY characteristic for values still being measured."""

    kind: str
    service_uuid: int
    measurement_uuid: int
    feature_uuid: int
    feature_value: bytes
    model: str
    intermediate_uuid: int | None = None

    def device_profile(self, *, clock_writable: bool = True) -> DeviceProfile:
        characteristics: tuple[CharacteristicSpec, ...] = (
            CharacteristicSpec(self.measurement_uuid, INDICATE, role=Role.MEASUREMENT),
            CharacteristicSpec(self.feature_uuid, READ, self.feature_value),
        )
        if self.intermediate_uuid is not None:
            # Live only, as the spec has it: notified while measuring, never stored for later.
            intermediate = CharacteristicSpec(
                self.intermediate_uuid, NOTIFY, role=Role.MEASUREMENT, stored=False
            )
            characteristics = (*characteristics, intermediate)
        return DeviceProfile(
            self.kind,
            self.model,
            (ServiceSpec(self.service_uuid, characteristics),),
            self.measurement_uuid,
            clock_writable=clock_writable,
            intermediate_uuid=self.intermediate_uuid,
        )


def simple_profile(
    kind: str,
    model: str,
    service_uuid: int,
    measurement_uuid: int,
    readable: Mapping[int, bytes] | None = None,
) -> DeviceProfile:
    """A one-service profile: an INDICATE measurement (stored until delivered) and readable values."""
    characteristics = (
        CharacteristicSpec(measurement_uuid, INDICATE, role=Role.MEASUREMENT),
        *(CharacteristicSpec(uuid, READ, value) for uuid, value in (readable or {}).items()),
    )
    return DeviceProfile(kind, model, (ServiceSpec(service_uuid, characteristics),), measurement_uuid)


PROFILES: Mapping[str, HealthProfile] = {
    profile.kind: profile
    for profile in (
        # Blood Pressure Feature: body movement and cuff fit detection supported. Intermediate Cuff
        # Pressure (0x2A36, optional in the spec) while inflating, as most home cuffs have it.
        HealthProfile(
            "blood-pressure-cuff", 0x1810, 0x2A35, 0x2A49, struct.pack("<H", 0x0003), "BP-Cuff", 0x2A36
        ),
        # PLX Features: no optional status fields supported.
        HealthProfile("pulse-oximeter", 0x1822, 0x2A5E, 0x2A60, struct.pack("<H", 0x0000), "PulseOx"),
        # Weight Scale Feature: time stamp supported, weight resolution 0.05 kg (code 4 in bits 3-6).
        HealthProfile("scale", 0x181D, 0x2A9D, 0x2A9E, struct.pack("<I", 0x01 | 4 << 3), "Scale"),
        # Temperature Type: tympanum (0x09), as home ear thermometers measure.
        HealthProfile("thermometer", 0x1809, 0x2A1C, 0x2A1D, bytes([0x09]), "Thermo"),
    )
}
# Kinds whose clock a central cannot set: ear thermometers set it only from their own buttons; chest
# straps and continuous oximeters stream live values and keep no settable clock.
_CLOCK_READ_ONLY = frozenset({"thermometer", "heart-rate-monitor", "continuous-oximeter"})

_WEIGHT_SCALE = ServiceSpec(
    0x181D,
    (
        CharacteristicSpec(0x2A9D, INDICATE, role=Role.MEASUREMENT),
        CharacteristicSpec(0x2A9E, READ, PROFILES["scale"].feature_value),
    ),
)
# Body Composition Feature: time stamp (bit 0), basal metabolism (2), muscle percentage (3), body water
# mass (7), impedance (8), weight (9); mass resolution 0.05 kg (code 4 in bits 11-14).
_BODY_COMPOSITION_FEATURE = 0x01 | 0x04 | 0x08 | 0x80 | 0x100 | 0x200 | 4 << 11
# Glucose Feature: low battery (bit 0), sensor malfunction (1), strip insertion error (3), result
# high-low (5) and time fault (9) detection supported.
_GLUCOSE_FEATURE = 0x0001 | 0x0002 | 0x0008 | 0x0020 | 0x0200
# CGM Feature: sensor malfunction (bit 6), low battery (9) detection, trend information (15); then
# type interstitial fluid (0x9, low nibble) / location subcutaneous tissue (0x5, high nibble); then the
# E2E-CRC field, 0xFFFF because E2E-CRC is not supported.
_CGM_FEATURE = (0x0040 | 0x0200 | 0x8000).to_bytes(3, "little") + bytes([0x59]) + b"\xff\xff"
_ENC = Security.ENCRYPTED

_NEW_PROFILES = (
    DeviceProfile(
        "heart-rate-monitor",
        "HR-Strap",
        (
            ServiceSpec(
                0x180D,
                (
                    CharacteristicSpec(0x2A37, NOTIFY, role=Role.MEASUREMENT, stored=False),
                    CharacteristicSpec(0x2A38, READ, bytes([0x01])),  # Body Sensor Location: chest
                ),
            ),
        ),
        0x2A37,
        clock_writable=False,
    ),
    DeviceProfile(
        "continuous-oximeter",
        "PulseOx-C",
        (
            ServiceSpec(
                0x1822,
                (
                    CharacteristicSpec(0x2A5F, NOTIFY, role=Role.MEASUREMENT, stored=False),
                    CharacteristicSpec(0x2A60, READ, struct.pack("<H", 0x0000)),  # PLX Features: none
                ),
            ),
        ),
        0x2A5F,
        clock_writable=False,
    ),
    DeviceProfile(
        "body-composition-scale",
        "BodyComp",
        (
            ServiceSpec(
                0x181B,
                (
                    CharacteristicSpec(0x2A9C, INDICATE, role=Role.MEASUREMENT),
                    CharacteristicSpec(0x2A9B, READ, struct.pack("<I", _BODY_COMPOSITION_FEATURE)),
                ),
            ),
            _WEIGHT_SCALE,
        ),
        0x2A9C,
        advertised=(0x181B, 0x181D),
    ),
    DeviceProfile(
        "glucose-meter",
        "Glucose",
        (
            ServiceSpec(
                0x1808,
                (
                    CharacteristicSpec(0x2A18, NOTIFY, role=Role.RECORD, security=_ENC),
                    CharacteristicSpec(0x2A34, NOTIFY, role=Role.CONTEXT, security=_ENC),
                    CharacteristicSpec(0x2A51, READ, struct.pack("<H", _GLUCOSE_FEATURE), security=_ENC),
                    CharacteristicSpec(
                        RECORD_ACCESS_CONTROL_POINT, WRITE | INDICATE, role=Role.RACP, security=_ENC
                    ),
                ),
            ),
        ),
        0x2A18,
        racp=GLUCOSE,
    ),
    DeviceProfile(
        "cgm",
        "CGM",
        (
            ServiceSpec(
                0x181F,
                (
                    CharacteristicSpec(0x2AA7, NOTIFY, role=Role.RECORD),
                    CharacteristicSpec(0x2AA8, READ, _CGM_FEATURE),
                    # CGM Status: time offset 0, no status bits (the peripheral keeps it current).
                    CharacteristicSpec(0x2AA9, READ, bytes(5)),
                    # CGM Session Start Time: set by the peripheral from its clock, writable.
                    CharacteristicSpec(0x2AAA, READ | WRITE),
                    CharacteristicSpec(0x2AAB, READ, struct.pack("<H", 14 * 24)),  # Run Time: 14 days
                    CharacteristicSpec(RECORD_ACCESS_CONTROL_POINT, WRITE | INDICATE, role=Role.RACP),
                    CharacteristicSpec(0x2AAC, WRITE | INDICATE, role=Role.CGM_CONTROL),
                ),
            ),
        ),
        0x2AA7,
        racp=CGM,
    ),
)

DEVICE_PROFILES: Mapping[str, DeviceProfile] = {
    **{
        kind: profile.device_profile(clock_writable=kind not in _CLOCK_READ_ONLY)
        for kind, profile in PROFILES.items()
    },
    **{profile.kind: profile for profile in _NEW_PROFILES},
}


def current_time_service(writable: bool) -> ServiceSpec:
    """Current Time Service: Current Time is READ and NOTIFY, and WRITE where the clock may be set."""
    properties = READ | NOTIFY | (WRITE if writable else Properties(0))
    return ServiceSpec(
        CURRENT_TIME_SERVICE, (CharacteristicSpec(CURRENT_TIME, properties, role=Role.CURRENT_TIME),)
    )


__all__ = [
    "DEVICE_PROFILES",
    "INDICATE",
    "NOTIFY",
    "PROFILES",
    "READ",
    "WRITE",
    "CharacteristicSpec",
    "DeviceProfile",
    "HealthProfile",
    "Role",
    "Security",
    "ServiceSpec",
    "current_time_service",
    "simple_profile",
]
