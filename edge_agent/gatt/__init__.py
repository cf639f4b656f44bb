"""Pure GATT parsers and encoders for the Bluetooth SIG health characteristics homewatch reads.

Bytes in, frozen dataclass out, no I/O: one module per service (``blood_pressure``, ``pulse_oximeter``,
``weight_scale``, ``body_composition``, ``health_thermometer``, ``heart_rate``, ``glucose`` with
``glucose_context``, ``cgm``, ``device_information``, ``battery``, ``current_time``) and one for the
Record Access Control Point that glucose meters and CGMs share (``racp``), each with ``parse_*``,
``encode_*`` (for emulated peripherals) and, where the values are measurements, ``to_readings``.
``ieee11073`` decodes the FLOAT/SFLOAT numbers, ``datetime_field`` the embedded Date Time, and
``registry`` maps a characteristic UUID to its parser so that the Bluetooth adapters only call
``decode(uuid, data)``. Every parse failure is a ``ParseError``.
"""

from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.ieee11073 import NumericValue, SpecialValue
from edge_agent.gatt.registry import (
    BATTERY_SERVICE,
    BLOOD_PRESSURE_SERVICE,
    BODY_COMPOSITION_SERVICE,
    CGM_SERVICE,
    CHARACTERISTICS,
    CURRENT_TIME_SERVICE,
    DEVICE_INFORMATION_SERVICE,
    GLUCOSE_SERVICE,
    HEALTH_THERMOMETER_SERVICE,
    HEART_RATE_SERVICE,
    PULSE_OXIMETER_SERVICE,
    WEIGHT_SCALE_SERVICE,
    CharacteristicSpec,
    decode,
    lookup,
    normalize_uuid,
)

__all__ = [
    "BATTERY_SERVICE",
    "BLOOD_PRESSURE_SERVICE",
    "BODY_COMPOSITION_SERVICE",
    "CGM_SERVICE",
    "CHARACTERISTICS",
    "CURRENT_TIME_SERVICE",
    "DEVICE_INFORMATION_SERVICE",
    "GLUCOSE_SERVICE",
    "HEALTH_THERMOMETER_SERVICE",
    "HEART_RATE_SERVICE",
    "PULSE_OXIMETER_SERVICE",
    "WEIGHT_SCALE_SERVICE",
    "CharacteristicSpec",
    "NumericValue",
    "ParseError",
    "SpecialValue",
    "decode",
    "lookup",
    "normalize_uuid",
]
