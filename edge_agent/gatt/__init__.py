"""Pure GATT parsers and encoders for the Bluetooth SIG health characteristics homewatch reads.

Bytes in, frozen dataclass out, no I/O: one module per service (``blood_pressure``, ``pulse_oximeter``,
``weight_scale``, ``health_thermometer``), each with ``parse_*``, ``encode_*`` (for emulated
peripherals) and ``to_readings``. ``ieee11073`` decodes the FLOAT/SFLOAT numbers, ``datetime_field``
the embedded Date Time, and ``registry`` maps a characteristic UUID to its parser so that the
Bluetooth adapters only call ``decode(uuid, data)``. Every parse failure is a ``ParseError``.
"""

from edge_agent.gatt.errors import ParseError
from edge_agent.gatt.ieee11073 import NumericValue, SpecialValue
from edge_agent.gatt.registry import (
    BLOOD_PRESSURE_SERVICE,
    CHARACTERISTICS,
    HEALTH_THERMOMETER_SERVICE,
    PULSE_OXIMETER_SERVICE,
    WEIGHT_SCALE_SERVICE,
    CharacteristicSpec,
    decode,
    lookup,
    normalize_uuid,
)

__all__ = [
    "BLOOD_PRESSURE_SERVICE",
    "CHARACTERISTICS",
    "HEALTH_THERMOMETER_SERVICE",
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
