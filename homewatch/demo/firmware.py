"""What the demo's emulated devices send: a SYNTHETIC reading encoded as its Bluetooth SIG bytes.

The same encoders that the parser tests round-trip (``edge_agent.gatt``) write the bytes, and the
emulated peripheral sends them over real ATT/GATT, so the hub parses exactly what a real device sends.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from edge_agent.config import DeviceKind
from edge_agent.gatt.blood_pressure import BloodPressureMeasurement, encode_blood_pressure_measurement
from edge_agent.gatt.health_thermometer import (
    TemperatureMeasurement,
    TemperatureType,
    encode_temperature_measurement,
)
from edge_agent.gatt.pulse_oximeter import PlxSpotCheckMeasurement, encode_plx_spot_check_measurement
from edge_agent.gatt.weight_scale import WeightMeasurement, encode_weight_measurement
from models.cohort.profiles import MeasurementKind
from models.cohort.synthetic import Reading

#: Which device takes which kind of synthetic measurement.
DEVICE_FOR: dict[MeasurementKind, DeviceKind] = {
    "blood-pressure": "blood-pressure-cuff",
    "spo2": "pulse-oximeter",
    "body-weight": "scale",
    "body-temperature": "thermometer",
}

# An oximeter that loses the finger reports 127 % on some models: a glitch never to be scored as a number.
ARTEFACT_SPO2 = Decimal(127)


def _whole(value: float | None) -> Decimal:
    assert value is not None
    return Decimal(round(value))


def _tenth(value: float | None) -> Decimal:
    assert value is not None
    return Decimal(str(round(value, 1)))


def _weight(value: float | None) -> Decimal:
    # The SI weight field counts 5 g steps.
    assert value is not None
    return Decimal(round(value / 0.005)) * Decimal("0.005")


def measurement_bytes(reading: Reading, device_time: datetime, *, artefact: bool = False) -> bytes:
    """The measurement characteristic value for ``reading``, stamped with the device's own clock."""
    stamp = device_time.replace(microsecond=0, tzinfo=None)
    if reading.kind == "blood-pressure":
        systolic, diastolic = _whole(reading.systolic), _whole(reading.diastolic)
        mean = (systolic + 2 * diastolic) / 3
        return encode_blood_pressure_measurement(
            BloodPressureMeasurement(
                systolic=systolic,
                diastolic=diastolic,
                mean_arterial_pressure=Decimal(round(mean)),
                time_stamp=stamp,
                pulse_rate=_whole(reading.pulse),
            )
        )
    if reading.kind == "spo2":
        return encode_plx_spot_check_measurement(
            PlxSpotCheckMeasurement(
                spo2=ARTEFACT_SPO2 if artefact else _whole(reading.spo2),
                pulse_rate=_whole(reading.pulse),
                time_stamp=stamp,
            )
        )
    if reading.kind == "body-weight":
        return encode_weight_measurement(WeightMeasurement(weight=_weight(reading.weight), time_stamp=stamp))
    if reading.kind == "body-temperature":
        return encode_temperature_measurement(
            TemperatureMeasurement(
                temperature=_tenth(reading.temperature),
                time_stamp=stamp,
                temperature_type=TemperatureType.TYMPANUM,
            )
        )
    raise ValueError(f"no emulated device takes {reading.kind!r}")
