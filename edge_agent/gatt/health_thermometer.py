"""Health Thermometer service (0x1809): Temperature Measurement 0x2A1C, Intermediate Temperature 0x2A1E
and Temperature Type 0x2A1D.

Both characteristics share one format (GATT Specification Supplement, "Temperature Measurement"):

    flags             uint8   bit 0 Fahrenheit (else Celsius), bit 1 time stamp, bit 2 temperature type;
                              bits 3-7 reserved
    temperature       FLOAT   (32 bit)
    time stamp        Date Time, 7 bytes          if bit 1
    temperature type  uint8, 1 armpit .. 9 tympanum if bit 2

Temperature Type (0x2A1D) is the same uint8 on its own, for a thermometer that always measures at one
site and so leaves the field out of its measurements.

This module parses and encodes those bytes and maps a measurement to device-neutral readings; the site
becomes the reading's ``body_site`` (a site key of "body-temperature" in the terminology), which the
Observation carries as its site-specific MDC code and ``bodySite``. Reserved flag bits are ignored when
parsing and written as zero; a reserved temperature type (0, 10-255) is a ParseError, since the site of
the reading would be unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum, IntEnum

from edge_agent.gatt._fields import (
    FieldReader,
    FieldWriter,
    check_exact_length,
    check_length,
    check_minimum_length,
    reading_value,
)
from edge_agent.gatt.datetime_field import DATE_TIME_LENGTH
from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.ieee11073 import NumericValue
from fhir_contract.readings import Reading

TEMPERATURE_MEASUREMENT = "0x2A1C Temperature Measurement"
INTERMEDIATE_TEMPERATURE = "0x2A1E Intermediate Temperature"
TEMPERATURE_TYPE = "0x2A1D Temperature Type"

_FLAG_FAHRENHEIT = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_TEMPERATURE_TYPE = 0x04

_MINIMUM_LENGTH = 5  # flags (1) + temperature (FLOAT, 4)


class TemperatureUnit(Enum):
    """The unit of the temperature (flags bit 0); the value is its UCUM code."""

    CELSIUS = "Cel"
    FAHRENHEIT = "[degF]"


class TemperatureType(IntEnum):
    """Where on the body the temperature was taken (org.bluetooth.characteristic.temperature_type)."""

    ARMPIT = 1
    BODY = 2  # general
    EAR = 3  # usually earlobe
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9  # ear drum


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """One value of 0x2A1C (or 0x2A1E); None marks an optional field the device did not send.

    A time stamp whose date is "not known" (zeros) parses to None like an absent one.
    """

    temperature: NumericValue
    unit: TemperatureUnit = TemperatureUnit.CELSIUS
    time_stamp: datetime | None = None
    temperature_type: TemperatureType | None = None


def parse_temperature_measurement(data: bytes) -> TemperatureMeasurement:
    """Parse a Temperature Measurement (0x2A1C) value; ParseError if the bytes are not one."""
    return _parse(data, TEMPERATURE_MEASUREMENT)


def parse_intermediate_temperature(data: bytes) -> TemperatureMeasurement:
    """Parse an Intermediate Temperature (0x2A1E) value: a reading in progress, same format as 0x2A1C."""
    return _parse(data, INTERMEDIATE_TEMPERATURE)


def _parse(data: bytes, characteristic: str) -> TemperatureMeasurement:
    check_minimum_length(data, characteristic, _MINIMUM_LENGTH, "flags and temperature")
    reader = FieldReader(data, characteristic)
    flags = reader.uint8()  # Flags
    fahrenheit = bool(flags & _FLAG_FAHRENHEIT)
    time_stamp_present = bool(flags & _FLAG_TIME_STAMP)
    temperature_type_present = bool(flags & _FLAG_TEMPERATURE_TYPE)

    required = (
        _MINIMUM_LENGTH
        + (DATE_TIME_LENGTH if time_stamp_present else 0)
        + (1 if temperature_type_present else 0)
    )
    optional = (
        (time_stamp_present, "a time stamp"),
        (temperature_type_present, "a temperature type"),
    )
    check_length(data, characteristic, required, optional)

    temperature = reader.float32()  # Temperature Measurement Value, FLOAT
    time_stamp = reader.date_time() if time_stamp_present else None  # Time Stamp, Date Time
    type_code = reader.uint8() if temperature_type_present else None  # Temperature Type, uint8
    return TemperatureMeasurement(
        temperature=temperature,
        unit=TemperatureUnit.FAHRENHEIT if fahrenheit else TemperatureUnit.CELSIUS,
        time_stamp=time_stamp,
        temperature_type=None if type_code is None else _temperature_type(type_code, characteristic),
    )


def _temperature_type(code: int, characteristic: str) -> TemperatureType:
    try:
        return TemperatureType(code)
    except ValueError as exc:
        raise ParseError(characteristic, f"temperature type {code} is reserved (1..9 are defined)") from exc


def encode_temperature_measurement(measurement: TemperatureMeasurement) -> bytes:
    """Encode a measurement as a 0x2A1C value (0x2A1E has the same format); ValueError if a field cannot."""
    m = measurement
    flags = (
        (_FLAG_FAHRENHEIT if m.unit is TemperatureUnit.FAHRENHEIT else 0)
        | (_FLAG_TIME_STAMP if m.time_stamp is not None else 0)
        | (_FLAG_TEMPERATURE_TYPE if m.temperature_type is not None else 0)
    )
    writer = FieldWriter()
    writer.uint8(flags, "flags")
    writer.float32(m.temperature)
    if m.time_stamp is not None:
        writer.date_time(m.time_stamp)
    if m.temperature_type is not None:
        writer.uint8(int(m.temperature_type), "temperature type")
    return writer.to_bytes()


def parse_temperature_type(data: bytes) -> TemperatureType:
    """Parse a Temperature Type (0x2A1D) value; ParseError unless it is one byte naming a site."""
    characteristic = TEMPERATURE_TYPE
    check_exact_length(data, characteristic, 1, "temperature type")
    reader = FieldReader(data, characteristic)
    return _temperature_type(reader.uint8(), characteristic)  # Temperature Type, uint8


def encode_temperature_type(temperature_type: TemperatureType) -> bytes:
    """Encode a site as a 0x2A1D value."""
    return bytes((int(temperature_type),))


# The site keys of "body-temperature" in fhir/terminology.json. "Body (general)" names no site: its
# reading keeps the general code MDC_TEMP_BODY and no bodySite.
BODY_SITES: dict[TemperatureType, str | None] = {
    TemperatureType.ARMPIT: "armpit",
    TemperatureType.BODY: None,
    TemperatureType.EAR: "ear",
    TemperatureType.FINGER: "finger",
    TemperatureType.GASTROINTESTINAL_TRACT: "gastrointestinal-tract",
    TemperatureType.MOUTH: "mouth",
    TemperatureType.RECTUM: "rectum",
    TemperatureType.TOE: "toe",
    TemperatureType.TYMPANUM: "tympanum",
}


def to_readings(measurement: TemperatureMeasurement, site: TemperatureType | None = None) -> list[Reading]:
    """One "body-temperature" reading in Cel or [degF], with ``body_site`` from its temperature type.

    ``site`` is the thermometer's Temperature Type characteristic (0x2A1D), read once per connection:
    it applies when the measurement itself names no type (a measurement that does, wins).
    """
    m = measurement
    temperature_type = m.temperature_type if m.temperature_type is not None else site
    return [
        Reading(
            kind="body-temperature",
            value=reading_value(m.temperature, m.unit.value),
            device_time=m.time_stamp,
            body_site=None if temperature_type is None else BODY_SITES[temperature_type],
        )
    ]
