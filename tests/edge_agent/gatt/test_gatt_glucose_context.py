"""Glucose Measurement Context (0x2A34): parse, encode, every flag combination."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.glucose_context import (
    EXERCISE_DURATION_OVERRUN,
    Carbohydrate,
    CarbohydrateId,
    Exercise,
    GlucoseMeasurementContext,
    Health,
    Meal,
    Medication,
    MedicationId,
    MedicationUnit,
    encode_glucose_measurement_context,
    parse_glucose_measurement_context,
)
from edge_agent.gatt.glucose_context import Tester as GlucoseTester  # not "Test*": pytest would collect it
from edge_agent.gatt.ieee11073 import SpecialValue

FULL = b"".join(
    [
        b"\xdf",  # flags: carbohydrate, meal, tester-health, exercise, medication (kg), HbA1c, extended
        b"\x07\x00",  # sequence number: 7
        b"\x00",  # extended flags: none set
        b"\x01",  # carbohydrate id: 1 breakfast
        b"\x32\xd0",  # carbohydrate: 0.050 kg (mantissa 50, exponent -3)
        b"\x01",  # meal: 1 preprandial
        b"\x51",  # tester 1 self (low nibble), health 5 no health issues (high nibble)
        b"\x08\x07",  # exercise duration: 1800 s
        b"\x32",  # exercise intensity: 50 %
        b"\x01",  # medication id: 1 rapid acting insulin
        b"\x04\xa0",  # medication: 4E-6 kg = 4 mg (mantissa 4, exponent -6)
        b"\x41\xf0",  # HbA1c: 6.5 % (mantissa 65, exponent -1)
    ]
)
MINIMAL = b"".join(
    [
        b"\x00",  # flags: nothing optional
        b"\x07\x00",  # sequence number: 7
    ]
)


def test_glucose_context_full() -> None:
    assert parse_glucose_measurement_context(FULL) == GlucoseMeasurementContext(
        sequence_number=7,
        extended_flags=0,
        carbohydrate=Carbohydrate(CarbohydrateId.BREAKFAST, Decimal("0.050")),
        meal=Meal.PREPRANDIAL,
        tester=GlucoseTester.SELF,
        health=Health.NO_HEALTH_ISSUES,
        exercise=Exercise(duration=1800, intensity=50),
        medication=Medication(
            MedicationId.RAPID_ACTING_INSULIN, Decimal("0.000004"), MedicationUnit.KILOGRAMS
        ),
        hba1c=Decimal("6.5"),
    )


def test_glucose_context_minimal() -> None:
    assert parse_glucose_measurement_context(MINIMAL) == GlucoseMeasurementContext(sequence_number=7)


def test_glucose_context_medication_in_litres_and_exercise_overrun() -> None:
    data = b"".join(
        [
            b"\x38",  # flags: exercise, medication, medication in litres
            b"\x08\x00",  # sequence number: 8
            b"\xff\xff",  # exercise duration: overrun
            b"\x64",  # exercise intensity: 100 %
            b"\x04",  # medication id: 4 long acting insulin
            b"\x0a\xc0",  # medication: 10E-4 L = 1 mL
        ]
    )
    c = parse_glucose_measurement_context(data)
    assert c.exercise == Exercise(EXERCISE_DURATION_OVERRUN, 100)
    assert c.medication == Medication(
        MedicationId.LONG_ACTING_INSULIN, Decimal("0.0010"), MedicationUnit.LITRES
    )


def test_glucose_context_too_short() -> None:
    with pytest.raises(ParseError, match="needs at least 3 bytes") as caught:
        parse_glucose_measurement_context(b"\x00\x07")
    assert caught.value.characteristic == "0x2A34 Glucose Measurement Context"


def test_glucose_context_announced_fields_missing() -> None:
    with pytest.raises(ParseError) as caught:
        parse_glucose_measurement_context(b"\x42" + MINIMAL[1:] + b"\x01")  # meal, HbA1c
    assert caught.value.reason == "flags announce a meal and an HbA1c but only 4 of 6 bytes are present"


def test_glucose_context_trailing_bytes() -> None:
    with pytest.raises(ParseError) as caught:
        parse_glucose_measurement_context(MINIMAL + b"\x01")
    assert caught.value.reason == "1 trailing byte after the 3 bytes the flags announce"


def test_glucose_context_every_truncation_is_parse_error() -> None:
    for length in range(len(FULL)):
        with pytest.raises(ParseError):
            parse_glucose_measurement_context(FULL[:length])


@pytest.mark.parametrize(
    ("flags", "field", "reason"),
    [
        (0x01, b"\x08\x00\x00", "carbohydrate id 8 is reserved (defined: 1, 2, 3, 4, 5, 6, 7)"),
        (0x02, b"\x00", "meal 0 is reserved (defined: 1, 2, 3, 4, 5)"),
        (0x04, b"\x54", "tester 4 is reserved (defined: 1, 2, 3, 15)"),
        (0x04, b"\x61", "health 6 is reserved (defined: 1, 2, 3, 4, 5, 15)"),
        (0x10, b"\x06\x00\x00", "medication id 6 is reserved (defined: 1, 2, 3, 4, 5)"),
    ],
)
def test_glucose_context_reserved_values_are_parse_errors(flags: int, field: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_glucose_measurement_context(bytes((flags,)) + MINIMAL[1:] + field)
    assert caught.value.reason == reason


def test_glucose_context_encodes_full_vector() -> None:
    assert encode_glucose_measurement_context(parse_glucose_measurement_context(FULL)) == FULL


def test_glucose_context_round_trip_every_flag_combination() -> None:
    # 2**8 combinations of the seven optional fields and the medication unit, in one loop.
    for carbs, meal, tester, exercise, medication, litres, hba1c, extended in itertools.product(
        [False, True], repeat=8
    ):
        original = GlucoseMeasurementContext(
            sequence_number=65535,
            extended_flags=0xA5 if extended else None,
            carbohydrate=Carbohydrate(CarbohydrateId.BRUNCH, SpecialValue.NAN) if carbs else None,
            meal=Meal.BEDTIME if meal else None,
            tester=GlucoseTester.NOT_AVAILABLE if tester else None,
            health=Health.UNDER_STRESS if tester else None,
            exercise=Exercise(0, 0) if exercise else None,
            medication=(
                Medication(
                    MedicationId.PRE_MIXED_INSULIN,
                    Decimal("0.0025"),
                    MedicationUnit.LITRES if litres else MedicationUnit.KILOGRAMS,
                )
                if medication
                else None
            ),
            hba1c=Decimal("7.25") if hba1c else None,
        )
        data = encode_glucose_measurement_context(original)
        litres_bit = medication and litres
        assert data[
            0
        ] == carbs | meal << 1 | tester << 2 | exercise << 3 | medication << 4 | litres_bit << 5 | (
            hba1c << 6
        ) | (extended << 7)
        assert (
            len(data) == 3 + extended + 3 * carbs + meal + tester + 3 * exercise + 3 * medication + 2 * hba1c
        )
        parsed = parse_glucose_measurement_context(data)
        assert parsed == original
        assert repr(parsed) == repr(original)


def test_glucose_context_tester_and_health_come_together() -> None:
    with pytest.raises(ValueError, match="both or neither"):
        GlucoseMeasurementContext(sequence_number=1, tester=GlucoseTester.SELF)
