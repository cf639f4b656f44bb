"""Which parser handles which characteristic: UUIDs in, device-neutral readings out.

The ``ble`` adapters receive ``(uuid, bytes)`` from bleak or Bumble and call ``decode``; nothing else
in the hub needs to know which module parses what. UUIDs are compared in bleak's form, the full
128-bit lower-case string ("00002a35-0000-1000-8000-00805f9b34fb"); ``normalize_uuid`` turns the short
forms into it. Intermediate values (0x2A36 cuff pressure while inflating, 0x2A1E temperature while
measuring) are parsed, so malformed ones are still reported, but give no readings: they are progress
indications, not measurements. The same holds for the values that describe a device or a procedure
rather than the patient (features, sensor locations, device information, current time, CGM session
start, glucose context, Record Access Control Point responses): ``decode`` validates them and returns [].

``decode`` knows no per-connection state: a CGM whose Feature announces an E2E-CRC, a CGM reading to be
dated from its session start, a thermometer whose site comes from 0x2A1D, all need the service module
called directly with that state (``cgm.parse_cgm_measurements(data, crc=True)``,
``cgm.to_readings(records, session_start)``, ``health_thermometer.to_readings(m, site)``).
"""

from __future__ import annotations

import string
import uuid as uuid_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from edge_agent.gatt import (
    battery,
    blood_pressure,
    body_composition,
    cgm,
    current_time,
    device_information,
    glucose,
    glucose_context,
    health_thermometer,
    heart_rate,
    pulse_oximeter,
    racp,
    weight_scale,
)
from edge_agent.gatt.errors import ParseError
from fhir_contract.readings import Reading

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
HEART_RATE_SERVICE = bluetooth_uuid(0x180D)
BODY_COMPOSITION_SERVICE = bluetooth_uuid(0x181B)
GLUCOSE_SERVICE = bluetooth_uuid(0x1808)
CGM_SERVICE = bluetooth_uuid(0x181F)
DEVICE_INFORMATION_SERVICE = bluetooth_uuid(0x180A)
BATTERY_SERVICE = bluetooth_uuid(0x180F)
CURRENT_TIME_SERVICE = bluetooth_uuid(0x1805)

BLOOD_PRESSURE_MEASUREMENT_UUID = bluetooth_uuid(0x2A35)
INTERMEDIATE_CUFF_PRESSURE_UUID = bluetooth_uuid(0x2A36)
PLX_SPOT_CHECK_MEASUREMENT_UUID = bluetooth_uuid(0x2A5E)
WEIGHT_MEASUREMENT_UUID = bluetooth_uuid(0x2A9D)
TEMPERATURE_MEASUREMENT_UUID = bluetooth_uuid(0x2A1C)
INTERMEDIATE_TEMPERATURE_UUID = bluetooth_uuid(0x2A1E)
TEMPERATURE_TYPE_UUID = bluetooth_uuid(0x2A1D)
PLX_CONTINUOUS_MEASUREMENT_UUID = bluetooth_uuid(0x2A5F)
PLX_FEATURES_UUID = bluetooth_uuid(0x2A60)
HEART_RATE_MEASUREMENT_UUID = bluetooth_uuid(0x2A37)
BODY_SENSOR_LOCATION_UUID = bluetooth_uuid(0x2A38)
BODY_COMPOSITION_MEASUREMENT_UUID = bluetooth_uuid(0x2A9C)
GLUCOSE_MEASUREMENT_UUID = bluetooth_uuid(0x2A18)
GLUCOSE_MEASUREMENT_CONTEXT_UUID = bluetooth_uuid(0x2A34)
GLUCOSE_FEATURE_UUID = bluetooth_uuid(0x2A51)
RECORD_ACCESS_CONTROL_POINT_UUID = bluetooth_uuid(0x2A52)
CGM_MEASUREMENT_UUID = bluetooth_uuid(0x2AA7)
CGM_FEATURE_UUID = bluetooth_uuid(0x2AA8)
CGM_SESSION_START_TIME_UUID = bluetooth_uuid(0x2AAA)
MANUFACTURER_NAME_UUID = bluetooth_uuid(0x2A29)
MODEL_NUMBER_UUID = bluetooth_uuid(0x2A24)
SERIAL_NUMBER_UUID = bluetooth_uuid(0x2A25)
HARDWARE_REVISION_UUID = bluetooth_uuid(0x2A27)
FIRMWARE_REVISION_UUID = bluetooth_uuid(0x2A26)
SOFTWARE_REVISION_UUID = bluetooth_uuid(0x2A28)
SYSTEM_ID_UUID = bluetooth_uuid(0x2A23)
BATTERY_LEVEL_UUID = bluetooth_uuid(0x2A19)
CURRENT_TIME_UUID = bluetooth_uuid(0x2A2B)

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class CharacteristicSpec(Generic[M]):
    """How to read one characteristic: its parser and the mapping of its values to readings.

    ``name`` is the label parse errors carry, e.g. "0x2A35 Blood Pressure Measurement". A
    characteristic found in several services (Record Access Control Point: Glucose and CGM) has the
    first of them as ``service_uuid``.
    """

    uuid: str
    name: str
    service_uuid: str
    parse: Callable[[bytes], M]
    to_readings: Callable[[M], list[Reading]]


def _no_readings(_measurement: object) -> list[Reading]:
    return []


_SPECS: tuple[CharacteristicSpec[Any], ...] = (
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
    CharacteristicSpec(
        TEMPERATURE_TYPE_UUID,
        health_thermometer.TEMPERATURE_TYPE,
        HEALTH_THERMOMETER_SERVICE,
        health_thermometer.parse_temperature_type,
        _no_readings,
    ),
    CharacteristicSpec(
        PLX_CONTINUOUS_MEASUREMENT_UUID,
        pulse_oximeter.PLX_CONTINUOUS_MEASUREMENT,
        PULSE_OXIMETER_SERVICE,
        pulse_oximeter.parse_plx_continuous_measurement,
        pulse_oximeter.to_readings,
    ),
    CharacteristicSpec(
        PLX_FEATURES_UUID,
        pulse_oximeter.PLX_FEATURES,
        PULSE_OXIMETER_SERVICE,
        pulse_oximeter.parse_plx_features,
        _no_readings,
    ),
    CharacteristicSpec(
        HEART_RATE_MEASUREMENT_UUID,
        heart_rate.HEART_RATE_MEASUREMENT,
        HEART_RATE_SERVICE,
        heart_rate.parse_heart_rate_measurement,
        heart_rate.to_readings,
    ),
    CharacteristicSpec(
        BODY_SENSOR_LOCATION_UUID,
        heart_rate.BODY_SENSOR_LOCATION,
        HEART_RATE_SERVICE,
        heart_rate.parse_body_sensor_location,
        _no_readings,
    ),
    CharacteristicSpec(
        BODY_COMPOSITION_MEASUREMENT_UUID,
        body_composition.BODY_COMPOSITION_MEASUREMENT,
        BODY_COMPOSITION_SERVICE,
        body_composition.parse_body_composition_measurement,
        body_composition.to_readings,
    ),
    CharacteristicSpec(
        GLUCOSE_MEASUREMENT_UUID,
        glucose.GLUCOSE_MEASUREMENT,
        GLUCOSE_SERVICE,
        glucose.parse_glucose_measurement,
        glucose.to_readings,
    ),
    CharacteristicSpec(
        GLUCOSE_MEASUREMENT_CONTEXT_UUID,
        glucose_context.GLUCOSE_MEASUREMENT_CONTEXT,
        GLUCOSE_SERVICE,
        glucose_context.parse_glucose_measurement_context,
        _no_readings,
    ),
    CharacteristicSpec(
        GLUCOSE_FEATURE_UUID,
        glucose.GLUCOSE_FEATURE,
        GLUCOSE_SERVICE,
        glucose.parse_glucose_feature,
        _no_readings,
    ),
    CharacteristicSpec(
        RECORD_ACCESS_CONTROL_POINT_UUID,
        racp.RECORD_ACCESS_CONTROL_POINT,
        GLUCOSE_SERVICE,
        racp.parse_racp_response,
        _no_readings,
    ),
    CharacteristicSpec(
        CGM_MEASUREMENT_UUID,
        cgm.CGM_MEASUREMENT,
        CGM_SERVICE,
        cgm.parse_cgm_measurements,
        cgm.to_readings,
    ),
    CharacteristicSpec(
        CGM_FEATURE_UUID,
        cgm.CGM_FEATURE,
        CGM_SERVICE,
        cgm.parse_cgm_feature,
        _no_readings,
    ),
    CharacteristicSpec(
        CGM_SESSION_START_TIME_UUID,
        cgm.CGM_SESSION_START_TIME,
        CGM_SERVICE,
        cgm.parse_cgm_session_start_time,
        _no_readings,
    ),
    *(
        CharacteristicSpec(uuid, name, DEVICE_INFORMATION_SERVICE, parse, _no_readings)
        for uuid, name, parse in (
            (
                MANUFACTURER_NAME_UUID,
                device_information.MANUFACTURER_NAME,
                device_information.parse_manufacturer_name,
            ),
            (MODEL_NUMBER_UUID, device_information.MODEL_NUMBER, device_information.parse_model_number),
            (
                SERIAL_NUMBER_UUID,
                device_information.SERIAL_NUMBER,
                device_information.parse_serial_number,
            ),
            (
                HARDWARE_REVISION_UUID,
                device_information.HARDWARE_REVISION,
                device_information.parse_hardware_revision,
            ),
            (
                FIRMWARE_REVISION_UUID,
                device_information.FIRMWARE_REVISION,
                device_information.parse_firmware_revision,
            ),
            (
                SOFTWARE_REVISION_UUID,
                device_information.SOFTWARE_REVISION,
                device_information.parse_software_revision,
            ),
        )
    ),
    CharacteristicSpec(
        SYSTEM_ID_UUID,
        device_information.SYSTEM_ID,
        DEVICE_INFORMATION_SERVICE,
        device_information.parse_system_id,
        _no_readings,
    ),
    CharacteristicSpec(
        BATTERY_LEVEL_UUID,
        battery.BATTERY_LEVEL,
        BATTERY_SERVICE,
        battery.parse_battery_level,
        battery.to_readings,
    ),
    CharacteristicSpec(
        CURRENT_TIME_UUID,
        current_time.CURRENT_TIME,
        CURRENT_TIME_SERVICE,
        current_time.parse_current_time,
        _no_readings,
    ),
)

CHARACTERISTICS: Mapping[str, CharacteristicSpec[Any]] = {spec.uuid: spec for spec in _SPECS}
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
    # bleak and Bumble hand over the 128-bit form already: look it up before normalising (hot path).
    spec = CHARACTERISTICS.get(uuid) or lookup(uuid)
    return spec.to_readings(spec.parse(data))
