"""PLX Spot-Check Measurement (0x2A5E): parse, encode, readings."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

import pytest

from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.ieee11073 import SpecialValue
from edge_agent.gatt.pulse_oximeter import (
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    encode_plx_spot_check_measurement,
    parse_plx_spot_check_measurement,
    to_readings,
)
from fhir_contract.readings import Absent, Quantity, Reading

TIME_STAMP = b"\xe8\x07\x03\x0f\x08\x1e\x05"  # 2024-03-15 08:30:05
FULL = b"".join(
    [
        b"\x0f",  # flags: time stamp, measurement status, device and sensor status, pulse amplitude index
        b"\x61\x00",  # SpO2: 97 (SFLOAT mantissa 97, exponent 0)
        b"\x40\x00",  # PR: 64
        TIME_STAMP,  # time stamp
        b"\x80\x40",  # measurement status: validated data (bit 7), questionable measurement (bit 14)
        b"\x20\x20\x00",  # device and sensor status: low perfusion (bit 5), sensor displaced (bit 13)
        b"\x19\xf0",  # pulse amplitude index: 2.5 (mantissa 25, exponent -1)
    ]
)
MINIMAL = b"".join(
    [
        b"\x00",  # flags: nothing optional
        b"\x62\x00",  # SpO2: 98
        b"\x48\x00",  # PR: 72
    ]
)


def test_plx_spot_check_full() -> None:
    m = parse_plx_spot_check_measurement(FULL)
    assert m == PlxSpotCheckMeasurement(
        spo2=Decimal("97"),
        pulse_rate=Decimal("64"),
        time_stamp=datetime(2024, 3, 15, 8, 30, 5),
        measurement_status=PlxMeasurementStatus.VALIDATED_DATA
        | PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT_DETECTED,
        device_and_sensor_status=PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED
        | PlxDeviceAndSensorStatus.SENSOR_DISPLACED,
        pulse_amplitude_index=Decimal("2.5"),
        device_clock_not_set=False,
    )


def test_plx_spot_check_minimal() -> None:
    m = parse_plx_spot_check_measurement(MINIMAL)
    assert m == PlxSpotCheckMeasurement(spo2=Decimal("98"), pulse_rate=Decimal("72"))
    assert m.measurement_status is None
    assert m.device_and_sensor_status is None


def test_plx_spot_check_no_timestamp() -> None:
    data = b"".join(
        [
            b"\x0e",  # flags: measurement status, device and sensor status, pulse amplitude index
            b"\x61\x00",  # SpO2: 97
            b"\x40\x00",  # PR: 64
            b"\x00\x20",  # measurement status: measurement unavailable (bit 13)
            b"\x00\x80\x00",  # device and sensor status: sensor disconnected (bit 15)
            b"\xff\x07",  # pulse amplitude index: NaN
        ]
    )
    m = parse_plx_spot_check_measurement(data)
    assert m.time_stamp is None
    assert m.measurement_status == PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE
    assert m.device_and_sensor_status == PlxDeviceAndSensorStatus.SENSOR_DISCONNECTED
    assert m.pulse_amplitude_index is SpecialValue.NAN


def test_plx_spot_check_device_clock_not_set() -> None:
    m = parse_plx_spot_check_measurement(b"\x11" + MINIMAL[1:] + TIME_STAMP)  # time stamp, clock not set
    assert m.device_clock_not_set is True
    assert m.time_stamp == datetime(2024, 3, 15, 8, 30, 5)


def test_plx_spot_check_too_short() -> None:
    with pytest.raises(ParseError, match="needs at least 5 bytes") as caught:
        parse_plx_spot_check_measurement(MINIMAL[:4])
    assert caught.value.characteristic == "0x2A5E PLX Spot-Check Measurement"


def test_plx_spot_check_announced_status_missing() -> None:
    with pytest.raises(ParseError) as caught:
        parse_plx_spot_check_measurement(b"\x06" + MINIMAL[1:] + b"\x00\x00")
    assert caught.value.reason == (
        "flags announce a measurement status and a device and sensor status "
        "but only 7 of 10 bytes are present"
    )


def test_plx_spot_check_trailing_bytes() -> None:
    with pytest.raises(ParseError) as caught:
        parse_plx_spot_check_measurement(MINIMAL + b"\x00\x00\x00")
    assert caught.value.reason == "3 trailing bytes after the 5 bytes the flags announce"


def test_plx_spot_check_every_truncation_is_parse_error() -> None:
    for length in range(len(FULL)):
        with pytest.raises(ParseError):
            parse_plx_spot_check_measurement(FULL[:length])


def test_plx_spot_check_reserved_bits_ignored() -> None:
    data = b"".join(
        [
            b"\xe6",  # flags: reserved bits 5-7, measurement status, device and sensor status
            MINIMAL[1:5],
            b"\x1f\x00",  # measurement status: only reserved bits 0-4
            b"\x00\x00\xff",  # device and sensor status: only reserved bits 16-23
        ]
    )
    m = parse_plx_spot_check_measurement(data)
    assert m.measurement_status == PlxMeasurementStatus(0)
    assert m.device_and_sensor_status == PlxDeviceAndSensorStatus(0)


def test_plx_spot_check_encodes_full_vector() -> None:
    assert encode_plx_spot_check_measurement(parse_plx_spot_check_measurement(FULL)) == FULL


@pytest.mark.parametrize(
    ("time_stamp", "status", "sensor_status", "pai", "clock_not_set"),
    list(itertools.product([False, True], repeat=5)),
)
def test_plx_spot_check_round_trip_every_flag_combination(
    time_stamp: bool, status: bool, sensor_status: bool, pai: bool, clock_not_set: bool
) -> None:
    original = PlxSpotCheckMeasurement(
        spo2=Decimal("96.5"),
        pulse_rate=SpecialValue.NRES,
        time_stamp=datetime(2025, 1, 2, 3, 4, 5) if time_stamp else None,
        measurement_status=PlxMeasurementStatus.EARLY_ESTIMATED_DATA if status else None,
        device_and_sensor_status=PlxDeviceAndSensorStatus.POOR_SIGNAL_DETECTED if sensor_status else None,
        pulse_amplitude_index=Decimal("0.85") if pai else None,
        device_clock_not_set=clock_not_set,
    )
    data = encode_plx_spot_check_measurement(original)
    assert data[0] == time_stamp | status << 1 | sensor_status << 2 | pai << 3 | clock_not_set << 4
    assert len(data) == 5 + 7 * time_stamp + 2 * status + 3 * sensor_status + 2 * pai
    parsed = parse_plx_spot_check_measurement(data)
    assert parsed == original
    assert repr(parsed) == repr(original)


def test_plx_spot_check_to_readings() -> None:
    at = datetime(2024, 3, 15, 8, 30, 5)
    assert to_readings(parse_plx_spot_check_measurement(FULL)) == [
        Reading(kind="spo2", value=Quantity(Decimal("97"), "%"), device_time=at),
        Reading(kind="pulse-rate-oximeter", value=Quantity(Decimal("64"), "/min"), device_time=at),
    ]


def test_plx_spot_check_to_readings_special_value_is_absent() -> None:
    readings = to_readings(PlxSpotCheckMeasurement(spo2=SpecialValue.NAN, pulse_rate=Decimal("70")))
    assert readings[0] == Reading(kind="spo2", value=Absent("not-a-number"))
    assert readings[1] == Reading(kind="pulse-rate-oximeter", value=Quantity(Decimal("70"), "/min"))


def test_plx_spot_check_to_readings_drops_time_of_unset_clock() -> None:
    m = PlxSpotCheckMeasurement(
        Decimal("97"), Decimal("64"), time_stamp=datetime(2000, 1, 1), device_clock_not_set=True
    )
    assert [r.device_time for r in to_readings(m)] == [None, None]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED, "error"),
        (PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE, "not-performed"),
        (
            PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED | PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE,
            "error",
        ),
    ],
)
def test_plx_spot_check_to_readings_invalid_status_wins(status: PlxMeasurementStatus, reason: str) -> None:
    m = PlxSpotCheckMeasurement(Decimal("97"), Decimal("64"), measurement_status=status)
    assert [r.value for r in to_readings(m)] == [Absent(reason), Absent(reason)]


def test_plx_spot_check_to_readings_questionable_status_keeps_values() -> None:
    questionable = PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT_DETECTED
    m = PlxSpotCheckMeasurement(Decimal("97"), Decimal("64"), measurement_status=questionable)
    assert [r.value for r in to_readings(m)] == [
        Quantity(Decimal("97"), "%"),
        Quantity(Decimal("64"), "/min"),
    ]
