"""Continuous Glucose Monitoring service (0x181F): CGM Measurement 0x2AA7, CGM Feature 0x2AA8 and CGM
Session Start Time 0x2AAA.

CGM Measurement (CGM Service spec, "CGM Measurement"); one notification may carry several records:

    size            uint8   bytes in this record, the size field and E2E-CRC included
    flags           uint8   bit 0 trend, bit 1 quality, bit 5 warning octet, bit 6 cal/temp octet,
                            bit 7 status octet; bits 2-4 reserved
    glucose         SFLOAT  mg/dL
    time offset     uint16  minutes since the session started
    status octet    uint8   if bit 7   \
    cal/temp octet  uint8   if bit 6    } Sensor Status Annunciation, in this order
    warning octet   uint8   if bit 5   /
    trend           SFLOAT  (mg/dL)/min   if bit 0
    quality         SFLOAT  %             if bit 1
    E2E-CRC         uint16                if CGM Feature says E2E-CRC is supported

CGM Feature: uint24 features, uint8 type (low nibble) and sample location (high nibble), uint16 E2E-CRC
(0xFFFF when E2E-CRC is not supported). CGM Session Start Time: Date Time, sint8 time zone (15-minute
steps, -128 unknown), uint8 DST offset, then E2E-CRC if supported.

The E2E-CRC is CRC-16 with the CCITT polynomial x^16 + x^12 + x^5 + 1, seed 0xFFFF, bits taken least
significant first and no final XOR (the CRC-16/MCRF4XX catalogue entry), over every byte before it.
Whether a sensor sends it is in its CGM Feature, so the parsers take ``crc=`` and check it when true.

A record's time is the session start plus its offset (``cgm_time``); readings carry it only when the
caller passes the session start. Reserved bits are ignored when parsing and written as zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum, IntFlag

from edge_agent.gatt._fields import (
    FieldReader,
    FieldWriter,
    check_exact_length,
    check_length,
    check_minimum_length,
    enum_value,
    reading_value,
)
from edge_agent.gatt.datetime_field import DATE_TIME_LENGTH
from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.glucose import GlucoseType
from edge_agent.gatt.ieee11073 import NumericValue
from fhir_contract.readings import Absent, Reading, Value

CGM_MEASUREMENT = "0x2AA7 CGM Measurement"
CGM_FEATURE = "0x2AA8 CGM Feature"
CGM_SESSION_START_TIME = "0x2AAA CGM Session Start Time"

_FLAG_TREND = 0x01
_FLAG_QUALITY = 0x02
_FLAG_WARNING = 0x20
_FLAG_CAL_TEMP = 0x40
_FLAG_STATUS = 0x80

_MINIMUM_LENGTH = 6  # size (1) + flags (1) + glucose (2) + time offset (2)
_CRC_LENGTH = 2
_FEATURE_LENGTH = 6  # features (3) + type and sample location (1) + E2E-CRC (2)
_SESSION_START_LENGTH = DATE_TIME_LENGTH + 2  # Date Time + time zone (1) + DST offset (1)
_NO_CRC = 0xFFFF  # the E2E-CRC field of CGM Feature when E2E-CRC is not supported

_STATUS_BITS = 0x3F
_CAL_TEMP_BITS = 0x3F
_FEATURE_BITS = 0x01FFFF

_TIME_ZONE_UNKNOWN = -128
_TIME_ZONE_RANGE = range(-48, 57)  # UTC-12:00 .. UTC+14:00 in 15-minute steps


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1  # 0x8408: 0x1021 with its bits reversed
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def e2e_crc(data: bytes) -> int:
    """The CGM E2E-CRC of ``data`` (CRC-16/MCRF4XX: "123456789" gives 0x6F91)."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def _check_crc(data: bytes, characteristic: str) -> None:
    sent = int.from_bytes(data[-_CRC_LENGTH:], "little")
    computed = e2e_crc(data[:-_CRC_LENGTH])
    if sent != computed:
        raise ParseError(characteristic, f"E2E-CRC {sent:#06x} does not match the {computed:#06x} computed")


class CgmStatus(IntFlag):
    """The Status octet of the Sensor Status Annunciation; bits 6-7 are reserved."""

    SESSION_STOPPED = 1 << 0
    DEVICE_BATTERY_LOW = 1 << 1
    SENSOR_TYPE_INCORRECT = 1 << 2
    SENSOR_MALFUNCTION = 1 << 3
    DEVICE_SPECIFIC_ALERT = 1 << 4
    GENERAL_DEVICE_FAULT = 1 << 5


class CgmCalTemp(IntFlag):
    """The Cal/Temp octet of the Sensor Status Annunciation; bits 6-7 are reserved."""

    TIME_SYNCHRONIZATION_REQUIRED = 1 << 0
    CALIBRATION_NOT_ALLOWED = 1 << 1
    CALIBRATION_RECOMMENDED = 1 << 2
    CALIBRATION_REQUIRED = 1 << 3
    SENSOR_TEMPERATURE_TOO_HIGH = 1 << 4
    SENSOR_TEMPERATURE_TOO_LOW = 1 << 5


class CgmWarning(IntFlag):
    """The Warning octet of the Sensor Status Annunciation."""

    BELOW_PATIENT_LOW_LEVEL = 1 << 0
    ABOVE_PATIENT_HIGH_LEVEL = 1 << 1
    BELOW_HYPO_LEVEL = 1 << 2
    ABOVE_HYPER_LEVEL = 1 << 3
    RATE_OF_DECREASE_EXCEEDED = 1 << 4
    RATE_OF_INCREASE_EXCEEDED = 1 << 5
    RESULT_TOO_LOW = 1 << 6  # lower than the device can process
    RESULT_TOO_HIGH = 1 << 7  # higher than the device can process


class CgmFeature(IntFlag):
    """CGM Feature bits 0-16; bits 17-23 are reserved."""

    CALIBRATION = 1 << 0
    PATIENT_HIGH_LOW_ALERTS = 1 << 1
    HYPO_ALERTS = 1 << 2
    HYPER_ALERTS = 1 << 3
    RATE_OF_INCREASE_DECREASE_ALERTS = 1 << 4
    DEVICE_SPECIFIC_ALERT = 1 << 5
    SENSOR_MALFUNCTION_DETECTION = 1 << 6
    SENSOR_TEMPERATURE_HIGH_LOW_DETECTION = 1 << 7
    SENSOR_RESULT_HIGH_LOW_DETECTION = 1 << 8
    LOW_BATTERY_DETECTION = 1 << 9
    SENSOR_TYPE_ERROR_DETECTION = 1 << 10
    GENERAL_DEVICE_FAULT = 1 << 11
    E2E_CRC = 1 << 12
    MULTIPLE_BOND = 1 << 13
    MULTIPLE_SESSIONS = 1 << 14
    CGM_TREND_INFORMATION = 1 << 15
    CGM_QUALITY = 1 << 16


class CgmSampleLocation(IntEnum):
    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    SUBCUTANEOUS_TISSUE = 5
    NOT_AVAILABLE = 15


class DstOffset(IntEnum):
    """Daylight saving time offset of the session start, in 15-minute steps (255 = unknown)."""

    STANDARD_TIME = 0
    HALF_AN_HOUR_DAYLIGHT_TIME = 2
    DAYLIGHT_TIME = 4
    DOUBLE_DAYLIGHT_TIME = 8
    UNKNOWN = 255


@dataclass(frozen=True, slots=True)
class CgmMeasurement:
    """One record of 0x2AA7; None marks an optional field the sensor did not send.

    ``glucose`` is in mg/dL, ``time_offset`` in minutes since the session started, ``trend`` in
    (mg/dL)/min, ``quality`` in %. The three annunciation octets are sent independently.
    """

    glucose: NumericValue
    time_offset: int
    status: CgmStatus | None = None
    cal_temp: CgmCalTemp | None = None
    warning: CgmWarning | None = None
    trend: NumericValue | None = None
    quality: NumericValue | None = None


def parse_cgm_measurement(data: bytes, *, crc: bool = False) -> CgmMeasurement:
    """Parse one CGM Measurement record (its size byte first); with ``crc`` its E2E-CRC is checked.

    ParseError if the bytes are not exactly one record or the CRC does not match.
    """
    characteristic = CGM_MEASUREMENT
    minimum = _MINIMUM_LENGTH + (_CRC_LENGTH if crc else 0)
    check_minimum_length(
        data, characteristic, minimum, "size, flags, glucose, time offset" + (", E2E-CRC" if crc else "")
    )
    reader = FieldReader(data, characteristic)
    size = reader.uint8()  # Size, uint8
    if size != len(data):
        raise ParseError(characteristic, f"size field says {size} bytes but the record has {len(data)}")
    flags = reader.uint8()  # Flags
    trend_present = bool(flags & _FLAG_TREND)
    quality_present = bool(flags & _FLAG_QUALITY)
    warning_present = bool(flags & _FLAG_WARNING)
    cal_temp_present = bool(flags & _FLAG_CAL_TEMP)
    status_present = bool(flags & _FLAG_STATUS)

    optional = (
        (status_present, 1, "a status octet"),
        (cal_temp_present, 1, "a cal/temp octet"),
        (warning_present, 1, "a warning octet"),
        (trend_present, 2, "a trend"),
        (quality_present, 2, "a quality"),
    )
    required = minimum + sum(size for present, size, _ in optional if present)
    check_length(data, characteristic, required, [(present, name) for present, _, name in optional])
    if crc:
        _check_crc(data, characteristic)

    glucose = reader.sfloat()  # CGM Glucose Concentration, SFLOAT, mg/dL
    time_offset = reader.uint16()  # Time Offset, uint16, minutes
    status = CgmStatus(reader.uint8() & _STATUS_BITS) if status_present else None  # Status octet
    cal_temp = CgmCalTemp(reader.uint8() & _CAL_TEMP_BITS) if cal_temp_present else None  # Cal/Temp octet
    warning = CgmWarning(reader.uint8()) if warning_present else None  # Warning octet
    trend = reader.sfloat() if trend_present else None  # CGM Trend Information, SFLOAT, (mg/dL)/min
    quality = reader.sfloat() if quality_present else None  # CGM Quality, SFLOAT, %
    return CgmMeasurement(
        glucose=glucose,
        time_offset=time_offset,
        status=status,
        cal_temp=cal_temp,
        warning=warning,
        trend=trend,
        quality=quality,
    )


def parse_cgm_measurements(data: bytes, *, crc: bool = False) -> list[CgmMeasurement]:
    """Parse every record of one CGM Measurement notification, in order; ParseError if any is bad."""
    characteristic = CGM_MEASUREMENT
    minimum = _MINIMUM_LENGTH + (_CRC_LENGTH if crc else 0)
    check_minimum_length(data, characteristic, minimum, "at least one record")
    records = []
    offset = 0
    while offset < len(data):
        size = data[offset]  # Size of the next record, uint8
        if size < minimum or offset + size > len(data):
            raise ParseError(
                characteristic,
                f"record at offset {offset} says it has {size} bytes; "
                f"{len(data) - offset} remain and a record needs at least {minimum}",
            )
        records.append(parse_cgm_measurement(bytes(data[offset : offset + size]), crc=crc))
        offset += size
    return records


def encode_cgm_measurement(measurement: CgmMeasurement, *, crc: bool = False) -> bytes:
    """Encode one record (size byte first, E2E-CRC last when ``crc``); ValueError if a field cannot."""
    m = measurement
    flags = (
        (_FLAG_TREND if m.trend is not None else 0)
        | (_FLAG_QUALITY if m.quality is not None else 0)
        | (_FLAG_WARNING if m.warning is not None else 0)
        | (_FLAG_CAL_TEMP if m.cal_temp is not None else 0)
        | (_FLAG_STATUS if m.status is not None else 0)
    )
    writer = FieldWriter()
    writer.uint8(flags, "flags")
    writer.sfloat(m.glucose)
    writer.uint16(m.time_offset, "time offset")
    if m.status is not None:
        writer.uint8(int(m.status) & _STATUS_BITS, "status octet")
    if m.cal_temp is not None:
        writer.uint8(int(m.cal_temp) & _CAL_TEMP_BITS, "cal/temp octet")
    if m.warning is not None:
        writer.uint8(int(m.warning), "warning octet")
    if m.trend is not None:
        writer.sfloat(m.trend)
    if m.quality is not None:
        writer.sfloat(m.quality)
    body = writer.to_bytes()
    record = bytes((1 + len(body) + (_CRC_LENGTH if crc else 0),)) + body
    return record + e2e_crc(record).to_bytes(2, "little") if crc else record


def encode_cgm_measurements(measurements: Sequence[CgmMeasurement], *, crc: bool = False) -> bytes:
    """Encode several records as one notification."""
    return b"".join(encode_cgm_measurement(m, crc=crc) for m in measurements)


def cgm_time(session_start: datetime, offset_minutes: int) -> datetime:
    """When a record was measured: the session start plus the record's time offset."""
    return session_start + timedelta(minutes=offset_minutes)


# Annunciations that mean the number is not a measurement of the patient's glucose.
_FAILED = CgmStatus.SENSOR_TYPE_INCORRECT | CgmStatus.SENSOR_MALFUNCTION | CgmStatus.GENERAL_DEVICE_FAULT


def to_readings(
    measurements: Sequence[CgmMeasurement], session_start: datetime | None = None
) -> list[Reading]:
    """One "cgm-glucose" reading in mg/dL per record.

    With ``session_start`` (naive device time, from CGM Session Start Time) each reading is dated
    ``cgm_time(session_start, offset)``; without it ``device_time`` is None and ``position`` numbers
    the records of the notification. A status of malfunction, wrong sensor type or device fault makes
    the value Absent("error"); a result beyond what the sensor can process is Absent("positive-infinity")
    or Absent("negative-infinity").
    """
    readings = []
    for i, m in enumerate(measurements):
        value: Value
        if m.status is not None and m.status & _FAILED:
            value = Absent("error")
        elif m.warning is not None and CgmWarning.RESULT_TOO_HIGH in m.warning:
            value = Absent("positive-infinity")
        elif m.warning is not None and CgmWarning.RESULT_TOO_LOW in m.warning:
            value = Absent("negative-infinity")
        else:
            value = reading_value(m.glucose, "mg/dL")
        if session_start is None:
            readings.append(Reading(kind="cgm-glucose", value=value, position=i))
        else:
            at = cgm_time(session_start, m.time_offset)
            readings.append(Reading(kind="cgm-glucose", value=value, device_time=at))
    return readings


@dataclass(frozen=True, slots=True)
class CgmFeatures:
    """The value of 0x2AA8: what the sensor supports, and its specimen and sample location."""

    features: CgmFeature
    glucose_type: GlucoseType
    sample_location: CgmSampleLocation

    @property
    def e2e_crc(self) -> bool:
        """Whether CGM Measurement and Session Start Time values end in an E2E-CRC."""
        return CgmFeature.E2E_CRC in self.features


def parse_cgm_feature(data: bytes) -> CgmFeatures:
    """Parse a CGM Feature (0x2AA8) value; ParseError if malformed or its E2E-CRC field is wrong."""
    characteristic = CGM_FEATURE
    check_exact_length(data, characteristic, _FEATURE_LENGTH, "features, type and location, E2E-CRC")
    reader = FieldReader(data, characteristic)
    features = CgmFeature(reader.uint24() & _FEATURE_BITS)  # CGM Feature, uint24
    type_and_location = reader.uint8()  # Type (low nibble), Sample Location (high nibble)
    crc_field = reader.uint16()  # E2E-CRC, uint16
    if CgmFeature.E2E_CRC in features:
        _check_crc(data, characteristic)
    elif crc_field != _NO_CRC:
        raise ParseError(
            characteristic, f"E2E-CRC is not supported, so its field must be 0xffff, not {crc_field:#06x}"
        )
    return CgmFeatures(
        features=features,
        glucose_type=enum_value(GlucoseType, type_and_location & 0x0F, characteristic, "type"),
        sample_location=enum_value(
            CgmSampleLocation, type_and_location >> 4, characteristic, "sample location"
        ),
    )


def encode_cgm_feature(features: CgmFeatures) -> bytes:
    """Encode features as a 0x2AA8 value, with the E2E-CRC (or 0xFFFF) they call for."""
    writer = FieldWriter()
    writer.uint24(int(features.features) & _FEATURE_BITS, "features")
    writer.uint8(int(features.glucose_type) | int(features.sample_location) << 4, "type and sample location")
    head = writer.to_bytes()
    crc = e2e_crc(head) if features.e2e_crc else _NO_CRC
    return head + crc.to_bytes(2, "little")


@dataclass(frozen=True, slots=True)
class CgmSessionStartTime:
    """The value of 0x2AAA: when the session started, in the sensor's local time.

    ``start`` is None when its date is "not known"; ``time_zone`` counts 15 minutes from UTC, None when
    unknown.
    """

    start: datetime | None
    time_zone: int | None = None
    dst_offset: DstOffset = DstOffset.UNKNOWN

    @property
    def aware_start(self) -> datetime | None:
        """``start`` with its UTC offset (time zone plus DST), or None if the offset is unknown."""
        if self.start is None or self.time_zone is None or self.dst_offset is DstOffset.UNKNOWN:
            return None
        offset = timedelta(minutes=15 * (self.time_zone + int(self.dst_offset)))
        return self.start.replace(tzinfo=timezone(offset))


def parse_cgm_session_start_time(data: bytes, *, crc: bool = False) -> CgmSessionStartTime:
    """Parse a CGM Session Start Time (0x2AAA) value; with ``crc`` its E2E-CRC is checked."""
    characteristic = CGM_SESSION_START_TIME
    length = _SESSION_START_LENGTH + (_CRC_LENGTH if crc else 0)
    check_exact_length(
        data, characteristic, length, "date time, time zone, DST offset" + (", E2E-CRC" if crc else "")
    )
    if crc:
        _check_crc(data, characteristic)
    reader = FieldReader(data, characteristic)
    start = reader.date_time()  # Session Start Time, Date Time
    time_zone = reader.sint8()  # Time Zone, sint8, 15 minutes
    dst_code = reader.uint8()  # DST Offset, uint8
    if time_zone != _TIME_ZONE_UNKNOWN and time_zone not in _TIME_ZONE_RANGE:
        raise ParseError(characteristic, f"time zone {time_zone} is reserved (-48..56, or -128 for unknown)")
    return CgmSessionStartTime(
        start=start,
        time_zone=None if time_zone == _TIME_ZONE_UNKNOWN else time_zone,
        dst_offset=enum_value(DstOffset, dst_code, characteristic, "DST offset"),
    )


def encode_cgm_session_start_time(value: CgmSessionStartTime, *, crc: bool = False) -> bytes:
    """Encode a session start as a 0x2AAA value (E2E-CRC last when ``crc``)."""
    writer = FieldWriter()
    writer.date_time(value.start)
    if value.time_zone is not None and value.time_zone not in _TIME_ZONE_RANGE:
        raise ValueError(f"time zone {value.time_zone} is not in -48..56")
    writer.sint8(_TIME_ZONE_UNKNOWN if value.time_zone is None else value.time_zone, "time zone")
    writer.uint8(int(value.dst_offset), "DST offset")
    body = writer.to_bytes()
    return body + e2e_crc(body).to_bytes(2, "little") if crc else body
