"""Blood Pressure Measurement (0x2A35) and Intermediate Cuff Pressure (0x2A36): parse, encode, readings."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

import pytest

from edge_agent.gatt.blood_pressure import (
    BloodPressureMeasurement,
    BloodPressureStatus,
    PressureUnit,
    PulseRateRange,
    encode_blood_pressure_measurement,
    encode_intermediate_cuff_pressure,
    parse_blood_pressure_measurement,
    parse_intermediate_cuff_pressure,
    to_readings,
)
from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.ieee11073 import SpecialValue
from fhir_contract.readings import Absent, Component, Quantity, Reading

TIME_STAMP = b"\xe8\x07\x03\x0f\x08\x1e\x05"  # 2024-03-15 08:30:05
FULL = b"".join(
    [
        b"\x1e",  # flags: mmHg, time stamp, pulse rate, user id, measurement status
        b"\x79\x00",  # systolic: 121 (SFLOAT mantissa 121, exponent 0)
        b"\x51\x00",  # diastolic: 81
        b"\x29\xf4",  # mean arterial pressure: 106.5 (mantissa 1065 = 0x429, exponent -1)
        TIME_STAMP,  # time stamp
        b"\x48\x00",  # pulse rate: 72
        b"\x01",  # user id: 1
        b"\x0d\x00",  # status: body movement, irregular pulse, pulse rate above upper limit (01 in bits 3-4)
    ]
)
MINIMAL = b"".join(
    [
        b"\x00",  # flags: mmHg, nothing optional
        b"\x79\x00",  # systolic: 121
        b"\x51\x00",  # diastolic: 81
        b"\x5b\x00",  # mean arterial pressure: 91
    ]
)


def test_blood_pressure_full() -> None:
    m = parse_blood_pressure_measurement(FULL)
    assert m == BloodPressureMeasurement(
        systolic=Decimal("121"),
        diastolic=Decimal("81"),
        mean_arterial_pressure=Decimal("106.5"),
        unit=PressureUnit.MMHG,
        time_stamp=datetime(2024, 3, 15, 8, 30, 5),
        pulse_rate=Decimal("72"),
        user_id=1,
        status=BloodPressureStatus(
            body_movement=True,
            irregular_pulse=True,
            pulse_rate_range=PulseRateRange.ABOVE_UPPER_LIMIT,
        ),
    )
    assert str(m.mean_arterial_pressure) == "106.5"


def test_blood_pressure_minimal() -> None:
    m = parse_blood_pressure_measurement(MINIMAL)
    assert m == BloodPressureMeasurement(Decimal("121"), Decimal("81"), Decimal("91"))
    assert (m.time_stamp, m.pulse_rate, m.user_id, m.status) == (None, None, None, None)


def test_blood_pressure_no_timestamp() -> None:
    data = b"".join(
        [
            b"\x1c",  # flags: mmHg, pulse rate, user id, measurement status; no time stamp
            b"\x79\x00",  # systolic: 121
            b"\x51\x00",  # diastolic: 81
            b"\x5b\x00",  # mean arterial pressure: 91
            b"\x48\x00",  # pulse rate: 72
            b"\xff",  # user id: 255, unknown user
            b"\x22\x00",  # status: cuff too loose, improper measurement position
        ]
    )
    m = parse_blood_pressure_measurement(data)
    assert m.time_stamp is None
    assert m.pulse_rate == Decimal("72")
    assert m.user_id == 255
    assert m.status == BloodPressureStatus(cuff_too_loose=True, improper_position=True)


def test_blood_pressure_kpa() -> None:
    data = b"".join(
        [
            b"\x01",  # flags: kPa
            b"\xa0\xf0",  # systolic: 16.0 kPa (mantissa 160, exponent -1)
            b"\x6b\xf0",  # diastolic: 10.7 kPa (mantissa 107, exponent -1)
            b"\x7d\xf0",  # mean arterial pressure: 12.5 kPa (mantissa 125, exponent -1)
        ]
    )
    m = parse_blood_pressure_measurement(data)
    assert m.unit is PressureUnit.KPA
    assert (m.systolic, m.diastolic, m.mean_arterial_pressure) == (
        Decimal("16.0"),
        Decimal("10.7"),
        Decimal("12.5"),
    )


def test_blood_pressure_too_short() -> None:
    with pytest.raises(ParseError, match="needs at least 7 bytes") as caught:
        parse_blood_pressure_measurement(MINIMAL[:6])
    assert caught.value.characteristic == "0x2A35 Blood Pressure Measurement"


def test_blood_pressure_empty() -> None:
    with pytest.raises(ParseError, match="got 0"):
        parse_blood_pressure_measurement(b"")


def test_blood_pressure_announced_time_stamp_missing() -> None:
    data = b"\x02" + MINIMAL[1:] + TIME_STAMP[:2]  # flags announce a time stamp; 2 of its 7 bytes follow
    with pytest.raises(ParseError) as caught:
        parse_blood_pressure_measurement(data)
    assert caught.value.reason == "flags announce a time stamp but only 9 of 14 bytes are present"


def test_blood_pressure_announced_fields_are_named() -> None:
    with pytest.raises(ParseError) as caught:
        parse_blood_pressure_measurement(b"\x1e" + MINIMAL[1:])
    assert caught.value.reason == (
        "flags announce a time stamp, a pulse rate, a user id and a measurement status "
        "but only 7 of 19 bytes are present"
    )


def test_blood_pressure_trailing_bytes() -> None:
    with pytest.raises(ParseError) as caught:
        parse_blood_pressure_measurement(MINIMAL + b"\x00")
    assert caught.value.reason == "1 trailing byte after the 7 bytes the flags announce"
    with pytest.raises(ParseError, match="2 trailing bytes after the 19 bytes"):
        parse_blood_pressure_measurement(FULL + b"\x00\x00")


def test_blood_pressure_every_truncation_is_parse_error() -> None:
    for length in range(len(FULL)):
        with pytest.raises(ParseError):
            parse_blood_pressure_measurement(FULL[:length])


def test_blood_pressure_impossible_time_stamp() -> None:
    data = b"\x02" + MINIMAL[1:] + b"\xe8\x07\x02\x1e\x08\x1e\x05"  # 30 February 2024
    with pytest.raises(ParseError, match="2024-02-30 does not exist") as caught:
        parse_blood_pressure_measurement(data)
    assert caught.value.characteristic == "0x2A35 Blood Pressure Measurement"


def test_blood_pressure_reserved_bits_ignored() -> None:
    data = b"\xe0" + MINIMAL[1:]  # flags bits 5-7 are reserved
    assert parse_blood_pressure_measurement(data) == parse_blood_pressure_measurement(MINIMAL)
    assert BloodPressureStatus.from_bits(0xFFC0) == BloodPressureStatus()


def test_intermediate_cuff_pressure_parses_and_names_itself() -> None:
    data = b"".join(
        [
            b"\x00",  # flags: mmHg
            b"\x8c\x00",  # current cuff pressure: 140
            b"\xff\x07",  # diastolic: NaN
            b"\xff\x07",  # mean arterial pressure: NaN
        ]
    )
    m = parse_intermediate_cuff_pressure(data)
    assert m.systolic == Decimal("140")
    assert m.diastolic is SpecialValue.NAN
    assert m.mean_arterial_pressure is SpecialValue.NAN
    with pytest.raises(ParseError) as caught:
        parse_intermediate_cuff_pressure(data[:3])
    assert caught.value.characteristic == "0x2A36 Intermediate Cuff Pressure"


def test_intermediate_cuff_pressure_encodes_byte_exact() -> None:
    assert encode_intermediate_cuff_pressure(Decimal(140)) == b"".join(
        [
            b"\x00",  # flags: mmHg, nothing optional
            b"\x8c\x00",  # current cuff pressure: 140
            b"\xff\x07",  # diastolic: NaN
            b"\xff\x07",  # mean arterial pressure: NaN
        ]
    )
    kpa = encode_intermediate_cuff_pressure(Decimal("18.7"), PressureUnit.KPA)
    assert kpa == b"\x01" + b"\xbb\xf0" + b"\xff\x07" * 2  # 187 x 10^-1 kPa
    assert parse_intermediate_cuff_pressure(kpa).systolic == Decimal("18.7")


def test_blood_pressure_encodes_full_vector() -> None:
    assert encode_blood_pressure_measurement(parse_blood_pressure_measurement(FULL)) == FULL


@pytest.mark.parametrize(
    ("kpa", "time_stamp", "pulse_rate", "user_id", "status"),
    list(itertools.product([False, True], repeat=5)),
)
def test_blood_pressure_round_trip_every_flag_combination(
    kpa: bool, time_stamp: bool, pulse_rate: bool, user_id: bool, status: bool
) -> None:
    original = BloodPressureMeasurement(
        systolic=Decimal("16.0") if kpa else Decimal("120.5"),
        diastolic=Decimal("10.7") if kpa else Decimal("80"),
        mean_arterial_pressure=SpecialValue.NAN,
        unit=PressureUnit.KPA if kpa else PressureUnit.MMHG,
        time_stamp=datetime(2024, 12, 31, 23, 59, 59) if time_stamp else None,
        pulse_rate=Decimal("64.0") if pulse_rate else None,
        user_id=3 if user_id else None,
        status=BloodPressureStatus(cuff_too_loose=True, pulse_rate_range=PulseRateRange.BELOW_LOWER_LIMIT)
        if status
        else None,
    )
    data = encode_blood_pressure_measurement(original)
    assert data[0] == kpa | time_stamp << 1 | pulse_rate << 2 | user_id << 3 | status << 4
    assert len(data) == 7 + 7 * time_stamp + 2 * pulse_rate + user_id + 2 * status
    parsed = parse_blood_pressure_measurement(data)
    assert parsed == original
    assert repr(parsed) == repr(original)  # same precision too: Decimal('64.0') stays Decimal('64.0')


def test_blood_pressure_encoder_refuses_user_id_out_of_range() -> None:
    with pytest.raises(ValueError, match="user id 256"):
        encode_blood_pressure_measurement(
            BloodPressureMeasurement(Decimal("120"), Decimal("80"), Decimal("93"), user_id=256)
        )


def test_blood_pressure_to_readings_mmhg_with_pulse() -> None:
    readings = to_readings(parse_blood_pressure_measurement(FULL))
    at = datetime(2024, 3, 15, 8, 30, 5)
    assert readings == [
        Reading(
            kind="blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal("121"), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal("81"), "mm[Hg]")),
                Component("mean", Quantity(Decimal("106.5"), "mm[Hg]")),
            ),
            device_time=at,
        ),
        Reading(kind="pulse-rate-cuff", value=Quantity(Decimal("72"), "/min"), device_time=at),
    ]


def test_blood_pressure_to_readings_converts_kpa_to_one_decimal_mmhg() -> None:
    m = BloodPressureMeasurement(Decimal("16.0"), Decimal("10.7"), Decimal("12.5"), unit=PressureUnit.KPA)
    [reading] = to_readings(m)
    values = {c.kind: c.value for c in reading.components}
    # 16.0 x 7.50062 = 120.00992; 10.7 x 7.50062 = 80.256634; 12.5 x 7.50062 = 93.75775
    assert values == {
        "systolic": Quantity(Decimal("120.0"), "mm[Hg]"),
        "diastolic": Quantity(Decimal("80.3"), "mm[Hg]"),
        "mean": Quantity(Decimal("93.8"), "mm[Hg]"),
    }
    systolic = values["systolic"]
    assert isinstance(systolic, Quantity)
    assert str(systolic.value) == "120.0"


def test_blood_pressure_to_readings_special_values_are_absent() -> None:
    m = BloodPressureMeasurement(
        systolic=Decimal("121"),
        diastolic=SpecialValue.NRES,
        mean_arterial_pressure=SpecialValue.NAN,
        unit=PressureUnit.KPA,
        pulse_rate=SpecialValue.POSITIVE_INFINITY,
    )
    bp, pulse = to_readings(m)
    assert bp.components[1] == Component("diastolic", Absent("error"))
    assert bp.components[2] == Component("mean", Absent("not-a-number"))
    assert pulse == Reading(kind="pulse-rate-cuff", value=Absent("positive-infinity"))
    assert bp.device_time is None
