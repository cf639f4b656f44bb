"""Pulse Oximeter service (0x1822): PLX Spot-Check 0x2A5E, PLX Continuous 0x2A5F, PLX Features 0x2A60.

PLX Spot-Check Measurement (GATT Specification Supplement):

    flags                      uint8   bit 0 time stamp, bit 1 measurement status, bit 2 device and
                                       sensor status, bit 3 pulse amplitude index, bit 4 device clock
                                       is not set; bits 5-7 reserved
    SpO2                       SFLOAT  percent
    PR                         SFLOAT  pulse rate, beats per minute
    time stamp                 Date Time, 7 bytes if bit 0
    measurement status         uint16             if bit 1
    device and sensor status   uint24             if bit 2
    pulse amplitude index      SFLOAT, percent    if bit 3

PLX Continuous Measurement:

    flags                      uint8   bit 0 SpO2PR-Fast, bit 1 SpO2PR-Slow, bit 2 measurement status,
                                       bit 3 device and sensor status, bit 4 pulse amplitude index;
                                       bits 5-7 reserved
    SpO2PR-Normal              SFLOAT SpO2 (%), SFLOAT PR (/min)
    SpO2PR-Fast                SFLOAT SpO2, SFLOAT PR   if bit 0
    SpO2PR-Slow                SFLOAT SpO2, SFLOAT PR   if bit 1
    measurement status         uint16                   if bit 2
    device and sensor status   uint24                   if bit 3
    pulse amplitude index      SFLOAT, percent          if bit 4

PLX Features: uint16 supported features (bit 0 measurement status support follows, bit 1 device and
sensor status support follows, bits 2-7 features), then uint16 measurement status support if bit 0
and uint24 device and sensor status support if bit 1.

This module parses and encodes those bytes and maps measurements to device-neutral readings. Reserved
bits (flags bits 5-7, measurement status bits 0-4, device and sensor status bits 16-23, feature bits
8-15) are ignored when parsing and written as zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntFlag

from edge_agent.gatt._fields import (
    FieldReader,
    FieldWriter,
    check_length,
    check_minimum_length,
    reading_value,
)
from edge_agent.gatt.datetime_field import DATE_TIME_LENGTH
from edge_agent.gatt.ieee11073 import NumericValue
from fhir_contract.readings import Absent, Reading, Value

PLX_SPOT_CHECK_MEASUREMENT = "0x2A5E PLX Spot-Check Measurement"
PLX_CONTINUOUS_MEASUREMENT = "0x2A5F PLX Continuous Measurement"
PLX_FEATURES = "0x2A60 PLX Features"

_FLAG_TIME_STAMP = 0x01
_FLAG_MEASUREMENT_STATUS = 0x02
_FLAG_DEVICE_AND_SENSOR_STATUS = 0x04
_FLAG_PULSE_AMPLITUDE_INDEX = 0x08
_FLAG_DEVICE_CLOCK_NOT_SET = 0x10

_MINIMUM_LENGTH = 5  # flags (1) + SpO2, PR (2 each)

_FLAG_CONTINUOUS_FAST = 0x01
_FLAG_CONTINUOUS_SLOW = 0x02
_FLAG_CONTINUOUS_MEASUREMENT_STATUS = 0x04
_FLAG_CONTINUOUS_DEVICE_AND_SENSOR_STATUS = 0x08
_FLAG_CONTINUOUS_PULSE_AMPLITUDE_INDEX = 0x10

_CONTINUOUS_MINIMUM_LENGTH = 5  # flags (1) + SpO2PR-Normal (4)

_FEATURE_MEASUREMENT_STATUS_SUPPORT = 0x0001
_FEATURE_DEVICE_AND_SENSOR_STATUS_SUPPORT = 0x0002
_FEATURES_MINIMUM_LENGTH = 2  # supported features (2)


class PlxMeasurementStatus(IntFlag):
    """The Measurement Status field (uint16); bits 0-4 are reserved."""

    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_MEASUREMENT_STORAGE = 1 << 9
    DATA_FOR_DEMONSTRATION = 1 << 10
    DATA_FOR_TESTING = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT_DETECTED = 1 << 14
    INVALID_MEASUREMENT_DETECTED = 1 << 15


class PlxDeviceAndSensorStatus(IntFlag):
    """The Device and Sensor Status field (uint24); bits 16-23 are reserved."""

    EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
    EQUIPMENT_MALFUNCTION_DETECTED = 1 << 1
    SIGNAL_PROCESSING_IRREGULARITY_DETECTED = 1 << 2
    INADEQUATE_SIGNAL_DETECTED = 1 << 3
    POOR_SIGNAL_DETECTED = 1 << 4
    LOW_PERFUSION_DETECTED = 1 << 5
    ERRATIC_SIGNAL_DETECTED = 1 << 6
    NONPULSATILE_SIGNAL_DETECTED = 1 << 7
    QUESTIONABLE_PULSE_DETECTED = 1 << 8
    SIGNAL_ANALYSIS_ONGOING = 1 << 9
    SENSOR_INTERFERENCE_DETECTED = 1 << 10
    SENSOR_UNCONNECTED_TO_USER = 1 << 11
    UNKNOWN_SENSOR_CONNECTED = 1 << 12
    SENSOR_DISPLACED = 1 << 13
    SENSOR_MALFUNCTIONING = 1 << 14
    SENSOR_DISCONNECTED = 1 << 15


class PlxFeature(IntFlag):
    """Supported Features bits 2-7 of 0x2A60 (bits 0-1 say which support fields follow)."""

    MEASUREMENT_STORAGE_FOR_SPOT_CHECK = 1 << 2
    TIME_STAMP_FOR_SPOT_CHECK = 1 << 3
    SPO2PR_FAST = 1 << 4
    SPO2PR_SLOW = 1 << 5
    PULSE_AMPLITUDE_INDEX = 1 << 6
    MULTIPLE_BONDS = 1 << 7


_MEASUREMENT_STATUS_BITS = 0xFFE0
_DEVICE_AND_SENSOR_STATUS_BITS = 0x00FFFF
_FEATURE_BITS = 0x00FC


@dataclass(frozen=True, slots=True)
class PlxSpotCheckMeasurement:
    """One value of 0x2A5E; None marks an optional field the device did not send.

    A time stamp whose date is "not known" (zeros) parses to None like an absent one.
    """

    spo2: NumericValue
    pulse_rate: NumericValue
    time_stamp: datetime | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    pulse_amplitude_index: NumericValue | None = None
    device_clock_not_set: bool = False


def parse_plx_spot_check_measurement(data: bytes) -> PlxSpotCheckMeasurement:
    """Parse a PLX Spot-Check Measurement (0x2A5E) value; ParseError if the bytes are not one."""
    characteristic = PLX_SPOT_CHECK_MEASUREMENT
    check_minimum_length(data, characteristic, _MINIMUM_LENGTH, "flags, SpO2 and pulse rate")
    reader = FieldReader(data, characteristic)
    flags = reader.uint8()  # Flags
    time_stamp_present = bool(flags & _FLAG_TIME_STAMP)
    measurement_status_present = bool(flags & _FLAG_MEASUREMENT_STATUS)
    device_and_sensor_status_present = bool(flags & _FLAG_DEVICE_AND_SENSOR_STATUS)
    pulse_amplitude_index_present = bool(flags & _FLAG_PULSE_AMPLITUDE_INDEX)
    device_clock_not_set = bool(flags & _FLAG_DEVICE_CLOCK_NOT_SET)

    required = (
        _MINIMUM_LENGTH
        + (DATE_TIME_LENGTH if time_stamp_present else 0)
        + (2 if measurement_status_present else 0)
        + (3 if device_and_sensor_status_present else 0)
        + (2 if pulse_amplitude_index_present else 0)
    )
    optional = (
        (time_stamp_present, "a time stamp"),
        (measurement_status_present, "a measurement status"),
        (device_and_sensor_status_present, "a device and sensor status"),
        (pulse_amplitude_index_present, "a pulse amplitude index"),
    )
    check_length(data, characteristic, required, optional)

    spo2 = reader.sfloat()  # SpO2, SFLOAT, percent
    pulse_rate = reader.sfloat()  # PR, SFLOAT, beats per minute
    time_stamp = reader.date_time() if time_stamp_present else None  # Timestamp, Date Time
    measurement_status, device_and_sensor_status, pulse_amplitude_index = _read_status_tail(
        reader, measurement_status_present, device_and_sensor_status_present, pulse_amplitude_index_present
    )
    return PlxSpotCheckMeasurement(
        spo2=spo2,
        pulse_rate=pulse_rate,
        time_stamp=time_stamp,
        measurement_status=measurement_status,
        device_and_sensor_status=device_and_sensor_status,
        pulse_amplitude_index=pulse_amplitude_index,
        device_clock_not_set=device_clock_not_set,
    )


def _read_status_tail(
    reader: FieldReader, measurement_status: bool, device_and_sensor_status: bool, pulse_amplitude_index: bool
) -> tuple[PlxMeasurementStatus | None, PlxDeviceAndSensorStatus | None, NumericValue | None]:
    """The optional fields both PLX measurements end with, in the order the spec gives them."""
    status = (  # Measurement Status, uint16
        PlxMeasurementStatus(reader.uint16() & _MEASUREMENT_STATUS_BITS) if measurement_status else None
    )
    device_status = (  # Device and Sensor Status, uint24
        PlxDeviceAndSensorStatus(reader.uint24() & _DEVICE_AND_SENSOR_STATUS_BITS)
        if device_and_sensor_status
        else None
    )
    pai = reader.sfloat() if pulse_amplitude_index else None  # PAI, SFLOAT
    return status, device_status, pai


def encode_plx_spot_check_measurement(measurement: PlxSpotCheckMeasurement) -> bytes:
    """Encode a measurement as a 0x2A5E value; ValueError if a field cannot carry it."""
    m = measurement
    flags = (
        (_FLAG_TIME_STAMP if m.time_stamp is not None else 0)
        | (_FLAG_MEASUREMENT_STATUS if m.measurement_status is not None else 0)
        | (_FLAG_DEVICE_AND_SENSOR_STATUS if m.device_and_sensor_status is not None else 0)
        | (_FLAG_PULSE_AMPLITUDE_INDEX if m.pulse_amplitude_index is not None else 0)
        | (_FLAG_DEVICE_CLOCK_NOT_SET if m.device_clock_not_set else 0)
    )
    writer = FieldWriter()
    writer.uint8(flags, "flags")
    writer.sfloat(m.spo2)
    writer.sfloat(m.pulse_rate)
    if m.time_stamp is not None:
        writer.date_time(m.time_stamp)
    if m.measurement_status is not None:
        writer.uint16(int(m.measurement_status) & _MEASUREMENT_STATUS_BITS, "measurement status")
    if m.device_and_sensor_status is not None:
        writer.uint24(
            int(m.device_and_sensor_status) & _DEVICE_AND_SENSOR_STATUS_BITS, "device and sensor status"
        )
    if m.pulse_amplitude_index is not None:
        writer.sfloat(m.pulse_amplitude_index)
    return writer.to_bytes()


@dataclass(frozen=True, slots=True)
class SpO2PulseRate:
    """One SpO2PR pair of 0x2A5F: SpO2 in %, pulse rate in /min."""

    spo2: NumericValue
    pulse_rate: NumericValue


@dataclass(frozen=True, slots=True)
class PlxContinuousMeasurement:
    """One value of 0x2A5F; None marks an optional field the device did not send.

    ``normal`` is the SpO2PR-Normal pair; ``fast`` and ``slow`` are the optional fast- and slow-response
    pairs, averaged over shorter and longer windows than the normal one.
    """

    normal: SpO2PulseRate
    fast: SpO2PulseRate | None = None
    slow: SpO2PulseRate | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    pulse_amplitude_index: NumericValue | None = None


def parse_plx_continuous_measurement(data: bytes) -> PlxContinuousMeasurement:
    """Parse a PLX Continuous Measurement (0x2A5F) value; ParseError if the bytes are not one."""
    characteristic = PLX_CONTINUOUS_MEASUREMENT
    check_minimum_length(data, characteristic, _CONTINUOUS_MINIMUM_LENGTH, "flags and SpO2PR-Normal")
    reader = FieldReader(data, characteristic)
    flags = reader.uint8()  # Flags
    fast_present = bool(flags & _FLAG_CONTINUOUS_FAST)
    slow_present = bool(flags & _FLAG_CONTINUOUS_SLOW)
    measurement_status_present = bool(flags & _FLAG_CONTINUOUS_MEASUREMENT_STATUS)
    device_and_sensor_status_present = bool(flags & _FLAG_CONTINUOUS_DEVICE_AND_SENSOR_STATUS)
    pulse_amplitude_index_present = bool(flags & _FLAG_CONTINUOUS_PULSE_AMPLITUDE_INDEX)

    required = (
        _CONTINUOUS_MINIMUM_LENGTH
        + (4 if fast_present else 0)
        + (4 if slow_present else 0)
        + (2 if measurement_status_present else 0)
        + (3 if device_and_sensor_status_present else 0)
        + (2 if pulse_amplitude_index_present else 0)
    )
    optional = (
        (fast_present, "SpO2PR-Fast"),
        (slow_present, "SpO2PR-Slow"),
        (measurement_status_present, "a measurement status"),
        (device_and_sensor_status_present, "a device and sensor status"),
        (pulse_amplitude_index_present, "a pulse amplitude index"),
    )
    check_length(data, characteristic, required, optional)

    normal = SpO2PulseRate(reader.sfloat(), reader.sfloat())  # SpO2PR-Normal: SpO2, PR (SFLOAT each)
    fast = SpO2PulseRate(reader.sfloat(), reader.sfloat()) if fast_present else None  # SpO2PR-Fast
    slow = SpO2PulseRate(reader.sfloat(), reader.sfloat()) if slow_present else None  # SpO2PR-Slow
    measurement_status, device_and_sensor_status, pulse_amplitude_index = _read_status_tail(
        reader, measurement_status_present, device_and_sensor_status_present, pulse_amplitude_index_present
    )
    return PlxContinuousMeasurement(
        normal=normal,
        fast=fast,
        slow=slow,
        measurement_status=measurement_status,
        device_and_sensor_status=device_and_sensor_status,
        pulse_amplitude_index=pulse_amplitude_index,
    )


def encode_plx_continuous_measurement(measurement: PlxContinuousMeasurement) -> bytes:
    """Encode a measurement as a 0x2A5F value; ValueError if a field cannot carry it."""
    m = measurement
    flags = (
        (_FLAG_CONTINUOUS_FAST if m.fast is not None else 0)
        | (_FLAG_CONTINUOUS_SLOW if m.slow is not None else 0)
        | (_FLAG_CONTINUOUS_MEASUREMENT_STATUS if m.measurement_status is not None else 0)
        | (_FLAG_CONTINUOUS_DEVICE_AND_SENSOR_STATUS if m.device_and_sensor_status is not None else 0)
        | (_FLAG_CONTINUOUS_PULSE_AMPLITUDE_INDEX if m.pulse_amplitude_index is not None else 0)
    )
    writer = FieldWriter()
    writer.uint8(flags, "flags")
    for pair in (m.normal, m.fast, m.slow):
        if pair is not None:
            writer.sfloat(pair.spo2)
            writer.sfloat(pair.pulse_rate)
    if m.measurement_status is not None:
        writer.uint16(int(m.measurement_status) & _MEASUREMENT_STATUS_BITS, "measurement status")
    if m.device_and_sensor_status is not None:
        writer.uint24(
            int(m.device_and_sensor_status) & _DEVICE_AND_SENSOR_STATUS_BITS, "device and sensor status"
        )
    if m.pulse_amplitude_index is not None:
        writer.sfloat(m.pulse_amplitude_index)
    return writer.to_bytes()


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    """The value of 0x2A60: what the oximeter supports.

    ``measurement_status_support`` and ``device_and_sensor_status_support`` list the status bits the
    device can report; None when it sent no such field (it reports none of them).
    """

    features: PlxFeature
    measurement_status_support: PlxMeasurementStatus | None = None
    device_and_sensor_status_support: PlxDeviceAndSensorStatus | None = None


def parse_plx_features(data: bytes) -> PlxFeatures:
    """Parse a PLX Features (0x2A60) value; ParseError if the bytes are not one."""
    characteristic = PLX_FEATURES
    check_minimum_length(data, characteristic, _FEATURES_MINIMUM_LENGTH, "supported features")
    reader = FieldReader(data, characteristic)
    supported = reader.uint16()  # Supported Features, uint16
    measurement_status_support_present = bool(supported & _FEATURE_MEASUREMENT_STATUS_SUPPORT)
    device_and_sensor_status_support_present = bool(supported & _FEATURE_DEVICE_AND_SENSOR_STATUS_SUPPORT)

    required = (
        _FEATURES_MINIMUM_LENGTH
        + (2 if measurement_status_support_present else 0)
        + (3 if device_and_sensor_status_support_present else 0)
    )
    optional = (
        (measurement_status_support_present, "a measurement status support"),
        (device_and_sensor_status_support_present, "a device and sensor status support"),
    )
    check_length(data, characteristic, required, optional)

    measurement_status_support = (  # Measurement Status Support, uint16
        PlxMeasurementStatus(reader.uint16() & _MEASUREMENT_STATUS_BITS)
        if measurement_status_support_present
        else None
    )
    device_and_sensor_status_support = (  # Device and Sensor Status Support, uint24
        PlxDeviceAndSensorStatus(reader.uint24() & _DEVICE_AND_SENSOR_STATUS_BITS)
        if device_and_sensor_status_support_present
        else None
    )
    return PlxFeatures(
        features=PlxFeature(supported & _FEATURE_BITS),
        measurement_status_support=measurement_status_support,
        device_and_sensor_status_support=device_and_sensor_status_support,
    )


def encode_plx_features(features: PlxFeatures) -> bytes:
    """Encode features as a 0x2A60 value."""
    f = features
    supported = (
        (int(f.features) & _FEATURE_BITS)
        | (_FEATURE_MEASUREMENT_STATUS_SUPPORT if f.measurement_status_support is not None else 0)
        | (_FEATURE_DEVICE_AND_SENSOR_STATUS_SUPPORT if f.device_and_sensor_status_support is not None else 0)
    )
    writer = FieldWriter()
    writer.uint16(supported, "supported features")
    if f.measurement_status_support is not None:
        writer.uint16(
            int(f.measurement_status_support) & _MEASUREMENT_STATUS_BITS, "measurement status support"
        )
    if f.device_and_sensor_status_support is not None:
        writer.uint24(
            int(f.device_and_sensor_status_support) & _DEVICE_AND_SENSOR_STATUS_BITS,
            "device and sensor status support",
        )
    return writer.to_bytes()


def to_readings(measurement: PlxSpotCheckMeasurement | PlxContinuousMeasurement) -> list[Reading]:
    """An "spo2" reading in % and a "pulse-rate-oximeter" reading in /min; for a continuous measurement
    also "spo2-fast"/"pulse-rate-oximeter-fast" and "spo2-slow"/"pulse-rate-oximeter-slow" when sent.

    A spot-check time stamp from a clock the device says is not set is not a time: ``device_time`` is
    then None (continuous measurements carry no time stamp at all). A status of invalid or unavailable
    wins over the numbers (HL7 PHD IG, measurement status): every reading becomes Absent("error") or
    Absent("not-performed").
    """
    m = measurement
    absent = _absent_by_status(m.measurement_status)
    if isinstance(m, PlxSpotCheckMeasurement):
        device_time = None if m.device_clock_not_set else m.time_stamp
        return _pair_readings(SpO2PulseRate(m.spo2, m.pulse_rate), "", absent, device_time)
    readings = _pair_readings(m.normal, "", absent, None)
    if m.fast is not None:
        readings += _pair_readings(m.fast, "-fast", absent, None)
    if m.slow is not None:
        readings += _pair_readings(m.slow, "-slow", absent, None)
    return readings


def _pair_readings(
    pair: SpO2PulseRate, suffix: str, absent: Absent | None, device_time: datetime | None
) -> list[Reading]:
    spo2: Value = absent if absent is not None else reading_value(pair.spo2, "%")
    pulse_rate: Value = absent if absent is not None else reading_value(pair.pulse_rate, "/min")
    return [
        Reading(kind=f"spo2{suffix}", value=spo2, device_time=device_time),
        Reading(kind=f"pulse-rate-oximeter{suffix}", value=pulse_rate, device_time=device_time),
    ]


def _absent_by_status(status: PlxMeasurementStatus | None) -> Absent | None:
    if status is None:
        return None
    if PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED in status:
        return Absent("error")
    if PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE in status:
        return Absent("not-performed")
    return None
