"""Weight Scale service (0x181D): Weight Measurement (0x2A9D).

Format (GATT Specification Supplement, "Weight Measurement"):

    flags       uint8   bit 0 imperial units (else SI), bit 1 time stamp, bit 2 user id,
                        bit 3 BMI and height; bits 4-7 reserved
    weight      uint16  0.005 kg (SI) or 0.01 lb (imperial); 0xFFFF = measurement unsuccessful
    time stamp  Date Time, 7 bytes               if bit 1
    user id     uint8, 255 = unknown user        if bit 2
    BMI         uint16  0.1 kg/m2                if bit 3
    height      uint16  0.001 m (SI) or 0.1 in   if bit 3

Precision rule: a value is exactly raw x resolution, written with the resolution's number of decimals
(14470 -> Decimal('72.350') kg, 7235 -> Decimal('72.35') lb, 1753 -> Decimal('1.753') m). Trailing zeros
are kept: they state the resolution the scale reports in. Height in metres becomes centimetres by moving
the decimal point (Decimal('175.3') cm), which is exact and keeps the same resolution.

This module parses and encodes those bytes and maps a measurement to device-neutral readings. Reserved
flag bits are ignored when parsing and written as zero. Body Composition (0x2A9C) is in
``body_composition``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum

from edge_agent.gatt._fields import (
    FieldReader,
    FieldWriter,
    check_length,
    check_minimum_length,
    whole_steps,
)
from edge_agent.gatt.datetime_field import DATE_TIME_LENGTH
from fhir_contract.readings import Absent, Quantity, Reading, Value

WEIGHT_MEASUREMENT = "0x2A9D Weight Measurement"

UNKNOWN_USER = 255
"""The user id a scale sends when it does not know who is standing on it."""

_FLAG_IMPERIAL = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_USER_ID = 0x04
_FLAG_BMI_AND_HEIGHT = 0x08

_MINIMUM_LENGTH = 3  # flags (1) + weight (2)
_MEASUREMENT_UNSUCCESSFUL = 0xFFFF

_KG_STEP = Decimal("0.005")
_LB_STEP = Decimal("0.01")
_BMI_STEP = Decimal("0.1")
_METRE_STEP = Decimal("0.001")
_INCH_STEP = Decimal("0.1")


class UnitSystem(Enum):
    """Flags bit 0: SI (kg, m) or imperial (lb, in)."""

    SI = "si"
    IMPERIAL = "imperial"


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """One value of 0x2A9D; None marks an optional field the device did not send.

    ``weight`` is None when the scale reports "measurement unsuccessful"; it is in kg (SI) or lb
    (imperial), ``height`` in m (SI) or in (imperial), ``bmi`` in kg/m2. BMI and height travel
    together. A time stamp whose date is "not known" (zeros) parses to None like an absent one.
    """

    weight: Decimal | None
    units: UnitSystem = UnitSystem.SI
    time_stamp: datetime | None = None
    user_id: int | None = None
    bmi: Decimal | None = None
    height: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.bmi is None) != (self.height is None):
            raise ValueError("BMI and height share one flag: give both or neither")


def parse_weight_measurement(data: bytes) -> WeightMeasurement:
    """Parse a Weight Measurement (0x2A9D) value; ParseError if the bytes are not one."""
    characteristic = WEIGHT_MEASUREMENT
    check_minimum_length(data, characteristic, _MINIMUM_LENGTH, "flags and weight")
    reader = FieldReader(data, characteristic)
    flags = reader.uint8()  # Flags
    imperial = bool(flags & _FLAG_IMPERIAL)
    time_stamp_present = bool(flags & _FLAG_TIME_STAMP)
    user_id_present = bool(flags & _FLAG_USER_ID)
    bmi_and_height_present = bool(flags & _FLAG_BMI_AND_HEIGHT)

    required = (
        _MINIMUM_LENGTH
        + (DATE_TIME_LENGTH if time_stamp_present else 0)
        + (1 if user_id_present else 0)
        + (4 if bmi_and_height_present else 0)
    )
    optional = (
        (time_stamp_present, "a time stamp"),
        (user_id_present, "a user id"),
        (bmi_and_height_present, "BMI and height"),
    )
    check_length(data, characteristic, required, optional)

    weight_raw = reader.uint16()  # Weight, uint16, 0.005 kg or 0.01 lb
    time_stamp = reader.date_time() if time_stamp_present else None  # Time Stamp, Date Time
    user_id = reader.uint8() if user_id_present else None  # User ID, uint8
    bmi_raw = reader.uint16() if bmi_and_height_present else None  # BMI, uint16, 0.1 kg/m2
    height_raw = reader.uint16() if bmi_and_height_present else None  # Height, uint16, 0.001 m or 0.1 in
    weight_step = _LB_STEP if imperial else _KG_STEP
    height_step = _INCH_STEP if imperial else _METRE_STEP
    return WeightMeasurement(
        weight=None if weight_raw == _MEASUREMENT_UNSUCCESSFUL else weight_raw * weight_step,
        units=UnitSystem.IMPERIAL if imperial else UnitSystem.SI,
        time_stamp=time_stamp,
        user_id=user_id,
        bmi=None if bmi_raw is None else bmi_raw * _BMI_STEP,
        height=None if height_raw is None else height_raw * height_step,
    )


def encode_weight_measurement(measurement: WeightMeasurement) -> bytes:
    """Encode a measurement as a 0x2A9D value; ValueError if a value is not a whole number of steps."""
    m = measurement
    imperial = m.units is UnitSystem.IMPERIAL
    flags = (
        (_FLAG_IMPERIAL if imperial else 0)
        | (_FLAG_TIME_STAMP if m.time_stamp is not None else 0)
        | (_FLAG_USER_ID if m.user_id is not None else 0)
        | (_FLAG_BMI_AND_HEIGHT if m.bmi is not None and m.height is not None else 0)
    )
    writer = FieldWriter()
    writer.uint8(flags, "flags")
    if m.weight is None:
        writer.uint16(_MEASUREMENT_UNSUCCESSFUL, "weight")
    else:
        # 0xFFFF is reserved for "unsuccessful", so the largest weight is one step less.
        weight_raw = whole_steps(m.weight, _LB_STEP if imperial else _KG_STEP, "weight")
        if weight_raw >= _MEASUREMENT_UNSUCCESSFUL:
            raise ValueError(f"weight {m.weight} is above the largest value the field can carry")
        writer.uint16(weight_raw, "weight")
    if m.time_stamp is not None:
        writer.date_time(m.time_stamp)
    if m.user_id is not None:
        writer.uint8(m.user_id, "user id")
    if m.bmi is not None and m.height is not None:
        writer.uint16(whole_steps(m.bmi, _BMI_STEP, "BMI"), "BMI")
        writer.uint16(whole_steps(m.height, _INCH_STEP if imperial else _METRE_STEP, "height"), "height")
    return writer.to_bytes()


def to_readings(measurement: WeightMeasurement) -> list[Reading]:
    """A "body-weight" reading (kg or [lb_av]; Absent("error") if unsuccessful), plus "bmi" in kg/m2
    and "body-height" in cm or [in_i] when sent."""
    m = measurement
    imperial = m.units is UnitSystem.IMPERIAL
    weight: Value = (
        Absent("error") if m.weight is None else Quantity(m.weight, "[lb_av]" if imperial else "kg")
    )
    readings = [Reading(kind="body-weight", value=weight, device_time=m.time_stamp)]
    if m.bmi is not None:
        readings.append(Reading(kind="bmi", value=Quantity(m.bmi, "kg/m2"), device_time=m.time_stamp))
    if m.height is not None:
        # Metres to centimetres by moving the decimal point: exact, same resolution (1 mm = 0.1 cm).
        height = Quantity(m.height, "[in_i]") if imperial else Quantity(m.height.scaleb(2), "cm")
        readings.append(Reading(kind="body-height", value=height, device_time=m.time_stamp))
    return readings
