"""Blood Pressure service (0x1810): Blood Pressure Measurement 0x2A35 and Intermediate Cuff Pressure 0x2A36.

Both characteristics share one format (GATT Specification Supplement, "Blood Pressure Measurement"):

    flags        uint8   bit 0 units kPa (else mmHg), bit 1 time stamp, bit 2 pulse rate,
                         bit 3 user id, bit 4 measurement status; bits 5-7 reserved
    systolic     SFLOAT  (for 0x2A36: the current cuff pressure)
    diastolic    SFLOAT  (for 0x2A36: NaN)
    mean         SFLOAT  mean arterial pressure (for 0x2A36: NaN)
    time stamp   Date Time, 7 bytes      if bit 1
    pulse rate   SFLOAT, beats per minute if bit 2
    user id      uint8, 255 = unknown     if bit 3
    status       uint16                   if bit 4

This module parses and encodes those bytes and maps a measurement to device-neutral readings. Reserved
bits are ignored when parsing and written as zero. Bluetooth I/O, time-stamp correction and FHIR are
left to the ``ble`` adapters and ``fhir_contract``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum, IntEnum

from edge_agent.gatt._fields import (
    FieldReader,
    FieldWriter,
    check_length,
    check_minimum_length,
    reading_value,
)
from edge_agent.gatt.datetime_field import DATE_TIME_LENGTH
from edge_agent.gatt.ieee11073 import NumericValue, SpecialValue
from fhir_contract.readings import Absent, Component, Quantity, Reading, Value
from fhir_contract.units import kpa_to_mmhg

BLOOD_PRESSURE_MEASUREMENT = "0x2A35 Blood Pressure Measurement"
INTERMEDIATE_CUFF_PRESSURE = "0x2A36 Intermediate Cuff Pressure"

UNKNOWN_USER = 255
"""The user id a device sends when it does not know who is measuring."""

_FLAG_UNITS_KPA = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_PULSE_RATE = 0x04
_FLAG_USER_ID = 0x08
_FLAG_MEASUREMENT_STATUS = 0x10

_MINIMUM_LENGTH = 7  # flags (1) + systolic, diastolic, mean arterial pressure (2 each)

# kPa to mm[Hg] by the contract's factor (fhir_contract.units), rounded half up to 0.1 mm[Hg]: a kPa
# cuff resolves 0.1 kPa (0.75 mmHg), so one decimal keeps what the device measured without inventing
# precision.
_MMHG_STEP = Decimal("0.1")


class PressureUnit(Enum):
    """The unit of the three pressures (flags bit 0); the value is its UCUM code."""

    MMHG = "mm[Hg]"
    KPA = "kPa"


class PulseRateRange(IntEnum):
    """Measurement status bits 3-4: where the pulse rate lies relative to the device's limits."""

    WITHIN_RANGE = 0
    ABOVE_UPPER_LIMIT = 1
    BELOW_LOWER_LIMIT = 2
    RESERVED = 3


@dataclass(frozen=True, slots=True)
class BloodPressureStatus:
    """The Measurement Status field (uint16); bits 6-15 are reserved."""

    body_movement: bool = False  # bit 0
    cuff_too_loose: bool = False  # bit 1
    irregular_pulse: bool = False  # bit 2
    pulse_rate_range: PulseRateRange = PulseRateRange.WITHIN_RANGE  # bits 3-4
    improper_position: bool = False  # bit 5

    @classmethod
    def from_bits(cls, bits: int) -> BloodPressureStatus:
        return cls(
            body_movement=bool(bits & 0x01),
            cuff_too_loose=bool(bits & 0x02),
            irregular_pulse=bool(bits & 0x04),
            pulse_rate_range=PulseRateRange((bits >> 3) & 0x03),
            improper_position=bool(bits & 0x20),
        )

    def to_bits(self) -> int:
        return (
            (0x01 if self.body_movement else 0)
            | (0x02 if self.cuff_too_loose else 0)
            | (0x04 if self.irregular_pulse else 0)
            | (int(self.pulse_rate_range) << 3)
            | (0x20 if self.improper_position else 0)
        )


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """One value of 0x2A35 (or 0x2A36); None marks an optional field the device did not send.

    A time stamp whose date is "not known" (zeros) parses to None like an absent one.
    """

    systolic: NumericValue
    diastolic: NumericValue
    mean_arterial_pressure: NumericValue
    unit: PressureUnit = PressureUnit.MMHG
    time_stamp: datetime | None = None
    pulse_rate: NumericValue | None = None
    user_id: int | None = None
    status: BloodPressureStatus | None = None


def parse_blood_pressure_measurement(data: bytes) -> BloodPressureMeasurement:
    """Parse a Blood Pressure Measurement (0x2A35) value; ParseError if the bytes are not one."""
    return _parse(data, BLOOD_PRESSURE_MEASUREMENT)


def parse_intermediate_cuff_pressure(data: bytes) -> BloodPressureMeasurement:
    """Parse an Intermediate Cuff Pressure (0x2A36) value: the current cuff pressure is in ``systolic``."""
    return _parse(data, INTERMEDIATE_CUFF_PRESSURE)


def _parse(data: bytes, characteristic: str) -> BloodPressureMeasurement:
    check_minimum_length(data, characteristic, _MINIMUM_LENGTH, "flags and three pressures")
    reader = FieldReader(data, characteristic)
    flags = reader.uint8()  # Flags
    units_kpa = bool(flags & _FLAG_UNITS_KPA)
    time_stamp_present = bool(flags & _FLAG_TIME_STAMP)
    pulse_rate_present = bool(flags & _FLAG_PULSE_RATE)
    user_id_present = bool(flags & _FLAG_USER_ID)
    measurement_status_present = bool(flags & _FLAG_MEASUREMENT_STATUS)

    required = (
        _MINIMUM_LENGTH
        + (DATE_TIME_LENGTH if time_stamp_present else 0)
        + (2 if pulse_rate_present else 0)
        + (1 if user_id_present else 0)
        + (2 if measurement_status_present else 0)
    )
    optional = (
        (time_stamp_present, "a time stamp"),
        (pulse_rate_present, "a pulse rate"),
        (user_id_present, "a user id"),
        (measurement_status_present, "a measurement status"),
    )
    check_length(data, characteristic, required, optional)

    systolic = reader.sfloat()  # Systolic (or current cuff pressure), SFLOAT
    diastolic = reader.sfloat()  # Diastolic, SFLOAT
    mean_arterial_pressure = reader.sfloat()  # Mean Arterial Pressure, SFLOAT
    time_stamp = reader.date_time() if time_stamp_present else None  # Time Stamp, Date Time
    pulse_rate = reader.sfloat() if pulse_rate_present else None  # Pulse Rate, SFLOAT
    user_id = reader.uint8() if user_id_present else None  # User ID, uint8
    status_bits = reader.uint16() if measurement_status_present else None  # Measurement Status, uint16
    return BloodPressureMeasurement(
        systolic=systolic,
        diastolic=diastolic,
        mean_arterial_pressure=mean_arterial_pressure,
        unit=PressureUnit.KPA if units_kpa else PressureUnit.MMHG,
        time_stamp=time_stamp,
        pulse_rate=pulse_rate,
        user_id=user_id,
        status=None if status_bits is None else BloodPressureStatus.from_bits(status_bits),
    )


def encode_blood_pressure_measurement(measurement: BloodPressureMeasurement) -> bytes:
    """Encode a measurement as a 0x2A35 value (0x2A36 has the same format); ValueError if a field cannot."""
    m = measurement
    flags = (
        (_FLAG_UNITS_KPA if m.unit is PressureUnit.KPA else 0)
        | (_FLAG_TIME_STAMP if m.time_stamp is not None else 0)
        | (_FLAG_PULSE_RATE if m.pulse_rate is not None else 0)
        | (_FLAG_USER_ID if m.user_id is not None else 0)
        | (_FLAG_MEASUREMENT_STATUS if m.status is not None else 0)
    )
    writer = FieldWriter()
    writer.uint8(flags, "flags")
    writer.sfloat(m.systolic)
    writer.sfloat(m.diastolic)
    writer.sfloat(m.mean_arterial_pressure)
    if m.time_stamp is not None:
        writer.date_time(m.time_stamp)
    if m.pulse_rate is not None:
        writer.sfloat(m.pulse_rate)
    if m.user_id is not None:
        writer.uint8(m.user_id, "user id")
    if m.status is not None:
        writer.uint16(m.status.to_bits(), "measurement status")
    return writer.to_bytes()


def encode_intermediate_cuff_pressure(pressure: Decimal, unit: PressureUnit = PressureUnit.MMHG) -> bytes:
    """Encode a 0x2A36 value: the current cuff pressure as systolic, diastolic and mean NaN (0x07FF)."""
    return encode_blood_pressure_measurement(
        BloodPressureMeasurement(pressure, SpecialValue.NAN, SpecialValue.NAN, unit)
    )


def to_readings(measurement: BloodPressureMeasurement) -> list[Reading]:
    """A "blood-pressure" reading in mm[Hg] (kPa converted), and "pulse-rate-cuff" in /min when sent."""
    m = measurement
    readings = [
        Reading(
            kind="blood-pressure",
            components=(
                Component("systolic", _pressure(m.systolic, m.unit)),
                Component("diastolic", _pressure(m.diastolic, m.unit)),
                Component("mean", _pressure(m.mean_arterial_pressure, m.unit)),
            ),
            device_time=m.time_stamp,
        )
    ]
    if m.pulse_rate is not None:
        readings.append(
            Reading(
                kind="pulse-rate-cuff", value=reading_value(m.pulse_rate, "/min"), device_time=m.time_stamp
            )
        )
    return readings


def _pressure(value: NumericValue, unit: PressureUnit) -> Value:
    if isinstance(value, SpecialValue):
        return Absent(value.absent_reason)
    if unit is PressureUnit.MMHG:
        return Quantity(value, PressureUnit.MMHG.value)
    converted = kpa_to_mmhg(value).quantize(_MMHG_STEP, rounding=ROUND_HALF_UP)
    return Quantity(converted, PressureUnit.MMHG.value)
