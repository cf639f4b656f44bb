"""Glucose service (0x1808): Glucose Measurement 0x2A18 and Glucose Feature 0x2A51.

Glucose Measurement (GATT Specification Supplement, "Glucose Measurement"):

    flags                 uint8   bit 0 time offset, bit 1 concentration with type and sample location,
                                  bit 2 concentration in mol/L (else kg/L), bit 3 sensor status
                                  annunciation, bit 4 context information follows; bits 5-7 reserved
    sequence number       uint16  the record's number in the meter's store (RACP filters by it)
    base time             Date Time, 7 bytes
    time offset           sint16, minutes added to the base time   if bit 0
    concentration         SFLOAT, kg/L or mol/L                     if bit 1
    type, sample location uint8: type low nibble, location high nibble  if bit 1
    sensor status         uint16                                    if bit 3

Glucose Feature is one uint16 of feature bits. The Glucose Measurement Context (0x2A34) that follows a
measurement whose bit 4 is set is in ``glucose_context``; stored records are asked for through the
Record Access Control Point (``racp``).

Concentrations become mg/dL (kg/L x 100 000) or mmol/L (mol/L x 1000) by moving the decimal point, so
the device's significant digits are kept exactly (Decimal('0.00097') kg/L -> Decimal('97') mg/dL).
Reserved flag and status bits are ignored when parsing and written as zero; a reserved type or sample
location is a ParseError, since the reading's specimen would be unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum, IntEnum, IntFlag

from edge_agent.gatt._fields import (
    FieldReader,
    FieldWriter,
    check_exact_length,
    check_length,
    check_minimum_length,
    enum_value,
)
from edge_agent.gatt.datetime_field import DATE_TIME_LENGTH
from edge_agent.gatt.ieee11073 import NumericValue, SpecialValue
from fhir_contract.readings import Absent, Quantity, Reading, Value

GLUCOSE_MEASUREMENT = "0x2A18 Glucose Measurement"
GLUCOSE_FEATURE = "0x2A51 Glucose Feature"

_FLAG_TIME_OFFSET = 0x01
_FLAG_CONCENTRATION = 0x02
_FLAG_MOL_PER_L = 0x04
_FLAG_SENSOR_STATUS = 0x08
_FLAG_CONTEXT_FOLLOWS = 0x10

_MINIMUM_LENGTH = 3 + DATE_TIME_LENGTH  # flags (1) + sequence number (2) + base time (Date Time)

_SENSOR_STATUS_BITS = 0x0FFF
_FEATURE_BITS = 0x07FF

# kg/L -> mg/dL is x 10**5 (1 kg/L = 10**6 mg / 10 dL); mol/L -> mmol/L is x 10**3.
_MG_PER_DL_EXPONENT = 5
_MMOL_PER_L_EXPONENT = 3


class GlucoseConcentrationUnit(Enum):
    """Flags bit 2: the unit the concentration is sent in."""

    KG_PER_L = "kg/L"
    MOL_PER_L = "mol/L"


class GlucoseType(IntEnum):
    """The specimen (Type nibble); CGM Feature uses the same values."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10


class SampleLocation(IntEnum):
    """Where the sample was taken (Sample Location nibble)."""

    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


class GlucoseSensorStatus(IntFlag):
    """Sensor Status Annunciation (uint16); bits 12-15 are reserved."""

    DEVICE_BATTERY_LOW = 1 << 0
    SENSOR_MALFUNCTION = 1 << 1
    SAMPLE_SIZE_INSUFFICIENT = 1 << 2
    STRIP_INSERTION_ERROR = 1 << 3
    STRIP_TYPE_INCORRECT = 1 << 4
    RESULT_TOO_HIGH = 1 << 5  # higher than the device can process
    RESULT_TOO_LOW = 1 << 6  # lower than the device can process
    SENSOR_TEMPERATURE_TOO_HIGH = 1 << 7
    SENSOR_TEMPERATURE_TOO_LOW = 1 << 8
    STRIP_PULLED_TOO_SOON = 1 << 9
    GENERAL_DEVICE_FAULT = 1 << 10
    TIME_FAULT = 1 << 11


class GlucoseFeature(IntFlag):
    """Glucose Feature (uint16); bits 11-15 are reserved."""

    LOW_BATTERY_DETECTION = 1 << 0
    SENSOR_MALFUNCTION_DETECTION = 1 << 1
    SENSOR_SAMPLE_SIZE = 1 << 2
    STRIP_INSERTION_ERROR_DETECTION = 1 << 3
    STRIP_TYPE_ERROR_DETECTION = 1 << 4
    RESULT_HIGH_LOW_DETECTION = 1 << 5
    TEMPERATURE_HIGH_LOW_DETECTION = 1 << 6
    READ_INTERRUPT_DETECTION = 1 << 7
    GENERAL_DEVICE_FAULT = 1 << 8
    TIME_FAULT = 1 << 9
    MULTIPLE_BOND = 1 << 10


# The reading kind of each specimen (fhir/terminology.json). Interstitial fluid shares its codes with CGM
# readings (MDC 160212, LOINC 99504-3), so it shares the kind; control solution is a meter check, not a
# patient's glucose, and gives no reading.
_KIND_BY_TYPE: dict[GlucoseType, str] = {
    GlucoseType.CAPILLARY_WHOLE_BLOOD: "glucose-capillary-whole-blood",
    GlucoseType.CAPILLARY_PLASMA: "glucose-capillary-plasma",
    GlucoseType.VENOUS_WHOLE_BLOOD: "glucose-venous-whole-blood",
    GlucoseType.VENOUS_PLASMA: "glucose-venous-plasma",
    GlucoseType.ARTERIAL_WHOLE_BLOOD: "glucose-arterial-whole-blood",
    GlucoseType.ARTERIAL_PLASMA: "glucose-arterial-plasma",
    GlucoseType.UNDETERMINED_WHOLE_BLOOD: "glucose-undetermined-whole-blood",
    GlucoseType.UNDETERMINED_PLASMA: "glucose-undetermined-plasma",
    GlucoseType.INTERSTITIAL_FLUID: "cgm-glucose",
}

# Annunciations that mean the number is not a measurement of the sample.
_FAILED = (
    GlucoseSensorStatus.SENSOR_MALFUNCTION
    | GlucoseSensorStatus.SAMPLE_SIZE_INSUFFICIENT
    | GlucoseSensorStatus.STRIP_INSERTION_ERROR
    | GlucoseSensorStatus.STRIP_TYPE_INCORRECT
    | GlucoseSensorStatus.STRIP_PULLED_TOO_SOON
    | GlucoseSensorStatus.GENERAL_DEVICE_FAULT
)


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """One value of 0x2A18; None marks an optional field the device did not send.

    ``sequence_number`` identifies the record in the meter's store: the hub asks for "records after N"
    with it. ``concentration`` is in ``unit``, and travels with ``glucose_type`` and
    ``sample_location`` (one flag): give all three or none. ``time_offset`` is in minutes. A base time
    whose date is "not known" (zeros) parses to None.
    """

    sequence_number: int
    base_time: datetime | None
    time_offset: int | None = None
    concentration: NumericValue | None = None
    unit: GlucoseConcentrationUnit = GlucoseConcentrationUnit.KG_PER_L
    glucose_type: GlucoseType | None = None
    sample_location: SampleLocation | None = None
    sensor_status: GlucoseSensorStatus | None = None
    context_follows: bool = False

    def __post_init__(self) -> None:
        sent = (
            self.concentration is not None,
            self.glucose_type is not None,
            self.sample_location is not None,
        )
        if any(sent) and not all(sent):
            raise ValueError("concentration, type and sample location share one flag: give all or none")

    @property
    def device_time(self) -> datetime | None:
        """When the sample was measured by the meter's clock: base time plus time offset."""
        if self.base_time is None:
            return None
        return self.base_time + timedelta(minutes=self.time_offset or 0)


def parse_glucose_measurement(data: bytes) -> GlucoseMeasurement:
    """Parse a Glucose Measurement (0x2A18) value; ParseError if the bytes are not one."""
    characteristic = GLUCOSE_MEASUREMENT
    check_minimum_length(data, characteristic, _MINIMUM_LENGTH, "flags, sequence number and base time")
    reader = FieldReader(data, characteristic)
    flags = reader.uint8()  # Flags
    time_offset_present = bool(flags & _FLAG_TIME_OFFSET)
    concentration_present = bool(flags & _FLAG_CONCENTRATION)
    mol_per_l = bool(flags & _FLAG_MOL_PER_L)
    sensor_status_present = bool(flags & _FLAG_SENSOR_STATUS)
    context_follows = bool(flags & _FLAG_CONTEXT_FOLLOWS)

    required = (
        _MINIMUM_LENGTH
        + (2 if time_offset_present else 0)
        + (3 if concentration_present else 0)
        + (2 if sensor_status_present else 0)
    )
    optional = (
        (time_offset_present, "a time offset"),
        (concentration_present, "a concentration with type and sample location"),
        (sensor_status_present, "a sensor status annunciation"),
    )
    check_length(data, characteristic, required, optional)

    sequence_number = reader.uint16()  # Sequence Number, uint16
    base_time = reader.date_time()  # Base Time, Date Time
    time_offset = reader.sint16() if time_offset_present else None  # Time Offset, sint16, minutes
    concentration = reader.sfloat() if concentration_present else None  # Glucose Concentration, SFLOAT
    type_and_location = reader.uint8() if concentration_present else None  # Type-Sample Location, uint8
    status_bits = reader.uint16() if sensor_status_present else None  # Sensor Status Annunciation, uint16
    glucose_type = sample_location = None
    if type_and_location is not None:
        glucose_type = enum_value(GlucoseType, type_and_location & 0x0F, characteristic, "glucose type")
        sample_location = enum_value(
            SampleLocation, type_and_location >> 4, characteristic, "sample location"
        )
    return GlucoseMeasurement(
        sequence_number=sequence_number,
        base_time=base_time,
        time_offset=time_offset,
        concentration=concentration,
        unit=GlucoseConcentrationUnit.MOL_PER_L if mol_per_l else GlucoseConcentrationUnit.KG_PER_L,
        glucose_type=glucose_type,
        sample_location=sample_location,
        sensor_status=None if status_bits is None else GlucoseSensorStatus(status_bits & _SENSOR_STATUS_BITS),
        context_follows=context_follows,
    )


def encode_glucose_measurement(measurement: GlucoseMeasurement) -> bytes:
    """Encode a measurement as a 0x2A18 value; ValueError if a field cannot carry its value."""
    m = measurement
    flags = (
        (_FLAG_TIME_OFFSET if m.time_offset is not None else 0)
        | (_FLAG_CONCENTRATION if m.concentration is not None else 0)
        | (_FLAG_MOL_PER_L if m.unit is GlucoseConcentrationUnit.MOL_PER_L else 0)
        | (_FLAG_SENSOR_STATUS if m.sensor_status is not None else 0)
        | (_FLAG_CONTEXT_FOLLOWS if m.context_follows else 0)
    )
    writer = FieldWriter()
    writer.uint8(flags, "flags")
    writer.uint16(m.sequence_number, "sequence number")
    writer.date_time(m.base_time)
    if m.time_offset is not None:
        writer.sint16(m.time_offset, "time offset")
    if m.concentration is not None and m.glucose_type is not None and m.sample_location is not None:
        writer.sfloat(m.concentration)
        writer.uint8(int(m.glucose_type) | int(m.sample_location) << 4, "type and sample location")
    if m.sensor_status is not None:
        writer.uint16(int(m.sensor_status) & _SENSOR_STATUS_BITS, "sensor status annunciation")
    return writer.to_bytes()


def glucose_value(concentration: NumericValue, unit: GlucoseConcentrationUnit) -> Value:
    """A concentration in mg/dL (from kg/L) or mmol/L (from mol/L), digits kept; Absent if special."""
    if isinstance(concentration, SpecialValue):
        return Absent(concentration.absent_reason)
    if unit is GlucoseConcentrationUnit.KG_PER_L:
        return Quantity(concentration.scaleb(_MG_PER_DL_EXPONENT), "mg/dL")
    return Quantity(concentration.scaleb(_MMOL_PER_L_EXPONENT), "mmol/L")


def to_readings(measurement: GlucoseMeasurement) -> list[Reading]:
    """One glucose reading whose kind names the specimen ("glucose-capillary-whole-blood", ...), in
    mg/dL or mmol/L, dated ``device_time``; no reading without a concentration or for control solution.

    Annunciations that the sample was not measured (malfunction, too small a sample, strip errors, a
    strip pulled too soon, device fault) make the value Absent("error"); a result beyond what the meter
    can process is Absent("positive-infinity") or Absent("negative-infinity"), as meters that send the
    SFLOAT infinities say. A time fault makes ``device_time`` None: the meter's clock is not to be trusted.
    """
    m = measurement
    if m.concentration is None or m.glucose_type is None:
        return []
    if m.glucose_type is GlucoseType.CONTROL_SOLUTION or m.sample_location is SampleLocation.CONTROL_SOLUTION:
        return []
    status = m.sensor_status or GlucoseSensorStatus(0)
    value: Value
    if status & _FAILED:
        value = Absent("error")
    elif GlucoseSensorStatus.RESULT_TOO_HIGH in status:
        value = Absent("positive-infinity")
    elif GlucoseSensorStatus.RESULT_TOO_LOW in status:
        value = Absent("negative-infinity")
    else:
        value = glucose_value(m.concentration, m.unit)
    device_time = None if GlucoseSensorStatus.TIME_FAULT in status else m.device_time
    return [Reading(kind=_KIND_BY_TYPE[m.glucose_type], value=value, device_time=device_time)]


def parse_glucose_feature(data: bytes) -> GlucoseFeature:
    """Parse a Glucose Feature (0x2A51) value; ParseError unless it is two bytes."""
    characteristic = GLUCOSE_FEATURE
    check_exact_length(data, characteristic, 2, "glucose feature")
    reader = FieldReader(data, characteristic)
    return GlucoseFeature(reader.uint16() & _FEATURE_BITS)  # Glucose Feature, uint16


def encode_glucose_feature(features: GlucoseFeature) -> bytes:
    """Encode features as a 0x2A51 value."""
    writer = FieldWriter()
    writer.uint16(int(features) & _FEATURE_BITS, "glucose feature")
    return writer.to_bytes()
