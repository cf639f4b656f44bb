"""Battery service (0x180F): Battery Level (0x2A19), one uint8 percentage 0..100.

A level above 100 is a ParseError. The level maps to a "battery-level" reading: the HL7 PHD IG sends the
battery charge as an Observation (MDC_ATTR_VAL_BATT_CHARGE), not as a Device property.
"""

from __future__ import annotations

from decimal import Decimal

from edge_agent.gatt._fields import FieldReader, FieldWriter, check_exact_length
from edge_agent.gatt.errors import ParseError
from fhir_contract.readings import Quantity, Reading

BATTERY_LEVEL = "0x2A19 Battery Level"

_MAX_LEVEL = 100


def parse_battery_level(data: bytes) -> int:
    """Parse a Battery Level (0x2A19) value: the charge in percent; ParseError if not one byte 0..100."""
    characteristic = BATTERY_LEVEL
    check_exact_length(data, characteristic, 1, "battery level")
    reader = FieldReader(data, characteristic)
    level = reader.uint8()  # Battery Level, uint8, percent
    if level > _MAX_LEVEL:
        raise ParseError(characteristic, f"battery level {level} % is above {_MAX_LEVEL} %")
    return level


def encode_battery_level(level: int) -> bytes:
    """Encode a percentage as a 0x2A19 value; ValueError outside 0..100."""
    if not 0 <= level <= _MAX_LEVEL:
        raise ValueError(f"battery level {level} is not in 0..{_MAX_LEVEL}")
    writer = FieldWriter()
    writer.uint8(level, "battery level")
    return writer.to_bytes()


def to_readings(level: int) -> list[Reading]:
    """One "battery-level" reading in %; the value has no time stamp of its own."""
    return [Reading(kind="battery-level", value=Quantity(Decimal(level), "%"))]
