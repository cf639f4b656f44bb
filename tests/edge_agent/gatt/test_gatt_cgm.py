"""CGM Measurement (0x2AA7), CGM Feature (0x2AA8), CGM Session Start Time (0x2AAA): parse, encode,
E2E-CRC, several records per notification, session time, readings."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from edge_agent.gatt.cgm import (
    CgmCalTemp,
    CgmFeature,
    CgmFeatures,
    CgmMeasurement,
    CgmSampleLocation,
    CgmSessionStartTime,
    CgmStatus,
    CgmWarning,
    DstOffset,
    cgm_time,
    e2e_crc,
    encode_cgm_feature,
    encode_cgm_measurement,
    encode_cgm_measurements,
    encode_cgm_session_start_time,
    parse_cgm_feature,
    parse_cgm_measurement,
    parse_cgm_measurements,
    parse_cgm_session_start_time,
    to_readings,
)
from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.glucose import GlucoseType
from edge_agent.gatt.ieee11073 import SpecialValue
from fhir_contract.readings import Absent, Quantity, Reading

# The full record of Nordic's CGM parser test, whose E2E-CRC (0x3F8E) an independent implementation computed.
FULL = b"".join(
    [
        b"\x0f",  # size: 15 bytes, CRC included
        b"\xe3",  # flags: trend, quality, warning, cal/temp and status octets
        b"\xd2\xe4",  # glucose: 12.34 mg/dL (mantissa 1234, exponent -2)
        b"\x05\x00",  # time offset: 5 minutes
        b"\x02",  # status octet: device battery low (bit 1)
        b"\x14",  # cal/temp octet: calibration recommended (bit 2), sensor temperature too high (bit 4)
        b"\xff",  # warning octet: every warning
        b"\x02\xf0",  # trend: 0.2 (mg/dL)/min
        b"\xe5\xf3",  # quality: 99.7 %
        b"\x8e\x3f",  # E2E-CRC: 0x3F8E
    ]
)
MINIMAL = b"".join(
    [
        b"\x06",  # size: 6 bytes
        b"\x00",  # flags: nothing optional
        b"\x78\x00",  # glucose: 120 mg/dL
        b"\x06\x00",  # time offset: 6 minutes
    ]
)


def test_crc_known_answers() -> None:
    assert e2e_crc(b"123456789") == 0x6F91  # the CRC-16/MCRF4XX catalogue check value
    assert e2e_crc(b"\x08\x00\x0c\x10\x06\x00") == 0x6F59  # Nordic's test of a record with a wrong CRC
    assert e2e_crc(FULL[:-2]) == 0x3F8E


def test_cgm_full_with_crc() -> None:
    assert parse_cgm_measurement(FULL, crc=True) == CgmMeasurement(
        glucose=Decimal("12.34"),
        time_offset=5,
        status=CgmStatus.DEVICE_BATTERY_LOW,
        cal_temp=CgmCalTemp.CALIBRATION_RECOMMENDED | CgmCalTemp.SENSOR_TEMPERATURE_TOO_HIGH,
        warning=CgmWarning(0xFF),
        trend=Decimal("0.2"),
        quality=Decimal("99.7"),
    )


def test_cgm_minimal() -> None:
    assert parse_cgm_measurement(MINIMAL) == CgmMeasurement(glucose=Decimal("120"), time_offset=6)


def test_cgm_wrong_crc_is_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_cgm_measurement(b"\x08\x00\x0c\x10\x06\x00\x58\x6f", crc=True)  # Nordic's vector: 0x6F58 sent
    assert caught.value.reason == "E2E-CRC 0x6f58 does not match the 0x6f59 computed"
    assert caught.value.characteristic == "0x2AA7 CGM Measurement"


def test_cgm_crc_expected_but_missing() -> None:
    with pytest.raises(ParseError, match="needs at least 8 bytes"):
        parse_cgm_measurement(MINIMAL, crc=True)


def test_cgm_size_must_match_the_record() -> None:
    with pytest.raises(ParseError) as caught:
        parse_cgm_measurement(b"\x07" + MINIMAL[1:])
    assert caught.value.reason == "size field says 7 bytes but the record has 6"


def test_cgm_too_short() -> None:
    with pytest.raises(ParseError, match="needs at least 6 bytes"):
        parse_cgm_measurement(MINIMAL[:5])


def test_cgm_announced_fields_missing() -> None:
    with pytest.raises(ParseError) as caught:
        parse_cgm_measurement(b"\x07\x03" + MINIMAL[2:] + b"\x02")  # trend and quality announced
    assert caught.value.reason == "flags announce a trend and a quality but only 7 of 10 bytes are present"


def test_cgm_trailing_bytes() -> None:
    with pytest.raises(ParseError) as caught:
        parse_cgm_measurement(b"\x07" + MINIMAL[1:] + b"\x00")
    assert caught.value.reason == "1 trailing byte after the 6 bytes the flags announce"


def test_cgm_several_records_in_one_notification() -> None:
    second = b"\x06\x00\x0c\x10\x07\x00"  # size 6, no flags, glucose 120 (mantissa 12, exponent 1), offset 7
    assert parse_cgm_measurements(MINIMAL + second) == [
        CgmMeasurement(Decimal("120"), 6),
        CgmMeasurement(Decimal("1.2E+2"), 7),
    ]


def test_cgm_records_with_crc() -> None:
    records = parse_cgm_measurements(FULL + FULL, crc=True)
    assert len(records) == 2 and records[0] == records[1]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            MINIMAL + b"\x06\x00",
            "record at offset 6 says it has 6 bytes; 2 remain and a record needs at least 6",
        ),
        (MINIMAL + b"\x02\x00\x00\x00\x00\x00", "record at offset 6 says it has 2 bytes; 6 remain"),
        (b"\x00" + MINIMAL[1:], "record at offset 0 says it has 0 bytes; 6 remain"),
    ],
)
def test_cgm_records_that_do_not_tile_the_value_are_parse_errors(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_cgm_measurements(data)
    assert caught.value.reason.startswith(reason)


def test_cgm_every_truncation_is_parse_error() -> None:
    for length in range(len(FULL)):
        with pytest.raises(ParseError):
            parse_cgm_measurements(FULL[:length], crc=True)


def test_cgm_encodes_full_vector() -> None:
    assert encode_cgm_measurement(parse_cgm_measurement(FULL, crc=True), crc=True) == FULL


def test_cgm_round_trip_every_flag_combination() -> None:
    for trend, quality, warning, cal_temp, status, crc in itertools.product([False, True], repeat=6):
        original = CgmMeasurement(
            glucose=SpecialValue.NAN if status else Decimal("98"),
            time_offset=65535,
            status=CgmStatus.SESSION_STOPPED if status else None,
            cal_temp=CgmCalTemp.CALIBRATION_REQUIRED if cal_temp else None,
            warning=CgmWarning.RATE_OF_INCREASE_EXCEEDED if warning else None,
            trend=Decimal("-1.5") if trend else None,
            quality=Decimal("95") if quality else None,
        )
        data = encode_cgm_measurement(original, crc=crc)
        assert data[0] == len(data) == 6 + 2 * trend + 2 * quality + warning + cal_temp + status + 2 * crc
        assert data[1] == trend | quality << 1 | warning << 5 | cal_temp << 6 | status << 7
        parsed = parse_cgm_measurement(data, crc=crc)
        assert parsed == original
        assert repr(parsed) == repr(original)
        assert parse_cgm_measurements(encode_cgm_measurements([original, original], crc=crc), crc=crc) == [
            original,
            original,
        ]


def test_cgm_time_is_session_start_plus_offset() -> None:
    assert cgm_time(datetime(2024, 3, 15, 8, 0), 1445) == datetime(2024, 3, 16, 8, 5)


def test_cgm_to_readings_without_session_start() -> None:
    records = parse_cgm_measurements(MINIMAL + b"\x06\x00\x7d\x00\x0b\x00")  # second: 125 mg/dL at +11 min
    assert to_readings(records) == [
        Reading(kind="cgm-glucose", value=Quantity(Decimal("120"), "mg/dL"), position=0),
        Reading(kind="cgm-glucose", value=Quantity(Decimal("125"), "mg/dL"), position=1),
    ]


def test_cgm_to_readings_with_session_start() -> None:
    start = datetime(2024, 3, 15, 8, 0)
    assert to_readings([parse_cgm_measurement(MINIMAL)], start) == [
        Reading(
            kind="cgm-glucose",
            value=Quantity(Decimal("120"), "mg/dL"),
            device_time=datetime(2024, 3, 15, 8, 6),
        )
    ]


@pytest.mark.parametrize(
    ("record", "value"),
    [
        (CgmMeasurement(Decimal("80"), 1, status=CgmStatus.SENSOR_MALFUNCTION), Absent("error")),
        (CgmMeasurement(Decimal("80"), 1, status=CgmStatus.SENSOR_TYPE_INCORRECT), Absent("error")),
        (CgmMeasurement(Decimal("80"), 1, status=CgmStatus.GENERAL_DEVICE_FAULT), Absent("error")),
        (CgmMeasurement(Decimal("400"), 1, warning=CgmWarning.RESULT_TOO_HIGH), Absent("positive-infinity")),
        (CgmMeasurement(Decimal("40"), 1, warning=CgmWarning.RESULT_TOO_LOW), Absent("negative-infinity")),
        (
            CgmMeasurement(Decimal("80"), 1, status=CgmStatus.DEVICE_BATTERY_LOW),
            Quantity(Decimal("80"), "mg/dL"),
        ),
        (
            CgmMeasurement(Decimal("60"), 1, warning=CgmWarning.BELOW_HYPO_LEVEL),
            Quantity(Decimal("60"), "mg/dL"),
        ),
        (CgmMeasurement(SpecialValue.NRES, 1), Absent("error")),
    ],
)
def test_cgm_status_decides_whether_the_value_stands(
    record: CgmMeasurement, value: Absent | Quantity
) -> None:
    assert [r.value for r in to_readings([record])] == [value]


FEATURE_NO_CRC = b"".join(
    [
        b"\x01\x80\x01",  # features: calibration (bit 0), trend (bit 15), quality (bit 16)
        b"\x59",  # type 9 interstitial fluid (low nibble), location 5 subcutaneous tissue (high nibble)
        b"\xff\xff",  # E2E-CRC: not supported
    ]
)


def test_cgm_feature_without_crc() -> None:
    assert parse_cgm_feature(FEATURE_NO_CRC) == CgmFeatures(
        features=CgmFeature.CALIBRATION | CgmFeature.CGM_TREND_INFORMATION | CgmFeature.CGM_QUALITY,
        glucose_type=GlucoseType.INTERSTITIAL_FLUID,
        sample_location=CgmSampleLocation.SUBCUTANEOUS_TISSUE,
    )
    assert parse_cgm_feature(FEATURE_NO_CRC).e2e_crc is False
    assert encode_cgm_feature(parse_cgm_feature(FEATURE_NO_CRC)) == FEATURE_NO_CRC


def test_cgm_feature_with_crc() -> None:
    head = b"\x00\x10\x00\x59"  # features: E2E-CRC (bit 12); ISF, subcutaneous tissue
    data = head + e2e_crc(head).to_bytes(2, "little")
    features = parse_cgm_feature(data)
    assert features.e2e_crc is True
    assert encode_cgm_feature(features) == data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (FEATURE_NO_CRC[:5], "needs exactly 6 bytes (features, type and location, E2E-CRC), got 5"),
        (
            FEATURE_NO_CRC[:4] + b"\x00\x00",
            "E2E-CRC is not supported, so its field must be 0xffff, not 0x0000",
        ),
        (b"\x00\x10\x00\x59\x00\x00", "E2E-CRC 0x0000 does not match"),
        (b"\x00\x00\x00\x5b\xff\xff", "type 11 is reserved"),
        (b"\x00\x00\x00\x69\xff\xff", "sample location 6 is reserved"),
    ],
)
def test_cgm_feature_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_cgm_feature(data)
    assert caught.value.reason.startswith(reason)
    assert caught.value.characteristic == "0x2AA8 CGM Feature"


SESSION_START = b"".join(
    [
        b"\xe8\x07\x03\x0f\x08\x00\x00",  # session start: 2024-03-15 08:00:00
        b"\x04",  # time zone: +4 x 15 min = UTC+01:00
        b"\x04",  # DST offset: 4, daylight time (+1 h)
    ]
)


def test_cgm_session_start_time() -> None:
    value = parse_cgm_session_start_time(SESSION_START)
    assert value == CgmSessionStartTime(datetime(2024, 3, 15, 8, 0), 4, DstOffset.DAYLIGHT_TIME)
    assert value.aware_start == datetime(2024, 3, 15, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    assert encode_cgm_session_start_time(value) == SESSION_START


def test_cgm_session_start_time_with_crc() -> None:
    data = SESSION_START + e2e_crc(SESSION_START).to_bytes(2, "little")
    assert parse_cgm_session_start_time(data, crc=True) == parse_cgm_session_start_time(SESSION_START)
    with pytest.raises(ParseError, match="does not match"):
        parse_cgm_session_start_time(SESSION_START + b"\x00\x00", crc=True)


def test_cgm_session_start_time_unknown_zone() -> None:
    value = parse_cgm_session_start_time(SESSION_START[:7] + b"\x80\xff")  # zone -128, DST 255: unknown
    assert (value.time_zone, value.dst_offset, value.aware_start) == (None, DstOffset.UNKNOWN, None)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (SESSION_START[:8], "needs exactly 9 bytes (date time, time zone, DST offset), got 8"),
        (SESSION_START + b"\x00", "needs exactly 9 bytes (date time, time zone, DST offset), got 10"),
        (SESSION_START[:7] + b"\x39\x00", "time zone 57 is reserved (-48..56, or -128 for unknown)"),
        (SESSION_START[:7] + b"\x00\x01", "DST offset 1 is reserved (defined: 0, 2, 4, 8, 255)"),
    ],
)
def test_cgm_session_start_time_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_cgm_session_start_time(data)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("zone", "dst", "crc"), list(itertools.product([None, -48, 0, 56], list(DstOffset), [False, True]))
)
def test_cgm_session_start_time_round_trip(zone: int | None, dst: DstOffset, crc: bool) -> None:
    original = CgmSessionStartTime(datetime(2025, 6, 30, 23, 59, 59), zone, dst)
    assert parse_cgm_session_start_time(encode_cgm_session_start_time(original, crc=crc), crc=crc) == original
