"""PLX Continuous Measurement (0x2A5F) and PLX Features (0x2A60): parse, encode, readings."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.ieee11073 import SpecialValue
from edge_agent.gatt.pulse_oximeter import (
    PlxContinuousMeasurement,
    PlxDeviceAndSensorStatus,
    PlxFeature,
    PlxFeatures,
    PlxMeasurementStatus,
    SpO2PulseRate,
    encode_plx_continuous_measurement,
    encode_plx_features,
    parse_plx_continuous_measurement,
    parse_plx_features,
    to_readings,
)
from fhir_contract.readings import Absent, Quantity, Reading

FULL = b"".join(
    [
        b"\x1f",  # flags: fast, slow, measurement status, device and sensor status, pulse amplitude index
        b"\x61\x00",  # SpO2-Normal: 97
        b"\x40\x00",  # PR-Normal: 64
        b"\x60\x00",  # SpO2-Fast: 96
        b"\x42\x00",  # PR-Fast: 66
        b"\xcf\xf3",  # SpO2-Slow: 97.5 (mantissa 975 = 0x3CF, exponent -1)
        b"\x3f\x00",  # PR-Slow: 63
        b"\x80\x00",  # measurement status: validated data (bit 7)
        b"\x20\x00\x00",  # device and sensor status: low perfusion (bit 5)
        b"\x19\xf0",  # pulse amplitude index: 2.5
    ]
)
MINIMAL = b"".join(
    [
        b"\x00",  # flags: nothing optional
        b"\x62\x00",  # SpO2-Normal: 98
        b"\x48\x00",  # PR-Normal: 72
    ]
)


def test_plx_continuous_full() -> None:
    assert parse_plx_continuous_measurement(FULL) == PlxContinuousMeasurement(
        normal=SpO2PulseRate(Decimal("97"), Decimal("64")),
        fast=SpO2PulseRate(Decimal("96"), Decimal("66")),
        slow=SpO2PulseRate(Decimal("97.5"), Decimal("63")),
        measurement_status=PlxMeasurementStatus.VALIDATED_DATA,
        device_and_sensor_status=PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED,
        pulse_amplitude_index=Decimal("2.5"),
    )


def test_plx_continuous_minimal() -> None:
    assert parse_plx_continuous_measurement(MINIMAL) == PlxContinuousMeasurement(
        SpO2PulseRate(Decimal("98"), Decimal("72"))
    )


def test_plx_continuous_slow_without_fast() -> None:
    data = b"\x02" + MINIMAL[1:] + b"\x61\x00\x47\x00"  # flags: slow; SpO2-Slow 97, PR-Slow 71
    m = parse_plx_continuous_measurement(data)
    assert (m.fast, m.slow) == (None, SpO2PulseRate(Decimal("97"), Decimal("71")))


def test_plx_continuous_too_short() -> None:
    with pytest.raises(ParseError, match="needs at least 5 bytes") as caught:
        parse_plx_continuous_measurement(MINIMAL[:4])
    assert caught.value.characteristic == "0x2A5F PLX Continuous Measurement"


def test_plx_continuous_announced_fast_missing() -> None:
    with pytest.raises(ParseError) as caught:
        parse_plx_continuous_measurement(b"\x01" + MINIMAL[1:] + b"\x60\x00")
    assert caught.value.reason == "flags announce SpO2PR-Fast but only 7 of 9 bytes are present"


def test_plx_continuous_trailing_bytes() -> None:
    with pytest.raises(ParseError) as caught:
        parse_plx_continuous_measurement(MINIMAL + b"\x00")
    assert caught.value.reason == "1 trailing byte after the 5 bytes the flags announce"


def test_plx_continuous_every_truncation_is_parse_error() -> None:
    for length in range(len(FULL)):
        with pytest.raises(ParseError):
            parse_plx_continuous_measurement(FULL[:length])


def test_plx_continuous_encodes_full_vector() -> None:
    assert encode_plx_continuous_measurement(parse_plx_continuous_measurement(FULL)) == FULL


@pytest.mark.parametrize(
    ("fast", "slow", "status", "sensor_status", "pai"), list(itertools.product([False, True], repeat=5))
)
def test_plx_continuous_round_trip_every_flag_combination(
    fast: bool, slow: bool, status: bool, sensor_status: bool, pai: bool
) -> None:
    original = PlxContinuousMeasurement(
        normal=SpO2PulseRate(Decimal("95.5"), SpecialValue.NAN),
        fast=SpO2PulseRate(Decimal("94"), Decimal("80")) if fast else None,
        slow=SpO2PulseRate(SpecialValue.POSITIVE_INFINITY, Decimal("79")) if slow else None,
        measurement_status=PlxMeasurementStatus.MEASUREMENT_ONGOING if status else None,
        device_and_sensor_status=PlxDeviceAndSensorStatus.SENSOR_DISPLACED if sensor_status else None,
        pulse_amplitude_index=Decimal("0.85") if pai else None,
    )
    data = encode_plx_continuous_measurement(original)
    assert data[0] == fast | slow << 1 | status << 2 | sensor_status << 3 | pai << 4
    assert len(data) == 5 + 4 * fast + 4 * slow + 2 * status + 3 * sensor_status + 2 * pai
    parsed = parse_plx_continuous_measurement(data)
    assert parsed == original
    assert repr(parsed) == repr(original)


def test_plx_continuous_to_readings_marks_fast_and_slow_as_their_own_kinds() -> None:
    assert to_readings(parse_plx_continuous_measurement(FULL)) == [
        Reading(kind="spo2", value=Quantity(Decimal("97"), "%")),
        Reading(kind="pulse-rate-oximeter", value=Quantity(Decimal("64"), "/min")),
        Reading(kind="spo2-fast", value=Quantity(Decimal("96"), "%")),
        Reading(kind="pulse-rate-oximeter-fast", value=Quantity(Decimal("66"), "/min")),
        Reading(kind="spo2-slow", value=Quantity(Decimal("97.5"), "%")),
        Reading(kind="pulse-rate-oximeter-slow", value=Quantity(Decimal("63"), "/min")),
    ]


def test_plx_continuous_to_readings_invalid_status_wins_for_every_pair() -> None:
    m = PlxContinuousMeasurement(
        normal=SpO2PulseRate(Decimal("97"), Decimal("64")),
        fast=SpO2PulseRate(Decimal("96"), Decimal("66")),
        measurement_status=PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED,
    )
    assert [r.value for r in to_readings(m)] == [Absent("error")] * 4


def test_plx_continuous_to_readings_special_value_is_absent() -> None:
    m = PlxContinuousMeasurement(SpO2PulseRate(SpecialValue.NRES, Decimal("70")))
    assert to_readings(m)[0] == Reading(kind="spo2", value=Absent("error"))


FEATURES_FULL = b"".join(
    [
        b"\xff\x00",  # supported features: both support fields follow, features bits 2-7 all set
        b"\xe0\xff",  # measurement status support: bits 5-15
        b"\xff\xff\x00",  # device and sensor status support: bits 0-15
    ]
)


def test_plx_features_full() -> None:
    f = parse_plx_features(FEATURES_FULL)
    assert f.features == PlxFeature(0xFC)
    assert f.measurement_status_support == PlxMeasurementStatus(0xFFE0)
    assert f.device_and_sensor_status_support == PlxDeviceAndSensorStatus(0xFFFF)
    assert encode_plx_features(f) == FEATURES_FULL


def test_plx_features_minimal() -> None:
    f = parse_plx_features(b"\x10\x00")  # SpO2PR-Fast supported; no support fields
    assert f == PlxFeatures(features=PlxFeature.SPO2PR_FAST)


def test_plx_features_too_short() -> None:
    with pytest.raises(ParseError, match="needs at least 2 bytes") as caught:
        parse_plx_features(b"\x00")
    assert caught.value.characteristic == "0x2A60 PLX Features"


def test_plx_features_trailing_bytes() -> None:
    with pytest.raises(ParseError, match="1 trailing byte after the 2 bytes"):
        parse_plx_features(b"\x00\x00\x00")


def test_plx_features_announced_support_missing() -> None:
    with pytest.raises(ParseError) as caught:
        parse_plx_features(b"\x03\x00\xe0\xff")
    assert caught.value.reason == (
        "flags announce a measurement status support and a device and sensor status support "
        "but only 4 of 7 bytes are present"
    )


@pytest.mark.parametrize(("status", "sensor"), list(itertools.product([False, True], repeat=2)))
def test_plx_features_round_trip(status: bool, sensor: bool) -> None:
    original = PlxFeatures(
        features=PlxFeature.MULTIPLE_BONDS | PlxFeature.TIME_STAMP_FOR_SPOT_CHECK,
        measurement_status_support=PlxMeasurementStatus.CALIBRATION_ONGOING if status else None,
        device_and_sensor_status_support=PlxDeviceAndSensorStatus.SENSOR_MALFUNCTIONING if sensor else None,
    )
    assert parse_plx_features(encode_plx_features(original)) == original
