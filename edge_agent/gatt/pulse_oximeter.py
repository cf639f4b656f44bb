"""Pulse Oximeter service (0x1822): PLX Spot-Check Measurement (0x2A5E).

Format (GATT Specification Supplement, "PLX Spot-Check Measurement"):

    flags                      uint8   bit 0 time stamp, bit 1 measurement status, bit 2 device and
                                       sensor status, bit 3 pulse amplitude index, bit 4 device clock
                                       is not set; bits 5-7 reserved
    SpO2                       SFLOAT  percent
    PR                         SFLOAT  pulse rate, beats per minute
    time stamp                 Date Time, 7 bytes if bit 0
    measurement status         uint16             if bit 1
    device and sensor status   uint24             if bit 2
    pulse amplitude index      SFLOAT, percent    if bit 3

This module parses and encodes those bytes and maps a measurement to device-neutral readings. Reserved
bits (flags bits 5-7, measurement status bits 0-4, device and sensor status bits 16-23) are ignored when
parsing and written as zero. PLX Continuous Measurement (0x2A5F) is not handled here.
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
from edge_agent.readings import Absent, Reading, Value

PLX_SPOT_CHECK_MEASUREMENT = "0x2A5E PLX Spot-Check Measurement"

_FLAG_TIME_STAMP = 0x01
_FLAG_MEASUREMENT_STATUS = 0x02
_FLAG_DEVICE_AND_SENSOR_STATUS = 0x04
_FLAG_PULSE_AMPLITUDE_INDEX = 0x08
_FLAG_DEVICE_CLOCK_NOT_SET = 0x10

_MINIMUM_LENGTH = 5  # flags (1) + SpO2, PR (2 each)


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


_MEASUREMENT_STATUS_BITS = 0xFFE0
_DEVICE_AND_SENSOR_STATUS_BITS = 0x00FFFF


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
    announced = [
        name
        for present, name in (
            (time_stamp_present, "a time stamp"),
            (measurement_status_present, "a measurement status"),
            (device_and_sensor_status_present, "a device and sensor status"),
            (pulse_amplitude_index_present, "a pulse amplitude index"),
        )
        if present
    ]
    check_length(data, characteristic, required, announced)

    spo2 = reader.sfloat()  # SpO2, SFLOAT, percent
    pulse_rate = reader.sfloat()  # PR, SFLOAT, beats per minute
    time_stamp = reader.date_time() if time_stamp_present else None  # Timestamp, Date Time
    measurement_status = (  # Measurement Status, uint16
        PlxMeasurementStatus(reader.uint16() & _MEASUREMENT_STATUS_BITS)
        if measurement_status_present
        else None
    )
    device_and_sensor_status = (  # Device and Sensor Status, uint24
        PlxDeviceAndSensorStatus(reader.uint24() & _DEVICE_AND_SENSOR_STATUS_BITS)
        if device_and_sensor_status_present
        else None
    )
    pulse_amplitude_index = reader.sfloat() if pulse_amplitude_index_present else None  # PAI, SFLOAT
    return PlxSpotCheckMeasurement(
        spo2=spo2,
        pulse_rate=pulse_rate,
        time_stamp=time_stamp,
        measurement_status=measurement_status,
        device_and_sensor_status=device_and_sensor_status,
        pulse_amplitude_index=pulse_amplitude_index,
        device_clock_not_set=device_clock_not_set,
    )


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


def to_readings(measurement: PlxSpotCheckMeasurement) -> list[Reading]:
    """An "spo2" reading in % and a "pulse-rate-oximeter" reading in /min.

    A time stamp from a clock the device says is not set is not a time: ``device_time`` is then None.
    A status of invalid or unavailable wins over the numbers (HL7 PHD IG, measurement status): both
    readings become Absent("error") or Absent("not-performed").
    """
    m = measurement
    device_time = None if m.device_clock_not_set else m.time_stamp
    absent = _absent_by_status(m.measurement_status)
    spo2: Value = absent if absent is not None else reading_value(m.spo2, "%")
    pulse_rate: Value = absent if absent is not None else reading_value(m.pulse_rate, "/min")
    return [
        Reading(kind="spo2", value=spo2, device_time=device_time),
        Reading(kind="pulse-rate-oximeter", value=pulse_rate, device_time=device_time),
    ]


def _absent_by_status(status: PlxMeasurementStatus | None) -> Absent | None:
    if status is None:
        return None
    if PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED in status:
        return Absent("error")
    if PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE in status:
        return Absent("not-performed")
    return None
