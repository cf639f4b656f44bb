"""Glucose Measurement (0x2A18) and Glucose Feature (0x2A51): parse, encode, units, readings."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

import pytest

from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.glucose import (
    GlucoseConcentrationUnit,
    GlucoseFeature,
    GlucoseMeasurement,
    GlucoseSensorStatus,
    GlucoseType,
    SampleLocation,
    encode_glucose_feature,
    encode_glucose_measurement,
    parse_glucose_feature,
    parse_glucose_measurement,
    to_readings,
)
from edge_agent.gatt.ieee11073 import SpecialValue
from fhir_contract.readings import Absent, Quantity, Reading

BASE_TIME = b"\xe8\x07\x03\x0f\x08\x1e\x05"  # 2024-03-15 08:30:05
FULL = b"".join(
    [
        b"\x1b",  # flags: time offset, concentration + type/location, kg/L, sensor status, context follows
        b"\x07\x00",  # sequence number: 7
        BASE_TIME,  # base time
        b"\xfb\xff",  # time offset: -5 minutes
        b"\x61\xb0",  # concentration: 97E-5 kg/L (mantissa 97, exponent -5) = 97 mg/dL
        b"\x11",  # type 1 capillary whole blood (low nibble), location 1 finger (high nibble)
        b"\x01\x00",  # sensor status: device battery low (bit 0)
    ]
)
MINIMAL = b"".join(
    [
        b"\x00",  # flags: nothing optional
        b"\x2a\x01",  # sequence number: 298
        BASE_TIME,  # base time
    ]
)
MOL_PER_L = b"".join(
    [
        b"\x06",  # flags: concentration + type/location, in mol/L
        b"\x08\x00",  # sequence number: 8
        BASE_TIME,  # base time
        b"\x36\xc0",  # concentration: 54E-4 mol/L (mantissa 54, exponent -4) = 5.4 mmol/L
        b"\x22",  # type 2 capillary plasma, location 2 alternate site test
    ]
)


def test_glucose_full() -> None:
    m = parse_glucose_measurement(FULL)
    assert m == GlucoseMeasurement(
        sequence_number=7,
        base_time=datetime(2024, 3, 15, 8, 30, 5),
        time_offset=-5,
        concentration=Decimal("0.00097"),
        unit=GlucoseConcentrationUnit.KG_PER_L,
        glucose_type=GlucoseType.CAPILLARY_WHOLE_BLOOD,
        sample_location=SampleLocation.FINGER,
        sensor_status=GlucoseSensorStatus.DEVICE_BATTERY_LOW,
        context_follows=True,
    )
    assert m.device_time == datetime(2024, 3, 15, 8, 25, 5)


def test_glucose_minimal() -> None:
    m = parse_glucose_measurement(MINIMAL)
    assert m == GlucoseMeasurement(sequence_number=298, base_time=datetime(2024, 3, 15, 8, 30, 5))
    assert to_readings(m) == []  # no concentration: a record without a reading


def test_glucose_mol_per_l() -> None:
    m = parse_glucose_measurement(MOL_PER_L)
    assert (m.concentration, m.unit) == (Decimal("0.0054"), GlucoseConcentrationUnit.MOL_PER_L)
    assert (m.glucose_type, m.sample_location) == (
        GlucoseType.CAPILLARY_PLASMA,
        SampleLocation.ALTERNATE_SITE_TEST,
    )


def test_glucose_unknown_base_time() -> None:
    m = parse_glucose_measurement(b"\x01\x01\x00" + bytes(7) + b"\x0a\x00")  # zeros; offset 10 min
    assert (m.base_time, m.time_offset, m.device_time) == (None, 10, None)


def test_glucose_too_short() -> None:
    with pytest.raises(ParseError, match="needs at least 10 bytes") as caught:
        parse_glucose_measurement(MINIMAL[:9])
    assert caught.value.characteristic == "0x2A18 Glucose Measurement"


def test_glucose_announced_fields_missing() -> None:
    with pytest.raises(ParseError) as caught:
        parse_glucose_measurement(b"\x0a" + MINIMAL[1:] + b"\x61\xb0")
    assert caught.value.reason == (
        "flags announce a concentration with type and sample location and a sensor status annunciation "
        "but only 12 of 15 bytes are present"
    )


def test_glucose_trailing_bytes() -> None:
    with pytest.raises(ParseError) as caught:
        parse_glucose_measurement(MINIMAL + b"\x00\x00")
    assert caught.value.reason == "2 trailing bytes after the 10 bytes the flags announce"


def test_glucose_every_truncation_is_parse_error() -> None:
    for length in range(len(FULL)):
        with pytest.raises(ParseError):
            parse_glucose_measurement(FULL[:length])


@pytest.mark.parametrize(
    ("type_and_location", "reason"),
    [
        (0x10, "glucose type 0 is reserved (defined: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)"),
        (0x1B, "glucose type 11 is reserved (defined: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)"),
        (0x01, "sample location 0 is reserved (defined: 1, 2, 3, 4, 15)"),
        (0x51, "sample location 5 is reserved (defined: 1, 2, 3, 4, 15)"),
    ],
)
def test_glucose_reserved_type_or_location_is_parse_error(type_and_location: int, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_glucose_measurement(b"\x02" + MINIMAL[1:] + b"\x61\xb0" + bytes((type_and_location,)))
    assert caught.value.reason == reason


def test_glucose_reserved_bits_ignored() -> None:
    m = parse_glucose_measurement(b"\xe8" + MINIMAL[1:] + b"\x00\xf0")  # reserved flags; status bits 12-15
    assert (m.sensor_status, m.context_follows) == (GlucoseSensorStatus(0), False)


def test_glucose_encodes_full_vector() -> None:
    assert encode_glucose_measurement(parse_glucose_measurement(FULL)) == FULL
    assert encode_glucose_measurement(parse_glucose_measurement(MOL_PER_L)) == MOL_PER_L


@pytest.mark.parametrize(
    ("offset", "concentration", "mol", "status", "context"), list(itertools.product([False, True], repeat=5))
)
def test_glucose_round_trip_every_flag_combination(
    offset: bool, concentration: bool, mol: bool, status: bool, context: bool
) -> None:
    original = GlucoseMeasurement(
        sequence_number=65535,
        base_time=datetime(2025, 12, 31, 23, 59, 59),
        time_offset=-32768 if offset else None,
        concentration=(Decimal("0.0061") if mol else Decimal("0.00123")) if concentration else None,
        unit=GlucoseConcentrationUnit.MOL_PER_L if mol else GlucoseConcentrationUnit.KG_PER_L,
        glucose_type=GlucoseType.VENOUS_PLASMA if concentration else None,
        sample_location=SampleLocation.NOT_AVAILABLE if concentration else None,
        sensor_status=GlucoseSensorStatus.TIME_FAULT | GlucoseSensorStatus.STRIP_PULLED_TOO_SOON
        if status
        else None,
        context_follows=context,
    )
    data = encode_glucose_measurement(original)
    assert data[0] == offset | concentration << 1 | mol << 2 | status << 3 | context << 4
    assert len(data) == 10 + 2 * offset + 3 * concentration + 2 * status
    parsed = parse_glucose_measurement(data)
    assert parsed == original
    assert repr(parsed) == repr(original)


def test_glucose_concentration_type_and_location_come_together() -> None:
    with pytest.raises(ValueError, match="give all or none"):
        GlucoseMeasurement(1, None, concentration=Decimal("0.001"))


def test_glucose_to_readings_kg_per_l_becomes_mg_per_dl() -> None:
    assert to_readings(parse_glucose_measurement(FULL)) == [
        Reading(
            kind="glucose-capillary-whole-blood",
            value=Quantity(Decimal("97"), "mg/dL"),
            device_time=datetime(2024, 3, 15, 8, 25, 5),  # base time + (-5) minutes
        )
    ]


def test_glucose_to_readings_mol_per_l_becomes_mmol_per_l() -> None:
    (reading,) = to_readings(parse_glucose_measurement(MOL_PER_L))
    assert reading == Reading(
        kind="glucose-capillary-plasma",
        value=Quantity(Decimal("5.4"), "mmol/L"),
        device_time=datetime(2024, 3, 15, 8, 30, 5),
    )


@pytest.mark.parametrize(
    ("concentration", "unit", "expected"),
    [
        ("0.00097", GlucoseConcentrationUnit.KG_PER_L, ("97", "mg/dL")),
        ("0.000975", GlucoseConcentrationUnit.KG_PER_L, ("97.5", "mg/dL")),  # digits kept, not rounded
        ("0.00120", GlucoseConcentrationUnit.KG_PER_L, ("120", "mg/dL")),  # mantissa 120, exponent -5
        ("0.0012", GlucoseConcentrationUnit.KG_PER_L, ("1.2E+2", "mg/dL")),  # two significant digits, as sent
        ("0.0054", GlucoseConcentrationUnit.MOL_PER_L, ("5.4", "mmol/L")),
        ("0.00540", GlucoseConcentrationUnit.MOL_PER_L, ("5.40", "mmol/L")),  # precision kept
        ("0.012", GlucoseConcentrationUnit.MOL_PER_L, ("12", "mmol/L")),
    ],
)
def test_glucose_unit_conversion_known_answers(
    concentration: str, unit: GlucoseConcentrationUnit, expected: tuple[str, str]
) -> None:
    m = GlucoseMeasurement(
        1,
        None,
        concentration=Decimal(concentration),
        unit=unit,
        glucose_type=GlucoseType.CAPILLARY_WHOLE_BLOOD,
        sample_location=SampleLocation.FINGER,
    )
    (reading,) = to_readings(m)
    assert isinstance(reading.value, Quantity)
    assert (str(reading.value.value), reading.value.unit) == expected


@pytest.mark.parametrize(
    ("glucose_type", "kind"),
    [
        (GlucoseType.CAPILLARY_WHOLE_BLOOD, "glucose-capillary-whole-blood"),
        (GlucoseType.CAPILLARY_PLASMA, "glucose-capillary-plasma"),
        (GlucoseType.VENOUS_WHOLE_BLOOD, "glucose-venous-whole-blood"),
        (GlucoseType.VENOUS_PLASMA, "glucose-venous-plasma"),
        (GlucoseType.ARTERIAL_WHOLE_BLOOD, "glucose-arterial-whole-blood"),
        (GlucoseType.ARTERIAL_PLASMA, "glucose-arterial-plasma"),
        (GlucoseType.UNDETERMINED_WHOLE_BLOOD, "glucose-undetermined-whole-blood"),
        (GlucoseType.UNDETERMINED_PLASMA, "glucose-undetermined-plasma"),
        (GlucoseType.INTERSTITIAL_FLUID, "cgm-glucose"),  # same codes as CGM readings: same kind
    ],
)
def test_glucose_type_selects_the_kind(glucose_type: GlucoseType, kind: str) -> None:
    m = GlucoseMeasurement(
        1,
        None,
        concentration=Decimal("0.001"),
        glucose_type=glucose_type,
        sample_location=SampleLocation.FINGER,
    )
    assert [r.kind for r in to_readings(m)] == [kind]


@pytest.mark.parametrize(
    ("glucose_type", "location"),
    [
        (GlucoseType.CONTROL_SOLUTION, SampleLocation.NOT_AVAILABLE),
        (GlucoseType.CAPILLARY_WHOLE_BLOOD, SampleLocation.CONTROL_SOLUTION),
    ],
)
def test_glucose_control_solution_is_not_a_patient_reading(
    glucose_type: GlucoseType, location: SampleLocation
) -> None:
    m = GlucoseMeasurement(
        1, None, concentration=Decimal("0.001"), glucose_type=glucose_type, sample_location=location
    )
    assert to_readings(m) == []


@pytest.mark.parametrize(
    ("status", "value"),
    [
        (GlucoseSensorStatus.SENSOR_MALFUNCTION, Absent("error")),
        (GlucoseSensorStatus.SAMPLE_SIZE_INSUFFICIENT, Absent("error")),
        (GlucoseSensorStatus.STRIP_INSERTION_ERROR, Absent("error")),
        (GlucoseSensorStatus.STRIP_TYPE_INCORRECT, Absent("error")),
        (GlucoseSensorStatus.STRIP_PULLED_TOO_SOON, Absent("error")),
        (GlucoseSensorStatus.GENERAL_DEVICE_FAULT, Absent("error")),
        (GlucoseSensorStatus.RESULT_TOO_HIGH, Absent("positive-infinity")),
        (GlucoseSensorStatus.RESULT_TOO_LOW, Absent("negative-infinity")),
        (GlucoseSensorStatus.RESULT_TOO_HIGH | GlucoseSensorStatus.SENSOR_MALFUNCTION, Absent("error")),
        (GlucoseSensorStatus.DEVICE_BATTERY_LOW, Quantity(Decimal("100"), "mg/dL")),
        (GlucoseSensorStatus.SENSOR_TEMPERATURE_TOO_HIGH, Quantity(Decimal("100"), "mg/dL")),
    ],
)
def test_glucose_sensor_status_decides_whether_the_value_stands(
    status: GlucoseSensorStatus, value: Absent | Quantity
) -> None:
    m = GlucoseMeasurement(
        1,
        None,
        concentration=Decimal("0.001"),
        glucose_type=GlucoseType.CAPILLARY_PLASMA,
        sample_location=SampleLocation.FINGER,
        sensor_status=status,
    )
    assert [r.value for r in to_readings(m)] == [value]


def test_glucose_time_fault_drops_the_device_time() -> None:
    m = parse_glucose_measurement(FULL)
    faulty = GlucoseMeasurement(
        m.sequence_number,
        m.base_time,
        m.time_offset,
        m.concentration,
        m.unit,
        m.glucose_type,
        m.sample_location,
        GlucoseSensorStatus.TIME_FAULT,
    )
    assert [r.device_time for r in to_readings(faulty)] == [None]


def test_glucose_special_value_is_absent() -> None:
    m = GlucoseMeasurement(
        1,
        None,
        concentration=SpecialValue.POSITIVE_INFINITY,
        glucose_type=GlucoseType.CAPILLARY_PLASMA,
        sample_location=SampleLocation.FINGER,
    )
    assert [r.value for r in to_readings(m)] == [Absent("positive-infinity")]


def test_glucose_feature() -> None:
    features = parse_glucose_feature(b"\x03\x04")  # bits 0, 1 and 10
    expected = (
        GlucoseFeature.LOW_BATTERY_DETECTION
        | GlucoseFeature.SENSOR_MALFUNCTION_DETECTION
        | GlucoseFeature.MULTIPLE_BOND
    )
    assert features == expected
    assert encode_glucose_feature(features) == b"\x03\x04"
    assert parse_glucose_feature(b"\x00\xf8") == GlucoseFeature(0)  # reserved bits 11-15 ignored


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x00"])
def test_glucose_feature_needs_two_bytes(data: bytes) -> None:
    with pytest.raises(ParseError, match="needs exactly 2 bytes") as caught:
        parse_glucose_feature(data)
    assert caught.value.characteristic == "0x2A51 Glucose Feature"
