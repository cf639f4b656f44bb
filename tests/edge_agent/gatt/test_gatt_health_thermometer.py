"""Temperature Measurement (0x2A1C) and Intermediate Temperature (0x2A1E): parse, encode, readings."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

import pytest

from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.health_thermometer import (
    BODY_SITES,
    TemperatureMeasurement,
    TemperatureType,
    TemperatureUnit,
    encode_temperature_measurement,
    encode_temperature_type,
    parse_intermediate_temperature,
    parse_temperature_measurement,
    parse_temperature_type,
    to_readings,
)
from edge_agent.gatt.ieee11073 import SpecialValue
from fhir_contract.readings import Absent, Quantity, Reading

TIME_STAMP = b"\xe8\x07\x03\x0f\x08\x1e\x05"  # 2024-03-15 08:30:05
FULL = b"".join(
    [
        b"\x06",  # flags: Celsius, time stamp, temperature type
        b"\x4c\x0e\x00\xfe",  # temperature: 36.60 (FLOAT mantissa 3660 = 0x000E4C, exponent -2)
        TIME_STAMP,  # time stamp
        b"\x06",  # temperature type: 6, mouth
    ]
)
MINIMAL = b"".join(
    [
        b"\x00",  # flags: Celsius, nothing optional
        b"\x6e\x01\x00\xff",  # temperature: 36.6 (mantissa 366, exponent -1)
    ]
)


def test_temperature_full() -> None:
    m = parse_temperature_measurement(FULL)
    assert m == TemperatureMeasurement(
        temperature=Decimal("36.60"),
        unit=TemperatureUnit.CELSIUS,
        time_stamp=datetime(2024, 3, 15, 8, 30, 5),
        temperature_type=TemperatureType.MOUTH,
    )
    assert str(m.temperature) == "36.60"


def test_temperature_minimal() -> None:
    m = parse_temperature_measurement(MINIMAL)
    assert m == TemperatureMeasurement(temperature=Decimal("36.6"))
    assert str(m.temperature) == "36.6"
    assert (m.time_stamp, m.temperature_type) == (None, None)


def test_temperature_no_timestamp() -> None:
    data = b"".join(
        [
            b"\x05",  # flags: Fahrenheit, temperature type; no time stamp
            b"\xda\x03\x00\xff",  # temperature: 98.6 (mantissa 986, exponent -1)
            b"\x09",  # temperature type: 9, tympanum
        ]
    )
    m = parse_temperature_measurement(data)
    assert m == TemperatureMeasurement(
        temperature=Decimal("98.6"),
        unit=TemperatureUnit.FAHRENHEIT,
        temperature_type=TemperatureType.TYMPANUM,
    )


def test_temperature_too_short() -> None:
    with pytest.raises(ParseError, match="needs at least 5 bytes") as caught:
        parse_temperature_measurement(MINIMAL[:4])
    assert caught.value.characteristic == "0x2A1C Temperature Measurement"


def test_temperature_announced_fields_missing() -> None:
    with pytest.raises(ParseError) as caught:
        parse_temperature_measurement(b"\x06" + MINIMAL[1:] + TIME_STAMP)
    assert caught.value.reason == (
        "flags announce a time stamp and a temperature type but only 12 of 13 bytes are present"
    )


def test_temperature_trailing_bytes() -> None:
    with pytest.raises(ParseError) as caught:
        parse_temperature_measurement(FULL + b"\x00")
    assert caught.value.reason == "1 trailing byte after the 13 bytes the flags announce"


def test_temperature_every_truncation_is_parse_error() -> None:
    for length in range(len(FULL)):
        with pytest.raises(ParseError):
            parse_temperature_measurement(FULL[:length])


@pytest.mark.parametrize("code", [0, 10, 255])
def test_temperature_reserved_type_is_parse_error(code: int) -> None:
    with pytest.raises(ParseError, match=f"temperature type {code} is reserved"):
        parse_temperature_measurement(b"\x04" + MINIMAL[1:] + bytes([code]))


def test_temperature_special_value() -> None:
    m = parse_temperature_measurement(b"\x00\xff\xff\x7f\x00")  # FLOAT NaN 0x007FFFFF
    assert m.temperature is SpecialValue.NAN
    assert to_readings(m) == [Reading(kind="body-temperature", value=Absent("not-a-number"))]


def test_intermediate_temperature_parses_and_names_itself() -> None:
    assert parse_intermediate_temperature(MINIMAL) == TemperatureMeasurement(Decimal("36.6"))
    with pytest.raises(ParseError) as caught:
        parse_intermediate_temperature(MINIMAL + b"\x00")
    assert caught.value.characteristic == "0x2A1E Intermediate Temperature"


def test_temperature_encodes_full_vector() -> None:
    assert encode_temperature_measurement(parse_temperature_measurement(FULL)) == FULL


@pytest.mark.parametrize(
    ("fahrenheit", "time_stamp", "temperature_type"),
    list(itertools.product([False, True], repeat=3)),
)
def test_temperature_round_trip_every_flag_combination(
    fahrenheit: bool, time_stamp: bool, temperature_type: bool
) -> None:
    original = TemperatureMeasurement(
        temperature=Decimal("100.40") if fahrenheit else Decimal("38.05"),
        unit=TemperatureUnit.FAHRENHEIT if fahrenheit else TemperatureUnit.CELSIUS,
        time_stamp=datetime(2023, 7, 1, 12, 0, 0) if time_stamp else None,
        temperature_type=TemperatureType.ARMPIT if temperature_type else None,
    )
    data = encode_temperature_measurement(original)
    assert data[0] == fahrenheit | time_stamp << 1 | temperature_type << 2
    assert len(data) == 5 + 7 * time_stamp + temperature_type
    parsed = parse_temperature_measurement(data)
    assert parsed == original
    assert repr(parsed) == repr(original)


@pytest.mark.parametrize("temperature_type", list(TemperatureType))
def test_temperature_every_type_round_trips(temperature_type: TemperatureType) -> None:
    original = TemperatureMeasurement(Decimal("37.2"), temperature_type=temperature_type)
    assert parse_temperature_measurement(encode_temperature_measurement(original)) == original


def test_temperature_to_readings_celsius() -> None:
    assert to_readings(parse_temperature_measurement(FULL)) == [
        Reading(
            kind="body-temperature",
            value=Quantity(Decimal("36.60"), "Cel"),
            device_time=datetime(2024, 3, 15, 8, 30, 5),
            body_site="mouth",  # temperature type 6
        )
    ]


def test_temperature_to_readings_fahrenheit() -> None:
    m = TemperatureMeasurement(Decimal("98.6"), unit=TemperatureUnit.FAHRENHEIT)
    assert to_readings(m) == [Reading(kind="body-temperature", value=Quantity(Decimal("98.6"), "[degF]"))]


def test_temperature_type_full() -> None:
    assert parse_temperature_type(b"\x09") is TemperatureType.TYMPANUM  # 9: tympanum


def test_temperature_type_minimal() -> None:
    assert parse_temperature_type(b"\x01") is TemperatureType.ARMPIT  # 1: the lowest defined site


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "needs exactly 1 byte (temperature type), got 0"),
        (b"\x09\x00", "needs exactly 1 byte (temperature type), got 2"),
        (b"\x00", "temperature type 0 is reserved (1..9 are defined)"),
        (b"\x0a", "temperature type 10 is reserved (1..9 are defined)"),
    ],
)
def test_temperature_type_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_temperature_type(data)
    assert (caught.value.characteristic, caught.value.reason) == ("0x2A1D Temperature Type", reason)


@pytest.mark.parametrize("temperature_type", list(TemperatureType))
def test_temperature_type_round_trip(temperature_type: TemperatureType) -> None:
    assert parse_temperature_type(encode_temperature_type(temperature_type)) is temperature_type


@pytest.mark.parametrize(("temperature_type", "site"), list(BODY_SITES.items()))
def test_temperature_to_readings_carries_the_body_site(
    temperature_type: TemperatureType, site: str | None
) -> None:
    m = TemperatureMeasurement(Decimal("37.1"), temperature_type=temperature_type)
    assert [r.body_site for r in to_readings(m)] == [site]


def test_temperature_site_from_0x2a1d_applies_when_the_measurement_names_none() -> None:
    m = TemperatureMeasurement(Decimal("37.1"))
    assert to_readings(m, TemperatureType.RECTUM)[0].body_site == "rectum"
    assert to_readings(m)[0].body_site is None


def test_temperature_type_in_the_measurement_wins_over_0x2a1d() -> None:
    m = TemperatureMeasurement(Decimal("37.1"), temperature_type=TemperatureType.MOUTH)
    assert to_readings(m, TemperatureType.RECTUM)[0].body_site == "mouth"
