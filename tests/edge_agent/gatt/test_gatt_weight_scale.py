"""Weight Measurement (0x2A9D): parse, encode, precision rule, readings."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

import pytest

from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.weight_scale import (
    UnitSystem,
    WeightMeasurement,
    encode_weight_measurement,
    parse_weight_measurement,
    to_readings,
)
from fhir_contract.readings import Absent, Quantity, Reading

TIME_STAMP = b"\xe8\x07\x03\x0f\x08\x1e\x05"  # 2024-03-15 08:30:05
FULL = b"".join(
    [
        b"\x0e",  # flags: SI, time stamp, user id, BMI and height
        b"\x86\x38",  # weight: 14470 x 0.005 kg = 72.350 kg
        TIME_STAMP,  # time stamp
        b"\x03",  # user id: 3
        b"\xec\x00",  # BMI: 236 x 0.1 = 23.6 kg/m2
        b"\xd9\x06",  # height: 1753 x 0.001 m = 1.753 m
    ]
)
MINIMAL = b"".join(
    [
        b"\x00",  # flags: SI, nothing optional
        b"\x86\x38",  # weight: 72.350 kg
    ]
)


def test_weight_full() -> None:
    m = parse_weight_measurement(FULL)
    assert m == WeightMeasurement(
        weight=Decimal("72.350"),
        units=UnitSystem.SI,
        time_stamp=datetime(2024, 3, 15, 8, 30, 5),
        user_id=3,
        bmi=Decimal("23.6"),
        height=Decimal("1.753"),
    )
    assert str(m.weight) == "72.350"  # the resolution's three decimals are kept


def test_weight_minimal() -> None:
    m = parse_weight_measurement(MINIMAL)
    assert m == WeightMeasurement(weight=Decimal("72.350"))
    assert (m.time_stamp, m.user_id, m.bmi, m.height) == (None, None, None, None)


def test_weight_no_timestamp() -> None:
    data = b"".join(
        [
            b"\x0c",  # flags: SI, user id, BMI and height; no time stamp
            b"\x86\x38",  # weight: 72.350 kg
            b"\xff",  # user id: 255, unknown user
            b"\xec\x00",  # BMI: 23.6
            b"\xd9\x06",  # height: 1.753 m
        ]
    )
    m = parse_weight_measurement(data)
    assert m.time_stamp is None
    assert (m.user_id, m.bmi, m.height) == (255, Decimal("23.6"), Decimal("1.753"))


def test_weight_imperial() -> None:
    data = b"".join(
        [
            b"\x09",  # flags: imperial, BMI and height
            b"\x4e\x3e",  # weight: 15950 x 0.01 lb = 159.50 lb
            b"\xec\x00",  # BMI: 23.6
            b"\xb2\x02",  # height: 690 x 0.1 in = 69.0 in
        ]
    )
    m = parse_weight_measurement(data)
    assert m.units is UnitSystem.IMPERIAL
    assert (str(m.weight), str(m.height)) == ("159.50", "69.0")


def test_weight_measurement_unsuccessful() -> None:
    m = parse_weight_measurement(b"\x00\xff\xff")  # weight 0xFFFF: measurement unsuccessful
    assert m.weight is None
    assert to_readings(m) == [Reading(kind="body-weight", value=Absent("error"))]


def test_weight_too_short() -> None:
    with pytest.raises(ParseError, match="needs at least 3 bytes") as caught:
        parse_weight_measurement(b"\x00\x86")
    assert caught.value.characteristic == "0x2A9D Weight Measurement"


def test_weight_announced_bmi_missing() -> None:
    with pytest.raises(ParseError) as caught:
        parse_weight_measurement(b"\x08" + MINIMAL[1:] + b"\xec\x00")
    assert caught.value.reason == "flags announce BMI and height but only 5 of 7 bytes are present"


def test_weight_trailing_bytes() -> None:
    with pytest.raises(ParseError) as caught:
        parse_weight_measurement(MINIMAL + b"\x01")
    assert caught.value.reason == "1 trailing byte after the 3 bytes the flags announce"


def test_weight_every_truncation_is_parse_error() -> None:
    for length in range(len(FULL)):
        with pytest.raises(ParseError):
            parse_weight_measurement(FULL[:length])


def test_weight_encodes_full_vector() -> None:
    assert encode_weight_measurement(parse_weight_measurement(FULL)) == FULL


@pytest.mark.parametrize(
    ("imperial", "time_stamp", "user_id", "bmi_and_height"),
    list(itertools.product([False, True], repeat=4)),
)
def test_weight_round_trip_every_flag_combination(
    imperial: bool, time_stamp: bool, user_id: bool, bmi_and_height: bool
) -> None:
    original = WeightMeasurement(
        weight=Decimal("180.25") if imperial else Decimal("81.905"),
        units=UnitSystem.IMPERIAL if imperial else UnitSystem.SI,
        time_stamp=datetime(2024, 2, 29, 7, 0, 0) if time_stamp else None,
        user_id=1 if user_id else None,
        bmi=Decimal("26.4") if bmi_and_height else None,
        height=(Decimal("71.5") if imperial else Decimal("1.762")) if bmi_and_height else None,
    )
    data = encode_weight_measurement(original)
    assert data[0] == imperial | time_stamp << 1 | user_id << 2 | bmi_and_height << 3
    assert len(data) == 3 + 7 * time_stamp + user_id + 4 * bmi_and_height
    parsed = parse_weight_measurement(data)
    assert parsed == original
    assert repr(parsed) == repr(original)


def test_weight_unsuccessful_round_trips() -> None:
    original = WeightMeasurement(weight=None, user_id=2)
    assert encode_weight_measurement(original) == b"\x04\xff\xff\x02"
    assert parse_weight_measurement(encode_weight_measurement(original)) == original


@pytest.mark.parametrize(
    "measurement",
    [
        WeightMeasurement(weight=Decimal("72.351")),  # not a multiple of 0.005 kg
        WeightMeasurement(weight=Decimal("72.355"), units=UnitSystem.IMPERIAL),  # not a multiple of 0.01 lb
        WeightMeasurement(weight=Decimal("327.675")),  # 65535 steps: the "unsuccessful" code
        WeightMeasurement(weight=Decimal("400")),  # beyond uint16
        WeightMeasurement(weight=Decimal("-1")),
        WeightMeasurement(weight=Decimal("70"), bmi=Decimal("22.55"), height=Decimal("1.8")),
    ],
)
def test_weight_encoder_refuses_values_the_fields_cannot_carry(measurement: WeightMeasurement) -> None:
    with pytest.raises(ValueError):
        encode_weight_measurement(measurement)


def test_weight_bmi_and_height_come_together() -> None:
    with pytest.raises(ValueError, match="both or neither"):
        WeightMeasurement(weight=Decimal("70"), bmi=Decimal("22.0"))


def test_weight_to_readings_si() -> None:
    at = datetime(2024, 3, 15, 8, 30, 5)
    readings = to_readings(parse_weight_measurement(FULL))
    assert readings == [
        Reading(kind="body-weight", value=Quantity(Decimal("72.350"), "kg"), device_time=at),
        Reading(kind="bmi", value=Quantity(Decimal("23.6"), "kg/m2"), device_time=at),
        Reading(kind="body-height", value=Quantity(Decimal("175.3"), "cm"), device_time=at),
    ]
    height = readings[2].value
    assert isinstance(height, Quantity)
    assert str(height.value) == "175.3"  # metres to centimetres exactly, resolution 0.1 cm


def test_weight_to_readings_imperial() -> None:
    m = WeightMeasurement(
        weight=Decimal("159.50"), units=UnitSystem.IMPERIAL, bmi=Decimal("23.6"), height=Decimal("69.0")
    )
    assert to_readings(m) == [
        Reading(kind="body-weight", value=Quantity(Decimal("159.50"), "[lb_av]")),
        Reading(kind="bmi", value=Quantity(Decimal("23.6"), "kg/m2")),
        Reading(kind="body-height", value=Quantity(Decimal("69.0"), "[in_i]")),
    ]
