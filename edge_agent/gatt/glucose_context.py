"""Glucose service (0x1808): Glucose Measurement Context (0x2A34), the notes a meter keeps with a record.

Format (GATT Specification Supplement, "Glucose Measurement Context"):

    flags               uint8   bit 0 carbohydrate, bit 1 meal, bit 2 tester and health, bit 3 exercise,
                                bit 4 medication, bit 5 medication in litres (else kilograms),
                                bit 6 HbA1c, bit 7 extended flags
    sequence number     uint16  the Glucose Measurement (0x2A18) this context belongs to
    extended flags      uint8 (all bits reserved)                      if bit 7
    carbohydrate        uint8 id (1 breakfast .. 7 brunch), SFLOAT kg  if bit 0
    meal                uint8 (1 preprandial .. 5 bedtime)             if bit 1
    tester and health   uint8: tester low nibble, health high nibble   if bit 2
    exercise            uint16 duration in s (0xFFFF = overrun), uint8 intensity in %  if bit 3
    medication          uint8 id (1 rapid-acting insulin .. 5 pre-mixed), SFLOAT kg or L  if bit 4
    HbA1c               SFLOAT, percent                                if bit 6

The context only qualifies a glucose reading, so it maps to no readings of its own; pairing it with its
measurement by sequence number is left to the caller. A reserved value of an enumerated field is a
ParseError; the extended flags are kept as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from edge_agent.gatt._fields import (
    FieldReader,
    FieldWriter,
    check_length,
    check_minimum_length,
    enum_value,
)
from edge_agent.gatt.ieee11073 import NumericValue

GLUCOSE_MEASUREMENT_CONTEXT = "0x2A34 Glucose Measurement Context"

EXERCISE_DURATION_OVERRUN = 0xFFFF
"""The exercise duration a meter sends when the exercise lasted longer than the field can count."""

_FLAG_CARBOHYDRATE = 0x01
_FLAG_MEAL = 0x02
_FLAG_TESTER_HEALTH = 0x04
_FLAG_EXERCISE = 0x08
_FLAG_MEDICATION = 0x10
_FLAG_MEDICATION_LITRES = 0x20
_FLAG_HBA1C = 0x40
_FLAG_EXTENDED_FLAGS = 0x80

_MINIMUM_LENGTH = 3  # flags (1) + sequence number (2)


class CarbohydrateId(IntEnum):
    BREAKFAST = 1
    LUNCH = 2
    DINNER = 3
    SNACK = 4
    DRINK = 5
    SUPPER = 6
    BRUNCH = 7


class Meal(IntEnum):
    PREPRANDIAL = 1  # before the meal
    POSTPRANDIAL = 2  # after the meal
    FASTING = 3
    CASUAL = 4  # snacks, drinks, etc.
    BEDTIME = 5


class Tester(IntEnum):
    SELF = 1
    HEALTH_CARE_PROFESSIONAL = 2
    LAB_TEST = 3
    NOT_AVAILABLE = 15


class Health(IntEnum):
    MINOR_HEALTH_ISSUES = 1
    MAJOR_HEALTH_ISSUES = 2
    DURING_MENSES = 3
    UNDER_STRESS = 4
    NO_HEALTH_ISSUES = 5
    NOT_AVAILABLE = 15


class MedicationId(IntEnum):
    RAPID_ACTING_INSULIN = 1
    SHORT_ACTING_INSULIN = 2
    INTERMEDIATE_ACTING_INSULIN = 3
    LONG_ACTING_INSULIN = 4
    PRE_MIXED_INSULIN = 5


class MedicationUnit(Enum):
    """Flags bit 5: the unit of the medication amount; the value is its UCUM code."""

    KILOGRAMS = "kg"
    LITRES = "L"


@dataclass(frozen=True, slots=True)
class Carbohydrate:
    id: CarbohydrateId
    amount: NumericValue  # kg


@dataclass(frozen=True, slots=True)
class Exercise:
    duration: int  # seconds; EXERCISE_DURATION_OVERRUN when longer than the field counts
    intensity: int  # percent


@dataclass(frozen=True, slots=True)
class Medication:
    id: MedicationId
    amount: NumericValue  # in ``unit``
    unit: MedicationUnit = MedicationUnit.KILOGRAMS


@dataclass(frozen=True, slots=True)
class GlucoseMeasurementContext:
    """One value of 0x2A34; None marks an optional field the device did not send.

    ``tester`` and ``health`` share one byte (one flag): give both or neither.
    """

    sequence_number: int
    extended_flags: int | None = None
    carbohydrate: Carbohydrate | None = None
    meal: Meal | None = None
    tester: Tester | None = None
    health: Health | None = None
    exercise: Exercise | None = None
    medication: Medication | None = None
    hba1c: NumericValue | None = None  # percent

    def __post_init__(self) -> None:
        if (self.tester is None) != (self.health is None):
            raise ValueError("tester and health share one byte: give both or neither")


def parse_glucose_measurement_context(data: bytes) -> GlucoseMeasurementContext:
    """Parse a Glucose Measurement Context (0x2A34) value; ParseError if the bytes are not one."""
    characteristic = GLUCOSE_MEASUREMENT_CONTEXT
    check_minimum_length(data, characteristic, _MINIMUM_LENGTH, "flags and sequence number")
    reader = FieldReader(data, characteristic)
    flags = reader.uint8()  # Flags
    carbohydrate_present = bool(flags & _FLAG_CARBOHYDRATE)
    meal_present = bool(flags & _FLAG_MEAL)
    tester_health_present = bool(flags & _FLAG_TESTER_HEALTH)
    exercise_present = bool(flags & _FLAG_EXERCISE)
    medication_present = bool(flags & _FLAG_MEDICATION)
    medication_litres = bool(flags & _FLAG_MEDICATION_LITRES)
    hba1c_present = bool(flags & _FLAG_HBA1C)
    extended_flags_present = bool(flags & _FLAG_EXTENDED_FLAGS)

    optional = (
        (extended_flags_present, 1, "extended flags"),
        (carbohydrate_present, 3, "a carbohydrate"),
        (meal_present, 1, "a meal"),
        (tester_health_present, 1, "a tester and health"),
        (exercise_present, 3, "an exercise"),
        (medication_present, 3, "a medication"),
        (hba1c_present, 2, "an HbA1c"),
    )
    required = _MINIMUM_LENGTH + sum(size for present, size, _ in optional if present)
    check_length(data, characteristic, required, [(present, name) for present, _, name in optional])

    sequence_number = reader.uint16()  # Sequence Number, uint16
    extended_flags = reader.uint8() if extended_flags_present else None  # Extended Flags, uint8
    carbohydrate = None
    if carbohydrate_present:
        carbohydrate_id = reader.uint8()  # Carbohydrate ID, uint8
        carbohydrate_kg = reader.sfloat()  # Carbohydrate, SFLOAT, kg
        carbohydrate = Carbohydrate(
            enum_value(CarbohydrateId, carbohydrate_id, characteristic, "carbohydrate id"), carbohydrate_kg
        )
    meal_code = reader.uint8() if meal_present else None  # Meal, uint8
    tester_health = reader.uint8() if tester_health_present else None  # Tester (low), Health (high) nibbles
    exercise = None
    if exercise_present:
        duration = reader.uint16()  # Exercise Duration, uint16, seconds
        intensity = reader.uint8()  # Exercise Intensity, uint8, percent
        exercise = Exercise(duration, intensity)
    medication = None
    if medication_present:
        medication_id = reader.uint8()  # Medication ID, uint8
        amount = reader.sfloat()  # Medication, SFLOAT, kg or litres
        medication = Medication(
            enum_value(MedicationId, medication_id, characteristic, "medication id"),
            amount,
            MedicationUnit.LITRES if medication_litres else MedicationUnit.KILOGRAMS,
        )
    hba1c = reader.sfloat() if hba1c_present else None  # HbA1c, SFLOAT, percent
    return GlucoseMeasurementContext(
        sequence_number=sequence_number,
        extended_flags=extended_flags,
        carbohydrate=carbohydrate,
        meal=None if meal_code is None else enum_value(Meal, meal_code, characteristic, "meal"),
        tester=None
        if tester_health is None
        else enum_value(Tester, tester_health & 0x0F, characteristic, "tester"),
        health=None
        if tester_health is None
        else enum_value(Health, tester_health >> 4, characteristic, "health"),
        exercise=exercise,
        medication=medication,
        hba1c=hba1c,
    )


def encode_glucose_measurement_context(context: GlucoseMeasurementContext) -> bytes:
    """Encode a context as a 0x2A34 value; ValueError if a field cannot carry its value."""
    c = context
    flags = (
        (_FLAG_CARBOHYDRATE if c.carbohydrate is not None else 0)
        | (_FLAG_MEAL if c.meal is not None else 0)
        | (_FLAG_TESTER_HEALTH if c.tester is not None and c.health is not None else 0)
        | (_FLAG_EXERCISE if c.exercise is not None else 0)
        | (_FLAG_MEDICATION if c.medication is not None else 0)
        | (
            _FLAG_MEDICATION_LITRES
            if c.medication is not None and c.medication.unit is MedicationUnit.LITRES
            else 0
        )
        | (_FLAG_HBA1C if c.hba1c is not None else 0)
        | (_FLAG_EXTENDED_FLAGS if c.extended_flags is not None else 0)
    )
    writer = FieldWriter()
    writer.uint8(flags, "flags")
    writer.uint16(c.sequence_number, "sequence number")
    if c.extended_flags is not None:
        writer.uint8(c.extended_flags, "extended flags")
    if c.carbohydrate is not None:
        writer.uint8(int(c.carbohydrate.id), "carbohydrate id")
        writer.sfloat(c.carbohydrate.amount)
    if c.meal is not None:
        writer.uint8(int(c.meal), "meal")
    if c.tester is not None and c.health is not None:
        writer.uint8(int(c.tester) | int(c.health) << 4, "tester and health")
    if c.exercise is not None:
        writer.uint16(c.exercise.duration, "exercise duration")
        writer.uint8(c.exercise.intensity, "exercise intensity")
    if c.medication is not None:
        writer.uint8(int(c.medication.id), "medication id")
        writer.sfloat(c.medication.amount)
    if c.hba1c is not None:
        writer.sfloat(c.hba1c)
    return writer.to_bytes()
