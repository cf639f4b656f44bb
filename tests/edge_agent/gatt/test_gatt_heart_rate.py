"""Heart Rate Measurement (0x2A37) and Body Sensor Location (0x2A38): parse, encode, readings."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.heart_rate import (
    BodySensorLocation,
    HeartRateMeasurement,
    SensorContact,
    encode_body_sensor_location,
    encode_heart_rate_measurement,
    parse_body_sensor_location,
    parse_heart_rate_measurement,
    rr_interval_ms,
    to_readings,
)
from fhir_contract.readings import Absent, Quantity, Reading

FULL = b"".join(
    [
        b"\x1f",  # flags: uint16 heart rate, contact detected, contact supported, energy, RR intervals
        b"\x48\x00",  # heart rate: 72 /min (uint16)
        b"\xd2\x04",  # energy expended: 1234 kJ
        b"\x20\x03",  # RR interval: 800/1024 s
        b"\x00\x04",  # RR interval: 1024/1024 s
    ]
)
MINIMAL = b"".join(
    [
        b"\x00",  # flags: uint8 heart rate, no contact status, nothing optional
        b"\x48",  # heart rate: 72 /min
    ]
)


def test_heart_rate_full() -> None:
    assert parse_heart_rate_measurement(FULL) == HeartRateMeasurement(
        heart_rate=72,
        sensor_contact=SensorContact.DETECTED,
        energy_expended=1234,
        rr_intervals=(800, 1024),
        uint16_format=True,
    )


def test_heart_rate_minimal() -> None:
    assert parse_heart_rate_measurement(MINIMAL) == HeartRateMeasurement(heart_rate=72)


def test_heart_rate_uint16_above_255() -> None:
    m = parse_heart_rate_measurement(b"\x01\x2c\x01")  # flags: uint16; heart rate 300
    assert (m.heart_rate, m.uint16_format) == (300, True)


@pytest.mark.parametrize(
    ("flags", "contact"),
    [
        (0x00, SensorContact.NOT_SUPPORTED),
        (0x02, SensorContact.NOT_SUPPORTED),  # "detected" without "supported" means nothing
        (0x04, SensorContact.NOT_DETECTED),
        (0x06, SensorContact.DETECTED),
    ],
)
def test_heart_rate_sensor_contact_bits(flags: int, contact: SensorContact) -> None:
    assert parse_heart_rate_measurement(bytes((flags, 72))).sensor_contact is contact


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("1048"),  # flags: RR intervals; heart rate 72 /min (uint8); no interval follows
        bytes.fromhex("170101"),  # flags: uint16, contact detected and supported, RR; 257 /min; none
        bytes.fromhex("1848d204"),  # flags: energy, RR intervals; 72 /min; 1234 kJ; no interval follows
    ],
    ids=["1048", "170101", "1848d204"],
)
def test_heart_rate_rr_flag_without_an_interval_is_parse_error(data: bytes) -> None:
    # The flag says the field is present, and a uint16[] field present holds at least one element: a
    # value that stops before it was cut short, like any other announced field that is missing.
    with pytest.raises(ParseError) as caught:
        parse_heart_rate_measurement(data)
    assert caught.value.characteristic == "0x2A37 Heart Rate Measurement"
    assert "one or more 2-byte RR intervals" in caught.value.reason


def test_heart_rate_encoder_never_announces_rr_intervals_it_does_not_send() -> None:
    # What the emulated strap and the tests send comes from here: no RR flag without an interval.
    data = encode_heart_rate_measurement(HeartRateMeasurement(heart_rate=72, rr_intervals=()))
    assert data == bytes.fromhex("0048")


def test_heart_rate_many_rr_intervals() -> None:
    data = b"\x10\x48" + b"".join(rr.to_bytes(2, "little") for rr in range(700, 709))
    assert parse_heart_rate_measurement(data).rr_intervals == tuple(range(700, 709))


def test_heart_rate_too_short() -> None:
    with pytest.raises(ParseError, match="needs at least 2 bytes") as caught:
        parse_heart_rate_measurement(b"\x00")
    assert caught.value.characteristic == "0x2A37 Heart Rate Measurement"


def test_heart_rate_announced_energy_missing() -> None:
    with pytest.raises(ParseError) as caught:
        parse_heart_rate_measurement(b"\x08\x48\xd2")  # flags: energy; one byte of two
    assert caught.value.reason == "flags announce energy expended but only 3 of 4 bytes are present"


def test_heart_rate_trailing_bytes() -> None:
    with pytest.raises(ParseError) as caught:
        parse_heart_rate_measurement(MINIMAL + b"\x00")
    assert caught.value.reason == "1 trailing byte after the 2 bytes the flags announce"


def test_heart_rate_half_an_rr_interval_is_parse_error() -> None:
    with pytest.raises(ParseError, match="one or more 2-byte RR intervals"):
        parse_heart_rate_measurement(b"\x18\x48\xd2\x04\x20")  # energy, then 1 byte of an RR interval


def test_heart_rate_every_truncation_of_the_fixed_fields_is_parse_error() -> None:
    for length in range(5):  # up to the end of the energy field every cut is an error
        with pytest.raises(ParseError):
            parse_heart_rate_measurement(FULL[:length])


def test_heart_rate_encodes_full_vector() -> None:
    assert encode_heart_rate_measurement(parse_heart_rate_measurement(FULL)) == FULL


@pytest.mark.parametrize(
    ("uint16_format", "contact", "energy", "rr_count"),
    list(itertools.product([False, True], list(SensorContact), [False, True], [0, 1, 3])),
)
def test_heart_rate_round_trip_every_flag_combination(
    uint16_format: bool, contact: SensorContact, energy: bool, rr_count: int
) -> None:
    original = HeartRateMeasurement(
        heart_rate=61,
        sensor_contact=contact,
        energy_expended=65535 if energy else None,
        rr_intervals=tuple(range(900, 900 + rr_count)),
        uint16_format=uint16_format,
    )
    data = encode_heart_rate_measurement(original)
    contact_bits = {SensorContact.NOT_SUPPORTED: 0, SensorContact.NOT_DETECTED: 4, SensorContact.DETECTED: 6}
    assert data[0] == uint16_format | contact_bits[contact] | energy << 3 | (rr_count > 0) << 4
    assert len(data) == 2 + uint16_format + 2 * energy + 2 * rr_count
    assert parse_heart_rate_measurement(data) == original


def test_heart_rate_encoder_refuses_a_rate_its_width_cannot_carry() -> None:
    with pytest.raises(ValueError, match="heart rate 300"):
        encode_heart_rate_measurement(HeartRateMeasurement(heart_rate=300))


@pytest.mark.parametrize(
    ("ticks", "ms"),
    [
        (1024, "1000.0"),  # one second
        (800, "781.3"),  # 781.25 rounds half up
        (1, "1.0"),  # 0.9765625
        (512, "500.0"),
        (0xFFFF, "63999.0"),  # 63999.0234375
    ],
)
def test_rr_interval_known_answers(ticks: int, ms: str) -> None:
    assert str(rr_interval_ms(ticks)) == ms


def test_heart_rate_to_readings() -> None:
    assert to_readings(parse_heart_rate_measurement(FULL)) == [
        Reading(kind="heart-rate", value=Quantity(Decimal("72"), "/min")),
        Reading(kind="rr-interval", value=Quantity(Decimal("781.3"), "ms"), position=0),
        Reading(kind="rr-interval", value=Quantity(Decimal("1000.0"), "ms"), position=1),
        Reading(kind="energy-expended", value=Quantity(Decimal("1234"), "kJ")),
    ]


def test_heart_rate_to_readings_without_skin_contact() -> None:
    m = HeartRateMeasurement(
        heart_rate=0, sensor_contact=SensorContact.NOT_DETECTED, energy_expended=10, rr_intervals=(800,)
    )
    assert to_readings(m) == [
        Reading(kind="heart-rate", value=Absent("not-performed")),
        Reading(kind="energy-expended", value=Quantity(Decimal("10"), "kJ")),
    ]


def test_body_sensor_location() -> None:
    assert parse_body_sensor_location(b"\x01") is BodySensorLocation.CHEST
    assert parse_body_sensor_location(b"\x00") is BodySensorLocation.OTHER
    for location in BodySensorLocation:
        assert parse_body_sensor_location(encode_body_sensor_location(location)) is location


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "needs exactly 1 byte (body sensor location), got 0"),
        (b"\x01\x00", "needs exactly 1 byte (body sensor location), got 2"),
        (b"\x07", "body sensor location 7 is reserved (defined: 0, 1, 2, 3, 4, 5, 6)"),
    ],
)
def test_body_sensor_location_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_body_sensor_location(data)
    assert (caught.value.characteristic, caught.value.reason) == ("0x2A38 Body Sensor Location", reason)
