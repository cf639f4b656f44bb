"""Body Composition service (0x181B): Body Composition Measurement (0x2A9C).

Format (GATT Specification Supplement, "Body Composition Measurement"):

    flags                uint16  bit 0 imperial units (else SI), bit 1 time stamp, bit 2 user id,
                                 bit 3 basal metabolism, bit 4 muscle percentage, bit 5 muscle mass,
                                 bit 6 fat free mass, bit 7 soft lean mass, bit 8 body water mass,
                                 bit 9 impedance, bit 10 weight, bit 11 height,
                                 bit 12 multiple packet measurement; bits 13-15 reserved
    body fat percentage  uint16  0.1 %; 0xFFFF = measurement unsuccessful
    time stamp           Date Time, 7 bytes            if bit 1
    user id              uint8, 255 = unknown user     if bit 2
    basal metabolism     uint16  kJ                    if bit 3
    muscle percentage    uint16  0.1 %                 if bit 4
    muscle mass          uint16  mass (see below)      if bit 5
    fat free mass        uint16  mass                  if bit 6
    soft lean mass       uint16  mass                  if bit 7
    body water mass      uint16  mass                  if bit 8
    impedance            uint16  0.1 ohm               if bit 9
    weight               uint16  mass                  if bit 10
    height               uint16  0.001 m (SI) or 0.1 in (imperial)  if bit 11

A mass is 0.005 kg (SI) or 0.01 lb (imperial) per step. Values are exactly raw x resolution with the
resolution's decimals kept, as in ``weight_scale`` (14470 -> Decimal('72.350') kg).

A scale whose value does not fit one notification sends it in several, each with bit 12 set and its
own flags; each packet parses and maps to readings on its own (``multiple_packet`` says it was one of
several), and a body fat percentage repeated in a second packet gets the same Observation identifier as
the first. Reserved flag bits are ignored when parsing and written as zero. Bluetooth I/O and FHIR are
left to others; the Body Composition Feature characteristic (0x2A9B) is not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from edge_agent.gatt._fields import (
    FieldReader,
    FieldWriter,
    check_length,
    check_minimum_length,
    whole_steps,
)
from edge_agent.gatt.datetime_field import DATE_TIME_LENGTH
from edge_agent.gatt.weight_scale import UnitSystem
from fhir_contract.readings import Absent, Quantity, Reading, Value

BODY_COMPOSITION_MEASUREMENT = "0x2A9C Body Composition Measurement"

UNKNOWN_USER = 255
"""The user id a scale sends when it does not know who is standing on it."""

_FLAG_IMPERIAL = 0x0001
_FLAG_TIME_STAMP = 0x0002
_FLAG_USER_ID = 0x0004
_FLAG_BASAL_METABOLISM = 0x0008
_FLAG_MUSCLE_PERCENTAGE = 0x0010
_FLAG_MUSCLE_MASS = 0x0020
_FLAG_FAT_FREE_MASS = 0x0040
_FLAG_SOFT_LEAN_MASS = 0x0080
_FLAG_BODY_WATER_MASS = 0x0100
_FLAG_IMPEDANCE = 0x0200
_FLAG_WEIGHT = 0x0400
_FLAG_HEIGHT = 0x0800
_FLAG_MULTIPLE_PACKET = 0x1000

_MINIMUM_LENGTH = 4  # flags (2) + body fat percentage (2)
_MEASUREMENT_UNSUCCESSFUL = 0xFFFF

_PERCENT_STEP = Decimal("0.1")
_KG_STEP = Decimal("0.005")
_LB_STEP = Decimal("0.01")
_OHM_STEP = Decimal("0.1")
_METRE_STEP = Decimal("0.001")
_INCH_STEP = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class BodyCompositionMeasurement:
    """One value (one packet) of 0x2A9C; None marks an optional field the device did not send.

    ``body_fat_percentage`` is None when the scale reports "measurement unsuccessful". Masses
    (``muscle_mass``, ``fat_free_mass``, ``soft_lean_mass``, ``body_water_mass``, ``weight``) are in kg
    (SI) or lb (imperial), ``height`` in m or in, ``basal_metabolism`` in kJ, ``impedance`` in ohm,
    percentages in %. A time stamp whose date is "not known" (zeros) parses to None like an absent one.
    """

    body_fat_percentage: Decimal | None
    units: UnitSystem = UnitSystem.SI
    time_stamp: datetime | None = None
    user_id: int | None = None
    basal_metabolism: int | None = None
    muscle_percentage: Decimal | None = None
    muscle_mass: Decimal | None = None
    fat_free_mass: Decimal | None = None
    soft_lean_mass: Decimal | None = None
    body_water_mass: Decimal | None = None
    impedance: Decimal | None = None
    weight: Decimal | None = None
    height: Decimal | None = None
    multiple_packet: bool = False


def parse_body_composition_measurement(data: bytes) -> BodyCompositionMeasurement:
    """Parse a Body Composition Measurement (0x2A9C) value; ParseError if the bytes are not one."""
    characteristic = BODY_COMPOSITION_MEASUREMENT
    check_minimum_length(data, characteristic, _MINIMUM_LENGTH, "flags and body fat percentage")
    reader = FieldReader(data, characteristic)
    flags = reader.uint16()  # Flags, uint16
    imperial = bool(flags & _FLAG_IMPERIAL)
    time_stamp_present = bool(flags & _FLAG_TIME_STAMP)
    user_id_present = bool(flags & _FLAG_USER_ID)
    basal_metabolism_present = bool(flags & _FLAG_BASAL_METABOLISM)
    muscle_percentage_present = bool(flags & _FLAG_MUSCLE_PERCENTAGE)
    muscle_mass_present = bool(flags & _FLAG_MUSCLE_MASS)
    fat_free_mass_present = bool(flags & _FLAG_FAT_FREE_MASS)
    soft_lean_mass_present = bool(flags & _FLAG_SOFT_LEAN_MASS)
    body_water_mass_present = bool(flags & _FLAG_BODY_WATER_MASS)
    impedance_present = bool(flags & _FLAG_IMPEDANCE)
    weight_present = bool(flags & _FLAG_WEIGHT)
    height_present = bool(flags & _FLAG_HEIGHT)
    multiple_packet = bool(flags & _FLAG_MULTIPLE_PACKET)

    optional = (
        (time_stamp_present, DATE_TIME_LENGTH, "a time stamp"),
        (user_id_present, 1, "a user id"),
        (basal_metabolism_present, 2, "a basal metabolism"),
        (muscle_percentage_present, 2, "a muscle percentage"),
        (muscle_mass_present, 2, "a muscle mass"),
        (fat_free_mass_present, 2, "a fat free mass"),
        (soft_lean_mass_present, 2, "a soft lean mass"),
        (body_water_mass_present, 2, "a body water mass"),
        (impedance_present, 2, "an impedance"),
        (weight_present, 2, "a weight"),
        (height_present, 2, "a height"),
    )
    required = _MINIMUM_LENGTH + sum(size for present, size, _ in optional if present)
    check_length(data, characteristic, required, [(present, name) for present, _, name in optional])

    mass_step = _LB_STEP if imperial else _KG_STEP
    height_step = _INCH_STEP if imperial else _METRE_STEP
    body_fat_raw = reader.uint16()  # Body Fat Percentage, uint16, 0.1 %
    time_stamp = reader.date_time() if time_stamp_present else None  # Time Stamp, Date Time
    user_id = reader.uint8() if user_id_present else None  # User ID, uint8
    basal_metabolism = reader.uint16() if basal_metabolism_present else None  # Basal Metabolism, uint16, kJ
    muscle_percentage = _scaled(reader, muscle_percentage_present, _PERCENT_STEP)  # Muscle Percentage
    muscle_mass = _scaled(reader, muscle_mass_present, mass_step)  # Muscle Mass, uint16
    fat_free_mass = _scaled(reader, fat_free_mass_present, mass_step)  # Fat Free Mass, uint16
    soft_lean_mass = _scaled(reader, soft_lean_mass_present, mass_step)  # Soft Lean Mass, uint16
    body_water_mass = _scaled(reader, body_water_mass_present, mass_step)  # Body Water Mass, uint16
    impedance = _scaled(reader, impedance_present, _OHM_STEP)  # Impedance, uint16, 0.1 ohm
    weight = _scaled(reader, weight_present, mass_step)  # Weight, uint16
    height = _scaled(reader, height_present, height_step)  # Height, uint16, 0.001 m or 0.1 in
    return BodyCompositionMeasurement(
        body_fat_percentage=(
            None if body_fat_raw == _MEASUREMENT_UNSUCCESSFUL else body_fat_raw * _PERCENT_STEP
        ),
        units=UnitSystem.IMPERIAL if imperial else UnitSystem.SI,
        time_stamp=time_stamp,
        user_id=user_id,
        basal_metabolism=basal_metabolism,
        muscle_percentage=muscle_percentage,
        muscle_mass=muscle_mass,
        fat_free_mass=fat_free_mass,
        soft_lean_mass=soft_lean_mass,
        body_water_mass=body_water_mass,
        impedance=impedance,
        weight=weight,
        height=height,
        multiple_packet=multiple_packet,
    )


def _scaled(reader: FieldReader, present: bool, step: Decimal) -> Decimal | None:
    """Read one uint16 field of ``step`` resolution if it is present (raw x step, exactly)."""
    return reader.uint16() * step if present else None


def encode_body_composition_measurement(measurement: BodyCompositionMeasurement) -> bytes:
    """Encode a measurement as a 0x2A9C value; ValueError if a value is not a whole number of steps."""
    m = measurement
    imperial = m.units is UnitSystem.IMPERIAL
    mass_step = _LB_STEP if imperial else _KG_STEP
    flags = (
        (_FLAG_IMPERIAL if imperial else 0)
        | (_FLAG_TIME_STAMP if m.time_stamp is not None else 0)
        | (_FLAG_USER_ID if m.user_id is not None else 0)
        | (_FLAG_BASAL_METABOLISM if m.basal_metabolism is not None else 0)
        | (_FLAG_MUSCLE_PERCENTAGE if m.muscle_percentage is not None else 0)
        | (_FLAG_MUSCLE_MASS if m.muscle_mass is not None else 0)
        | (_FLAG_FAT_FREE_MASS if m.fat_free_mass is not None else 0)
        | (_FLAG_SOFT_LEAN_MASS if m.soft_lean_mass is not None else 0)
        | (_FLAG_BODY_WATER_MASS if m.body_water_mass is not None else 0)
        | (_FLAG_IMPEDANCE if m.impedance is not None else 0)
        | (_FLAG_WEIGHT if m.weight is not None else 0)
        | (_FLAG_HEIGHT if m.height is not None else 0)
        | (_FLAG_MULTIPLE_PACKET if m.multiple_packet else 0)
    )
    writer = FieldWriter()
    writer.uint16(flags, "flags")
    if m.body_fat_percentage is None:
        writer.uint16(_MEASUREMENT_UNSUCCESSFUL, "body fat percentage")
    else:
        # 0xFFFF is reserved for "unsuccessful", so the largest percentage is one step less.
        body_fat_raw = whole_steps(m.body_fat_percentage, _PERCENT_STEP, "body fat percentage")
        if body_fat_raw >= _MEASUREMENT_UNSUCCESSFUL:
            raise ValueError(f"body fat percentage {m.body_fat_percentage} is above what the field carries")
        writer.uint16(body_fat_raw, "body fat percentage")
    if m.time_stamp is not None:
        writer.date_time(m.time_stamp)
    if m.user_id is not None:
        writer.uint8(m.user_id, "user id")
    if m.basal_metabolism is not None:
        writer.uint16(m.basal_metabolism, "basal metabolism")
    for value, step, field in (
        (m.muscle_percentage, _PERCENT_STEP, "muscle percentage"),
        (m.muscle_mass, mass_step, "muscle mass"),
        (m.fat_free_mass, mass_step, "fat free mass"),
        (m.soft_lean_mass, mass_step, "soft lean mass"),
        (m.body_water_mass, mass_step, "body water mass"),
        (m.impedance, _OHM_STEP, "impedance"),
        (m.weight, mass_step, "weight"),
        (m.height, _INCH_STEP if imperial else _METRE_STEP, "height"),
    ):
        if value is not None:
            writer.uint16(whole_steps(value, step, field), field)
    return writer.to_bytes()


def to_readings(measurement: BodyCompositionMeasurement) -> list[Reading]:
    """One reading per field sent, in wire order: "body-fat-percentage" in % (Absent("error") if the
    measurement was unsuccessful), "basal-metabolism" in kJ, "muscle-percentage" in %, "muscle-mass",
    "fat-free-mass", "soft-lean-mass", "body-water-mass" and "body-weight" in kg or [lb_av],
    "body-impedance" in Ohm and "body-height" in cm or [in_i] (metres moved two places, exact)."""
    m = measurement
    mass_unit = "[lb_av]" if m.units is UnitSystem.IMPERIAL else "kg"
    body_fat: Value = (
        Absent("error") if m.body_fat_percentage is None else Quantity(m.body_fat_percentage, "%")
    )
    readings = [Reading(kind="body-fat-percentage", value=body_fat, device_time=m.time_stamp)]
    basal_metabolism = None if m.basal_metabolism is None else Quantity(Decimal(m.basal_metabolism), "kJ")
    height: Quantity | None = None
    if m.height is not None:
        imperial = m.units is UnitSystem.IMPERIAL
        height = Quantity(m.height, "[in_i]") if imperial else Quantity(m.height.scaleb(2), "cm")
    for kind, value in (
        ("basal-metabolism", basal_metabolism),
        ("muscle-percentage", None if m.muscle_percentage is None else Quantity(m.muscle_percentage, "%")),
        ("muscle-mass", None if m.muscle_mass is None else Quantity(m.muscle_mass, mass_unit)),
        ("fat-free-mass", None if m.fat_free_mass is None else Quantity(m.fat_free_mass, mass_unit)),
        ("soft-lean-mass", None if m.soft_lean_mass is None else Quantity(m.soft_lean_mass, mass_unit)),
        ("body-water-mass", None if m.body_water_mass is None else Quantity(m.body_water_mass, mass_unit)),
        ("body-impedance", None if m.impedance is None else Quantity(m.impedance, "Ohm")),
        ("body-weight", None if m.weight is None else Quantity(m.weight, mass_unit)),
        ("body-height", height),
    ):
        if value is not None:
            readings.append(Reading(kind=kind, value=value, device_time=m.time_stamp))
    return readings
