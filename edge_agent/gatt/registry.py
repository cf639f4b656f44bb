"""Which parser handles which characteristic: UUIDs in, device-neutral readings out.

The ``ble`` adapters receive ``(uuid, bytes)`` from bleak or Bumble and call ``decode``; nothing else
in the hub needs to know which module parses what. UUIDs are compared in bleak's form, the full
128-bit lower-case string ("00002a35-0000-1000-8000-00805f9b34fb"); ``normalize_uuid`` turns the short
forms into it. Intermediate values (0x2A36 cuff pressure while inflating, 0x2A1E temperature while
measuring) are parsed, so malformed ones are still reported, but give no readings: they are progress
indications, not measurements.
"""

from __future__ import annotations

import string
import uuid as uuid_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from edge_agent.gatt import blood_pressure, health_thermometer, pulse_oximeter, weight_scale
from edge_agent.gatt.errors import ParseError
from edge_agent.readings import Reading

_BLUETOOTH_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def bluetooth_uuid(short: int) -> str:
    """The full 128-bit UUID, in bleak's form, of a 16- or 32-bit Bluetooth SIG assigned number."""
    if not 0 <= short <= 0xFFFFFFFF:
        raise ValueError(f"{short:#x} is not a 16- or 32-bit assigned number")
    return f"{short:08x}{_BLUETOOTH_BASE_SUFFIX}"


BLOOD_PRESSURE_SERVICE = bluetooth_uuid(0x1810)
PULSE_OXIMETER_SERVICE = bluetooth_uuid(0x1822)
WEIGHT_SCALE_SERVICE = bluetooth_uuid(0x181D)
HEALTH_THERMOMETER_SERVICE = bluetooth_uuid(0x1809)

BLOOD_PRESSURE_MEASUREMENT_UUID = bluetooth_uuid(0x2A35)
INTERMEDIATE_CUFF_PRESSURE_UUID = bluetooth_uuid(0x2A36)
PLX_SPOT_CHECK_MEASUREMENT_UUID = bluetooth_uuid(0x2A5E)
WEIGHT_MEASUREMENT_UUID = bluetooth_uuid(0x2A9D)
TEMPERATURE_MEASUREMENT_UUID = bluetooth_uuid(0x2A1C)
INTERMEDIATE_TEMPERATURE_UUID = bluetooth_uuid(0x2A1E)

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class CharacteristicSpec(Generic[M]):
    """How to read one characteristic: its parser and the mapping of its values to readings.

    ``name`` is the label parse errors carry, e.g. "0x2A35 Blood Pressure Measurement".
    """

    uuid: str
    name: str
    service_uuid: str
    parse: Callable[[bytes], M]
    to_readings: Callable[[M], list[Reading]]


def _no_readings(_measurement: object) -> list[Reading]:
    return []


CHARACTERISTICS: Mapping[str, CharacteristicSpec[Any]] = {
    spec.uuid: spec
    for spec in (
        CharacteristicSpec(
            BLOOD_PRESSURE_MEASUREMENT_UUID,
            blood_pressure.BLOOD_PRESSURE_MEASUREMENT,
            BLOOD_PRESSURE_SERVICE,
            blood_pressure.parse_blood_pressure_measurement,
            blood_pressure.to_readings,
        ),
        CharacteristicSpec(
            INTERMEDIATE_CUFF_PRESSURE_UUID,
            blood_pressure.INTERMEDIATE_CUFF_PRESSURE,
            BLOOD_PRESSURE_SERVICE,
            blood_pressure.parse_intermediate_cuff_pressure,
            _no_readings,
        ),
        CharacteristicSpec(
            PLX_SPOT_CHECK_MEASUREMENT_UUID,
            pulse_oximeter.PLX_SPOT_CHECK_MEASUREMENT,
            PULSE_OXIMETER_SERVICE,
            pulse_oximeter.parse_plx_spot_check_measurement,
            pulse_oximeter.to_readings,
        ),
        CharacteristicSpec(
            WEIGHT_MEASUREMENT_UUID,
            weight_scale.WEIGHT_MEASUREMENT,
            WEIGHT_SCALE_SERVICE,
            weight_scale.parse_weight_measurement,
            weight_scale.to_readings,
        ),
        CharacteristicSpec(
            TEMPERATURE_MEASUREMENT_UUID,
            health_thermometer.TEMPERATURE_MEASUREMENT,
            HEALTH_THERMOMETER_SERVICE,
            health_thermometer.parse_temperature_measurement,
            health_thermometer.to_readings,
        ),
        CharacteristicSpec(
            INTERMEDIATE_TEMPERATURE_UUID,
            health_thermometer.INTERMEDIATE_TEMPERATURE,
            HEALTH_THERMOMETER_SERVICE,
            health_thermometer.parse_intermediate_temperature,
            _no_readings,
        ),
    )
}
"""Every characteristic homewatch reads, keyed by full 128-bit UUID."""


def normalize_uuid(text: str) -> str:
    """Turn "2a35", "0x2A35", "00002A35" or a 128-bit spelling into "00002a35-0000-1000-8000-00805f9b34fb".

    ParseError (naming the text) if it is not a UUID.
    """
    cleaned = text.strip().lower()
    short = cleaned.removeprefix("0x")
    if len(short) in (4, 8) and all(c in string.hexdigits for c in short):
        return bluetooth_uuid(int(short, 16))
    try:
        return str(uuid_module.UUID(cleaned))
    except ValueError as exc:
        raise ParseError(
            repr(text), "not a Bluetooth UUID (expected e.g. '2a35', '0x2A35' or a 128-bit UUID)"
        ) from exc


def lookup(uuid: str) -> CharacteristicSpec[Any]:
    """The spec of a characteristic given in any form ``normalize_uuid`` accepts; ParseError if unknown."""
    normalized = normalize_uuid(uuid)
    spec = CHARACTERISTICS.get(normalized)
    if spec is None:
        raise ParseError(normalized, "no parser for this characteristic")
    return spec


def decode(uuid: str, data: bytes) -> list[Reading]:
    """Parse a value of characteristic ``uuid`` and map it to readings; ParseError if unknown or malformed."""
    spec = lookup(uuid)
    return spec.to_readings(spec.parse(data))
