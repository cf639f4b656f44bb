"""Properties every characteristic keeps, checked with hypothesis.

For every characteristic (and both sides of the Record Access Control Point, and the CGM values with and
without E2E-CRC): any value the dataclass can hold encodes and parses back to itself, precision
included; its readings use kinds, units and body sites of the terminology. For every registered
characteristic: arbitrary bytes, and valid values with bytes changed, cut or added, decode or raise
ParseError, never anything else.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.gatt import (
    CHARACTERISTICS,
    ParseError,
    battery,
    blood_pressure,
    body_composition,
    cgm,
    current_time,
    decode,
    device_information,
    glucose,
    glucose_context,
    health_thermometer,
    heart_rate,
    normalize_uuid,
    pulse_oximeter,
    racp,
    weight_scale,
)
from edge_agent.gatt.ieee11073 import SpecialValue
from fhir_contract.readings import Quantity, Reading
from fhir_contract.terminology import reading_types

# --- strategies for the field types -------------------------------------------------------------

SFLOATS: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(list(SpecialValue)),
    st.builds(lambda m, e: Decimal(f"{m}E{e}"), st.integers(-2045, 2045), st.integers(-8, 7)),
)
FLOATS: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(list(SpecialValue)),
    st.builds(lambda m, e: Decimal(f"{m}E{e}"), st.integers(-8388605, 8388605), st.integers(-128, 127)),
)
DATE_TIMES = st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).map(
    lambda d: d.replace(microsecond=0, fold=0)
)
UINT8 = st.integers(0, 0xFF)
UINT16 = st.integers(0, 0xFFFF)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def steps(step: str, highest: int = 0xFFFE) -> st.SearchStrategy[Decimal]:
    """A whole number of ``step`` that a uint16 field carries (0xFFFF is "unsuccessful" where it applies)."""
    return st.integers(0, highest).map(lambda raw: raw * Decimal(step))


def bits(flag: Any, mask: int) -> st.SearchStrategy[Any]:
    return st.integers(0, mask).map(flag)


# --- one strategy per characteristic --------------------------------------------------------------

BLOOD_PRESSURE = st.builds(
    blood_pressure.BloodPressureMeasurement,
    systolic=SFLOATS,
    diastolic=SFLOATS,
    mean_arterial_pressure=SFLOATS,
    unit=st.sampled_from(list(blood_pressure.PressureUnit)),
    time_stamp=maybe(DATE_TIMES),
    pulse_rate=maybe(SFLOATS),
    user_id=maybe(UINT8),
    status=maybe(st.builds(blood_pressure.BloodPressureStatus.from_bits, st.integers(0, 0x3F))),
)
PLX_SPOT_CHECK = st.builds(
    pulse_oximeter.PlxSpotCheckMeasurement,
    spo2=SFLOATS,
    pulse_rate=SFLOATS,
    time_stamp=maybe(DATE_TIMES),
    measurement_status=maybe(bits(pulse_oximeter.PlxMeasurementStatus, 0xFFFF).map(lambda s: s & 0xFFE0)),
    device_and_sensor_status=maybe(bits(pulse_oximeter.PlxDeviceAndSensorStatus, 0xFFFF)),
    pulse_amplitude_index=maybe(SFLOATS),
    device_clock_not_set=st.booleans(),
)
PAIRS = st.builds(pulse_oximeter.SpO2PulseRate, SFLOATS, SFLOATS)
PLX_CONTINUOUS = st.builds(
    pulse_oximeter.PlxContinuousMeasurement,
    normal=PAIRS,
    fast=maybe(PAIRS),
    slow=maybe(PAIRS),
    measurement_status=maybe(
        st.integers(0, 0xFFFF).map(lambda s: pulse_oximeter.PlxMeasurementStatus(s & 0xFFE0))
    ),
    device_and_sensor_status=maybe(bits(pulse_oximeter.PlxDeviceAndSensorStatus, 0xFFFF)),
    pulse_amplitude_index=maybe(SFLOATS),
)
PLX_FEATURES = st.builds(
    pulse_oximeter.PlxFeatures,
    features=st.integers(0, 0xFF).map(lambda f: pulse_oximeter.PlxFeature(f & 0xFC)),
    measurement_status_support=maybe(
        st.integers(0, 0xFFFF).map(lambda s: pulse_oximeter.PlxMeasurementStatus(s & 0xFFE0))
    ),
    device_and_sensor_status_support=maybe(bits(pulse_oximeter.PlxDeviceAndSensorStatus, 0xFFFF)),
)


def _weight(units: weight_scale.UnitSystem) -> st.SearchStrategy[Any]:
    imperial = units is weight_scale.UnitSystem.IMPERIAL

    def build(weight: Any, stamp: Any, user: Any, bmi_height: Any) -> weight_scale.WeightMeasurement:
        bmi, height = bmi_height or (None, None)
        return weight_scale.WeightMeasurement(weight, units, stamp, user, bmi, height)

    return st.builds(
        build,
        maybe(steps("0.01" if imperial else "0.005")),
        maybe(DATE_TIMES),
        maybe(UINT8),
        maybe(st.tuples(steps("0.1", 0xFFFF), steps("0.1" if imperial else "0.001", 0xFFFF))),
    )


WEIGHT = st.sampled_from(list(weight_scale.UnitSystem)).flatmap(_weight)


def _body_composition(units: weight_scale.UnitSystem) -> st.SearchStrategy[Any]:
    imperial = units is weight_scale.UnitSystem.IMPERIAL
    mass = steps("0.01" if imperial else "0.005", 0xFFFF)
    return st.builds(
        body_composition.BodyCompositionMeasurement,
        body_fat_percentage=maybe(steps("0.1")),
        units=st.just(units),
        time_stamp=maybe(DATE_TIMES),
        user_id=maybe(UINT8),
        basal_metabolism=maybe(UINT16),
        muscle_percentage=maybe(steps("0.1", 0xFFFF)),
        muscle_mass=maybe(mass),
        fat_free_mass=maybe(mass),
        soft_lean_mass=maybe(mass),
        body_water_mass=maybe(mass),
        impedance=maybe(steps("0.1", 0xFFFF)),
        weight=maybe(mass),
        height=maybe(steps("0.1" if imperial else "0.001", 0xFFFF)),
        multiple_packet=st.booleans(),
    )


BODY_COMPOSITION = st.sampled_from(list(weight_scale.UnitSystem)).flatmap(_body_composition)
TEMPERATURE = st.builds(
    health_thermometer.TemperatureMeasurement,
    temperature=FLOATS,
    unit=st.sampled_from(list(health_thermometer.TemperatureUnit)),
    time_stamp=maybe(DATE_TIMES),
    temperature_type=maybe(st.sampled_from(list(health_thermometer.TemperatureType))),
)
HEART_RATE = st.booleans().flatmap(
    lambda wide: st.builds(
        heart_rate.HeartRateMeasurement,
        heart_rate=UINT16 if wide else UINT8,
        sensor_contact=st.sampled_from(list(heart_rate.SensorContact)),
        energy_expended=maybe(UINT16),
        rr_intervals=st.lists(UINT16, max_size=9).map(tuple),
        uint16_format=st.just(wide),
    )
)


def _glucose(
    sequence: int, base: Any, offset: Any, sample: Any, unit: Any, status: Any, context: bool
) -> glucose.GlucoseMeasurement:
    concentration, glucose_type, location = sample or (None, None, None)
    return glucose.GlucoseMeasurement(
        sequence, base, offset, concentration, unit, glucose_type, location, status, context
    )


GLUCOSE = st.builds(
    _glucose,
    UINT16,
    maybe(DATE_TIMES),
    maybe(st.integers(-0x8000, 0x7FFF)),
    maybe(
        st.tuples(
            SFLOATS, st.sampled_from(list(glucose.GlucoseType)), st.sampled_from(list(glucose.SampleLocation))
        )
    ),
    st.sampled_from(list(glucose.GlucoseConcentrationUnit)),
    maybe(st.integers(0, 0xFFFF).map(lambda s: glucose.GlucoseSensorStatus(s & 0x0FFF))),
    st.booleans(),
)


def _glucose_context(
    sequence: int,
    extended: Any,
    carbs: Any,
    meal: Any,
    tester_health: Any,
    exercise: Any,
    medication: Any,
    hba1c: Any,
) -> glucose_context.GlucoseMeasurementContext:
    tester, health = tester_health or (None, None)
    return glucose_context.GlucoseMeasurementContext(
        sequence, extended, carbs, meal, tester, health, exercise, medication, hba1c
    )


GLUCOSE_CONTEXT = st.builds(
    _glucose_context,
    UINT16,
    maybe(UINT8),
    maybe(
        st.builds(
            glucose_context.Carbohydrate, st.sampled_from(list(glucose_context.CarbohydrateId)), SFLOATS
        )
    ),
    maybe(st.sampled_from(list(glucose_context.Meal))),
    maybe(
        st.tuples(
            st.sampled_from(list(glucose_context.Tester)), st.sampled_from(list(glucose_context.Health))
        )
    ),
    maybe(st.builds(glucose_context.Exercise, UINT16, UINT8)),
    maybe(
        st.builds(
            glucose_context.Medication,
            st.sampled_from(list(glucose_context.MedicationId)),
            SFLOATS,
            st.sampled_from(list(glucose_context.MedicationUnit)),
        )
    ),
    maybe(SFLOATS),
)
_OPERAND_COUNT = {
    racp.RacpOperator.LESS_THAN_OR_EQUAL: 1,
    racp.RacpOperator.GREATER_THAN_OR_EQUAL: 1,
    racp.RacpOperator.WITHIN_RANGE: 2,
}


def _racp_request(op: racp.RacpOpCode) -> st.SearchStrategy[racp.RacpRequest]:
    if op is racp.RacpOpCode.ABORT_OPERATION:
        return st.just(racp.RacpRequest(op, racp.RacpOperator.NULL))
    operators = [o for o in racp.RacpOperator if o is not racp.RacpOperator.NULL]
    return st.sampled_from(operators).flatmap(
        lambda operator: st.lists(
            UINT16, min_size=_OPERAND_COUNT.get(operator, 0), max_size=_OPERAND_COUNT.get(operator, 0)
        ).map(lambda numbers: racp.RacpRequest(op, operator, tuple(numbers)))
    )


RACP_REQUEST = st.sampled_from(
    [op for op in racp.RacpOpCode if op <= racp.RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS]
).flatmap(_racp_request)
RACP_RESPONSE = st.one_of(
    st.builds(racp.NumberOfStoredRecords, UINT16),
    st.builds(
        racp.RacpResponse,
        st.sampled_from(list(racp.RacpOpCode)) | st.integers(7, 0xFF),
        st.sampled_from(list(racp.RacpResponseCode)),
    ),
)
CGM_RECORD = st.builds(
    cgm.CgmMeasurement,
    glucose=SFLOATS,
    time_offset=UINT16,
    status=maybe(st.integers(0, 0x3F).map(cgm.CgmStatus)),
    cal_temp=maybe(st.integers(0, 0x3F).map(cgm.CgmCalTemp)),
    warning=maybe(bits(cgm.CgmWarning, 0xFF)),
    trend=maybe(SFLOATS),
    quality=maybe(SFLOATS),
)
CGM_FEATURES = st.builds(
    cgm.CgmFeatures,
    features=bits(cgm.CgmFeature, 0x1FFFF),
    glucose_type=st.sampled_from(list(glucose.GlucoseType)),
    sample_location=st.sampled_from(list(cgm.CgmSampleLocation)),
)
CGM_SESSION_START = st.builds(
    cgm.CgmSessionStartTime,
    start=maybe(DATE_TIMES),
    time_zone=maybe(st.integers(-48, 56)),
    dst_offset=st.sampled_from(list(cgm.DstOffset)),
)
STRINGS = st.text(st.characters(codec="utf-8")).map(lambda text: text.rstrip("\x00"))
SYSTEM_IDS = st.builds(
    device_information.SystemId, st.integers(0, (1 << 40) - 1), st.integers(0, (1 << 24) - 1)
)
CURRENT_TIMES = st.builds(
    current_time.CurrentTime,
    date_time=maybe(DATE_TIMES),
    day_of_week=st.sampled_from(list(current_time.DayOfWeek)),
    fractions256=UINT8,
    adjust_reason=st.integers(0, 0x0F).map(current_time.AdjustReason),
)


def _plain(encode: Callable[[Any], bytes], parse: Callable[[bytes], Any]) -> Callable[[Any], Any]:
    return lambda value: parse(encode(value))


def _with_crc(encode: Callable[..., bytes], parse: Callable[..., Any]) -> Callable[[Any], Any]:
    return lambda value_crc: parse(encode(value_crc[0], crc=value_crc[1]), crc=value_crc[1])


def _strings(parse: Callable[[bytes], str]) -> tuple[st.SearchStrategy[Any], Callable[[Any], Any], None]:
    return STRINGS, _plain(device_information.encode_utf8_string, parse), None


# name -> (strategy of values, value -> value parsed back, value -> readings or None)
ROUND_TRIPS: dict[
    str, tuple[st.SearchStrategy[Any], Callable[[Any], Any], Callable[[Any], list[Reading]] | None]
] = {
    "2a35": (
        BLOOD_PRESSURE,
        _plain(
            blood_pressure.encode_blood_pressure_measurement, blood_pressure.parse_blood_pressure_measurement
        ),
        blood_pressure.to_readings,
    ),
    "2a36": (
        BLOOD_PRESSURE,
        _plain(
            blood_pressure.encode_blood_pressure_measurement, blood_pressure.parse_intermediate_cuff_pressure
        ),
        None,
    ),
    "2a5e": (
        PLX_SPOT_CHECK,
        _plain(
            pulse_oximeter.encode_plx_spot_check_measurement, pulse_oximeter.parse_plx_spot_check_measurement
        ),
        pulse_oximeter.to_readings,
    ),
    "2a5f": (
        PLX_CONTINUOUS,
        _plain(
            pulse_oximeter.encode_plx_continuous_measurement, pulse_oximeter.parse_plx_continuous_measurement
        ),
        pulse_oximeter.to_readings,
    ),
    "2a60": (
        PLX_FEATURES,
        _plain(pulse_oximeter.encode_plx_features, pulse_oximeter.parse_plx_features),
        None,
    ),
    "2a9d": (
        WEIGHT,
        _plain(weight_scale.encode_weight_measurement, weight_scale.parse_weight_measurement),
        weight_scale.to_readings,
    ),
    "2a9c": (
        BODY_COMPOSITION,
        _plain(
            body_composition.encode_body_composition_measurement,
            body_composition.parse_body_composition_measurement,
        ),
        body_composition.to_readings,
    ),
    "2a1c": (
        TEMPERATURE,
        _plain(
            health_thermometer.encode_temperature_measurement,
            health_thermometer.parse_temperature_measurement,
        ),
        health_thermometer.to_readings,
    ),
    "2a1e": (
        TEMPERATURE,
        _plain(
            health_thermometer.encode_temperature_measurement,
            health_thermometer.parse_intermediate_temperature,
        ),
        None,
    ),
    "2a1d": (
        st.sampled_from(list(health_thermometer.TemperatureType)),
        _plain(health_thermometer.encode_temperature_type, health_thermometer.parse_temperature_type),
        None,
    ),
    "2a37": (
        HEART_RATE,
        _plain(heart_rate.encode_heart_rate_measurement, heart_rate.parse_heart_rate_measurement),
        heart_rate.to_readings,
    ),
    "2a38": (
        st.sampled_from(list(heart_rate.BodySensorLocation)),
        _plain(heart_rate.encode_body_sensor_location, heart_rate.parse_body_sensor_location),
        None,
    ),
    "2a18": (
        GLUCOSE,
        _plain(glucose.encode_glucose_measurement, glucose.parse_glucose_measurement),
        glucose.to_readings,
    ),
    "2a34": (
        GLUCOSE_CONTEXT,
        _plain(
            glucose_context.encode_glucose_measurement_context,
            glucose_context.parse_glucose_measurement_context,
        ),
        None,
    ),
    "2a51": (
        st.integers(0, 0x7FF).map(glucose.GlucoseFeature),
        _plain(glucose.encode_glucose_feature, glucose.parse_glucose_feature),
        None,
    ),
    "2a52": (RACP_RESPONSE, _plain(racp.encode_racp_response, racp.parse_racp_response), None),
    "2a52-request": (RACP_REQUEST, _plain(racp.encode_racp_request, racp.parse_racp_request), None),
    "2aa7": (
        st.tuples(st.lists(CGM_RECORD, min_size=1, max_size=4), st.booleans()),
        _with_crc(cgm.encode_cgm_measurements, cgm.parse_cgm_measurements),
        lambda records_crc: cgm.to_readings(records_crc[0]),
    ),
    "2aa8": (CGM_FEATURES, _plain(cgm.encode_cgm_feature, cgm.parse_cgm_feature), None),
    "2aaa": (
        st.tuples(CGM_SESSION_START, st.booleans()),
        _with_crc(cgm.encode_cgm_session_start_time, cgm.parse_cgm_session_start_time),
        None,
    ),
    "2a29": _strings(device_information.parse_manufacturer_name),
    "2a24": _strings(device_information.parse_model_number),
    "2a25": _strings(device_information.parse_serial_number),
    "2a27": _strings(device_information.parse_hardware_revision),
    "2a26": _strings(device_information.parse_firmware_revision),
    "2a28": _strings(device_information.parse_software_revision),
    "2a23": (
        SYSTEM_IDS,
        _plain(device_information.encode_system_id, device_information.parse_system_id),
        None,
    ),
    "2a19": (
        st.integers(0, 100),
        _plain(battery.encode_battery_level, battery.parse_battery_level),
        battery.to_readings,
    ),
    "2a2b": (CURRENT_TIMES, _plain(current_time.encode_current_time, current_time.parse_current_time), None),
}


def _original(name: str, example: Any) -> Any:
    return example[0] if name in ("2aa7", "2aaa") else example


def test_every_registered_characteristic_has_a_round_trip() -> None:
    assert {normalize_uuid(name.split("-")[0]) for name in ROUND_TRIPS} == set(CHARACTERISTICS)


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_encode_then_parse_gives_the_original(name: str, data: st.DataObject) -> None:
    strategy, round_trip, to_readings = ROUND_TRIPS[name]
    example = data.draw(strategy)
    parsed = round_trip(example)
    original = _original(name, example)
    assert parsed == original
    assert repr(parsed) == repr(original)  # precision and enum types kept, not only equal values
    if to_readings is not None:
        _check_readings(to_readings(example))


def _check_readings(readings: list[Reading]) -> None:
    types = reading_types()
    for reading in readings:
        rtype = types[reading.kind]
        if isinstance(reading.value, Quantity):
            assert reading.value.unit in rtype.units
            assert reading.value.value.is_finite()
        for component in reading.components:
            if isinstance(component.value, Quantity):
                assert component.value.unit in rtype.component(component.kind).units
        if reading.body_site is not None:
            rtype.site(reading.body_site)


FUZZ_PARSERS: dict[str, Callable[[bytes], Any]] = {
    **{uuid: functools.partial(decode, uuid) for uuid in CHARACTERISTICS},
    "2aa7 with E2E-CRC": lambda data: cgm.to_readings(cgm.parse_cgm_measurements(data, crc=True)),
    "2aaa with E2E-CRC": lambda data: cgm.parse_cgm_session_start_time(data, crc=True),
    "2a52 request": racp.parse_racp_request,
}


@pytest.mark.parametrize("name", sorted(FUZZ_PARSERS))
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=48))
def test_arbitrary_bytes_decode_or_raise_parse_error(name: str, data: bytes) -> None:
    with contextlib.suppress(ParseError):
        FUZZ_PARSERS[name](data)


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_valid_values_with_bytes_changed_cut_or_added_decode_or_raise_parse_error(
    name: str, data: st.DataObject
) -> None:
    strategy, _, _ = ROUND_TRIPS[name]
    example = data.draw(strategy)
    encoded = _encode(name, example)
    position = data.draw(st.integers(0, max(len(encoded) - 1, 0)))
    mutated = data.draw(
        st.sampled_from(
            [
                encoded[:position],  # cut
                encoded + data.draw(st.binary(min_size=1, max_size=4)),  # added
                encoded[:position] + data.draw(st.binary(min_size=1, max_size=1)) + encoded[position + 1 :],
            ]
        )
    )
    parse = (
        FUZZ_PARSERS.get(normalize_uuid(name.split("-")[0])) if "-" not in name else racp.parse_racp_request
    )
    assert parse is not None
    with contextlib.suppress(ParseError):
        parse(mutated)


def _encode(name: str, example: Any) -> bytes:
    """The bytes of a generated value (the round trip's first half)."""
    encoders: dict[str, Callable[[Any], bytes]] = {
        "2a35": blood_pressure.encode_blood_pressure_measurement,
        "2a36": blood_pressure.encode_blood_pressure_measurement,
        "2a5e": pulse_oximeter.encode_plx_spot_check_measurement,
        "2a5f": pulse_oximeter.encode_plx_continuous_measurement,
        "2a60": pulse_oximeter.encode_plx_features,
        "2a9d": weight_scale.encode_weight_measurement,
        "2a9c": body_composition.encode_body_composition_measurement,
        "2a1c": health_thermometer.encode_temperature_measurement,
        "2a1e": health_thermometer.encode_temperature_measurement,
        "2a1d": health_thermometer.encode_temperature_type,
        "2a37": heart_rate.encode_heart_rate_measurement,
        "2a38": heart_rate.encode_body_sensor_location,
        "2a18": glucose.encode_glucose_measurement,
        "2a34": glucose_context.encode_glucose_measurement_context,
        "2a51": glucose.encode_glucose_feature,
        "2a52": racp.encode_racp_response,
        "2a52-request": racp.encode_racp_request,
        "2aa7": lambda records_crc: cgm.encode_cgm_measurements(
            records_crc[0]
        ),  # the registry expects no CRC
        "2aa8": cgm.encode_cgm_feature,
        "2aaa": lambda start_crc: cgm.encode_cgm_session_start_time(start_crc[0]),
        "2a23": device_information.encode_system_id,
        "2a19": battery.encode_battery_level,
        "2a2b": current_time.encode_current_time,
    }
    return encoders.get(name, device_information.encode_utf8_string)(example)
