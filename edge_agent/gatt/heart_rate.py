"""Heart Rate service (0x180D): Heart Rate Measurement 0x2A37 and Body Sensor Location 0x2A38.

Heart Rate Measurement (GATT Specification Supplement, "Heart Rate Measurement"):

    flags             uint8   bit 0 heart rate is uint16 (else uint8), bit 1 sensor contact detected,
                              bit 2 sensor contact status supported, bit 3 energy expended,
                              bit 4 RR intervals; bits 5-7 reserved
    heart rate        uint8 or uint16, beats per minute
    energy expended   uint16, kJ, cumulative since the last reset       if bit 3
    RR intervals      uint16 each, 1/1024 s, as many as the value holds  if bit 4 (at least one)

Body Sensor Location is one uint8: 0 other, 1 chest, 2 wrist, 3 finger, 4 hand, 5 ear lobe, 6 foot.

This module parses and encodes those bytes and maps a measurement to device-neutral readings. Reserved
flag bits are ignored when parsing and written as zero; a reserved body sensor location is a ParseError.
Bluetooth I/O, resetting the energy counter (Heart Rate Control Point) and FHIR are left to others.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum, IntEnum
from functools import lru_cache

from edge_agent.gatt._fields import (
    FieldReader,
    FieldWriter,
    check_exact_length,
    check_length,
    check_minimum_length,
    enum_value,
    join_names,
)
from edge_agent.gatt.errors import ParseError
from fhir_contract.readings import Absent, Quantity, Reading

HEART_RATE_MEASUREMENT = "0x2A37 Heart Rate Measurement"
BODY_SENSOR_LOCATION = "0x2A38 Body Sensor Location"

_FLAG_UINT16 = 0x01
_FLAG_CONTACT_DETECTED = 0x02
_FLAG_CONTACT_SUPPORTED = 0x04
_FLAG_ENERGY_EXPENDED = 0x08
_FLAG_RR_INTERVALS = 0x10

_MINIMUM_LENGTH = 2  # flags (1) + heart rate (uint8, 1)

# RR intervals count 1/1024 s. raw * 1000/1024 ms = raw * 125/128 ms is exact in Decimal (at most seven
# decimals); it is then rounded half up to 0.1 ms: the device resolves 0.98 ms, so one decimal keeps all
# it measured and claims no more.
_RR_TICKS_PER_SECOND = 1024
_MS_STEP = Decimal("0.1")


class SensorContact(Enum):
    """Flags bits 1-2: whether the sensor reports skin contact, and if so whether it has it."""

    NOT_SUPPORTED = "not-supported"
    NOT_DETECTED = "not-detected"
    DETECTED = "detected"


class BodySensorLocation(IntEnum):
    """Where the heart-rate sensor is worn (org.bluetooth.characteristic.body_sensor_location)."""

    OTHER = 0
    CHEST = 1
    WRIST = 2
    FINGER = 3
    HAND = 4
    EAR_LOBE = 5
    FOOT = 6


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One value of 0x2A37.

    ``rr_intervals`` are in 1/1024 s as sent (``rr_interval_ms`` converts), oldest first; empty when the
    value carried none. ``energy_expended`` is in kJ, None when not sent. ``uint16_format`` records
    which width the heart rate was sent in, so an emulated sensor writes the same bytes as a real one.
    """

    heart_rate: int
    sensor_contact: SensorContact = SensorContact.NOT_SUPPORTED
    energy_expended: int | None = None
    rr_intervals: tuple[int, ...] = ()
    uint16_format: bool = False


def parse_heart_rate_measurement(data: bytes) -> HeartRateMeasurement:
    """Parse a Heart Rate Measurement (0x2A37) value; ParseError if the bytes are not one."""
    characteristic = HEART_RATE_MEASUREMENT
    check_minimum_length(data, characteristic, _MINIMUM_LENGTH, "flags and heart rate")
    reader = FieldReader(data, characteristic)
    flags = reader.uint8()  # Flags
    uint16_format = bool(flags & _FLAG_UINT16)
    contact_detected = bool(flags & _FLAG_CONTACT_DETECTED)
    contact_supported = bool(flags & _FLAG_CONTACT_SUPPORTED)
    energy_expended_present = bool(flags & _FLAG_ENERGY_EXPENDED)
    rr_intervals_present = bool(flags & _FLAG_RR_INTERVALS)

    fixed = _MINIMUM_LENGTH + (1 if uint16_format else 0) + (2 if energy_expended_present else 0)
    optional = (
        (uint16_format, "a 16-bit heart rate"),
        (energy_expended_present, "energy expended"),
    )
    if rr_intervals_present:
        # RR intervals fill the rest of the value. The flag says the field is present, and a present
        # uint16[] holds at least one: a value that ends before the first interval was cut short.
        rr_bytes = len(data) - fixed
        if rr_bytes < 2 or rr_bytes % 2:
            raise ParseError(
                characteristic,
                f"flags announce {join_names([n for present, n in optional if present] + ['RR intervals'])} "
                f"but {len(data)} bytes are not "
                f"{fixed} plus one or more 2-byte RR intervals",
            )
        rr_count = rr_bytes // 2
    else:
        rr_count = 0
        check_length(data, characteristic, fixed, optional)

    heart_rate = reader.uint16() if uint16_format else reader.uint8()  # Heart Rate, uint8/uint16, /min
    energy_expended = reader.uint16() if energy_expended_present else None  # Energy Expended, uint16, kJ
    rr_intervals = tuple(reader.uint16() for _ in range(rr_count))  # RR-Intervals, uint16, 1/1024 s each
    if not contact_supported:
        contact = SensorContact.NOT_SUPPORTED
    else:
        contact = SensorContact.DETECTED if contact_detected else SensorContact.NOT_DETECTED
    return HeartRateMeasurement(
        heart_rate=heart_rate,
        sensor_contact=contact,
        energy_expended=energy_expended,
        rr_intervals=rr_intervals,
        uint16_format=uint16_format,
    )


def encode_heart_rate_measurement(measurement: HeartRateMeasurement) -> bytes:
    """Encode a measurement as a 0x2A37 value; ValueError if a field cannot carry its value."""
    m = measurement
    flags = (
        (_FLAG_UINT16 if m.uint16_format else 0)
        | (_FLAG_CONTACT_DETECTED if m.sensor_contact is SensorContact.DETECTED else 0)
        | (_FLAG_CONTACT_SUPPORTED if m.sensor_contact is not SensorContact.NOT_SUPPORTED else 0)
        | (_FLAG_ENERGY_EXPENDED if m.energy_expended is not None else 0)
        | (_FLAG_RR_INTERVALS if m.rr_intervals else 0)
    )
    writer = FieldWriter()
    writer.uint8(flags, "flags")
    if m.uint16_format:
        writer.uint16(m.heart_rate, "heart rate")
    else:
        writer.uint8(m.heart_rate, "heart rate")
    if m.energy_expended is not None:
        writer.uint16(m.energy_expended, "energy expended")
    for rr in m.rr_intervals:
        writer.uint16(rr, "RR interval")
    return writer.to_bytes()


@lru_cache(maxsize=4096)  # RR intervals repeat; Decimals are immutable, so sharing them is safe
def rr_interval_ms(ticks: int) -> Decimal:
    """An RR interval of ``ticks`` 1/1024 s in milliseconds, rounded half up to 0.1 ms (800 -> 781.3)."""
    exact = Decimal(ticks * 1000) / _RR_TICKS_PER_SECOND  # exact: ticks * 125/128 has at most 7 decimals
    return exact.quantize(_MS_STEP, rounding=ROUND_HALF_UP)


_NO_CONTACT = Reading(kind="heart-rate", value=Absent("not-performed"))


# A heart-rate monitor notifies every second with values that repeat; readings are immutable, so the
# same one can be handed out again (integers only: no Decimal precision to confuse).
@lru_cache(maxsize=512)
def _heart_rate_reading(beats_per_minute: int) -> Reading:
    return Reading(kind="heart-rate", value=Quantity(Decimal(beats_per_minute), "/min"))


@lru_cache(maxsize=8192)
def _rr_reading(ticks: int, position: int) -> Reading:
    return Reading(kind="rr-interval", value=Quantity(rr_interval_ms(ticks), "ms"), position=position)


def to_readings(measurement: HeartRateMeasurement) -> list[Reading]:
    """A "heart-rate" reading in /min, one "rr-interval" reading in ms per RR interval (``position``
    0, 1, ... in the order sent) and "energy-expended" in kJ when sent.

    A sensor that reports lost skin contact measured nothing: the heart rate is Absent("not-performed")
    and its RR intervals are dropped. The energy count is cumulative and stays valid. The notification
    carries no time stamp, so ``device_time`` is None.
    """
    m = measurement
    no_contact = m.sensor_contact is SensorContact.NOT_DETECTED
    readings = [_NO_CONTACT if no_contact else _heart_rate_reading(m.heart_rate)]
    if not no_contact:
        readings += [_rr_reading(rr, i) for i, rr in enumerate(m.rr_intervals)]
    if m.energy_expended is not None:
        readings.append(Reading(kind="energy-expended", value=Quantity(Decimal(m.energy_expended), "kJ")))
    return readings


def parse_body_sensor_location(data: bytes) -> BodySensorLocation:
    """Parse a Body Sensor Location (0x2A38) value; ParseError if it is not one byte or reserved."""
    characteristic = BODY_SENSOR_LOCATION
    check_exact_length(data, characteristic, 1, "body sensor location")
    reader = FieldReader(data, characteristic)
    code = reader.uint8()  # Body Sensor Location, uint8
    return enum_value(BodySensorLocation, code, characteristic, "body sensor location")


def encode_body_sensor_location(location: BodySensorLocation) -> bytes:
    """Encode a location as a 0x2A38 value."""
    return bytes((int(location),))
