"""A number outside the contract's plausible range never leaves the hub as a value.

``fhir_contract.observation`` replaces it by ``dataAbsentReason`` ``error`` with the device's number in
the reason's text, for every reading type and panel component, in every unit the contract allows
(compared in the canonical unit, as the gateway compares it), and the Observation still passes the
gateway's ``validate_observation``. The cases start from the device's bytes where a parser makes them.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.gatt import blood_pressure, health_thermometer
from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from fhir_contract.terminology import DATA_ABSENT_REASON, reading_types
from fhir_contract.units import to_canonical
from fhir_contract.validate import ContractViolation, ValidObservation, validate_observation

WHEN = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)
NOW = WHEN + timedelta(minutes=1)  # the gateway's clock: fixed, so the tests do not age

FLOAT_MANTISSA = 8388605  # the largest numeric FLOAT mantissa (ieee11073)
SFLOAT_MANTISSA = 2045


def _obs(reading: Reading) -> dict[str, Any]:
    return build_observation(reading, patient_id="p-1", device_id="dev-1", hub_id="hub-1", effective=WHEN)


def _validate(obs: dict[str, Any]) -> ValidObservation:
    return validate_observation(obs, now=NOW)


def _float_word(mantissa: int, exponent: int) -> bytes:
    """A FLOAT field as sent: 24-bit two's-complement mantissa, 8-bit exponent, little-endian."""
    return ((exponent & 0xFF) << 24 | (mantissa & 0xFFFFFF)).to_bytes(4, "little")


def _sfloat_word(mantissa: int, exponent: int) -> bytes:
    """An SFLOAT field as sent: 12-bit two's-complement mantissa, 4-bit exponent, little-endian."""
    return ((exponent & 0xF) << 12 | (mantissa & 0xFFF)).to_bytes(2, "little")


def _in_range(quantity: dict[str, Any], bounds: tuple[float, float]) -> bool:
    canonical, _unit = to_canonical(float(quantity["value"]), quantity["code"])
    return bounds[0] <= canonical <= bounds[1]


def _absent_for_error(element: dict[str, Any]) -> bool:
    coding: list[dict[str, str]] = element["dataAbsentReason"]["coding"]
    return coding == [{"system": DATA_ABSENT_REASON, "code": "error"}]


def test_thermometer_float_minus_1e127_leaves_the_hub_as_error_with_the_number_as_text() -> None:
    data = b"\x00" + _float_word(-1, 127)  # flags: Celsius, nothing optional; FLOAT mantissa -1, exponent 127
    assert data == bytes.fromhex("00ffffff7f")
    measurement = health_thermometer.parse_temperature_measurement(data)
    assert measurement.temperature == Decimal("-1E+127")
    [reading] = health_thermometer.to_readings(measurement)

    obs = _obs(reading)

    assert "valueQuantity" not in obs
    assert _absent_for_error(obs)
    assert obs["dataAbsentReason"]["text"] == (
        "the device sent -1E+127 Cel, outside the possible range 25-45 Cel"
    )
    assert obs["status"] == "final"
    valid = _validate(obs)  # stored by the gateway, not quarantined
    assert (valid.kind, valid.value) == ("body-temperature", None)


def test_a_plausible_temperature_is_still_sent_as_its_value() -> None:
    data = b"\x00" + _float_word(366, -1)  # 36.6 Cel
    [reading] = health_thermometer.to_readings(health_thermometer.parse_temperature_measurement(data))
    obs = _obs(reading)
    assert obs["valueQuantity"]["value"] == 36.6 and "dataAbsentReason" not in obs
    assert _validate(obs).value == 36.6


@pytest.mark.parametrize(
    ("tenths_of_degf", "sent"),
    [
        (1100, True),  # 110.0 [degF] = 43.3 Cel: within 25-45 Cel, though above 45 as a number
        (1200, False),  # 120.0 [degF] = 48.9 Cel
        (500, False),  # 50.0 [degF] = 10 Cel, though within 25-45 as a number
    ],
)
def test_a_fahrenheit_temperature_is_judged_in_celsius(tenths_of_degf: int, sent: bool) -> None:
    data = b"\x01" + _float_word(tenths_of_degf, -1)  # flags: Fahrenheit
    [reading] = health_thermometer.to_readings(health_thermometer.parse_temperature_measurement(data))
    obs = _obs(reading)
    assert ("valueQuantity" in obs) is sent
    assert ("dataAbsentReason" in obs) is not sent
    _validate(obs)


def test_an_impossible_blood_pressure_component_alone_becomes_error() -> None:
    data = b"".join(
        [
            b"\x00",  # flags: mmHg, nothing optional
            _sfloat_word(400, 0),  # systolic: 400 mmHg (possible: 20-300)
            _sfloat_word(81, 0),  # diastolic: 81
            _sfloat_word(91, 0),  # mean arterial pressure: 91
        ]
    )
    [reading] = blood_pressure.to_readings(blood_pressure.parse_blood_pressure_measurement(data))

    obs = _obs(reading)

    systolic, diastolic, mean = obs["component"]
    assert "valueQuantity" not in systolic and _absent_for_error(systolic)
    assert systolic["dataAbsentReason"]["text"] == (
        "the device sent 400 mm[Hg], outside the possible range 20-300 mm[Hg]"
    )
    assert (diastolic["valueQuantity"]["value"], mean["valueQuantity"]["value"]) == (81, 91)
    assert _validate(obs).components == {"systolic": None, "diastolic": 81.0, "mean": 91.0}


def test_an_impossible_kpa_cuff_pressure_becomes_error_after_conversion() -> None:
    data = b"".join(
        [
            b"\x01",  # flags: kPa
            _sfloat_word(600, -1),  # systolic: 60.0 kPa = 450.0 mmHg
            _sfloat_word(107, -1),  # diastolic: 10.7 kPa = 80.3 mmHg
            _sfloat_word(121, -1),  # mean arterial pressure: 12.1 kPa = 90.8 mmHg
        ]
    )
    [reading] = blood_pressure.to_readings(blood_pressure.parse_blood_pressure_measurement(data))
    obs = _obs(reading)
    assert [("valueQuantity" in part) for part in obs["component"]] == [False, True, True]
    assert "450.0 mm[Hg]" in obs["component"][0]["dataAbsentReason"]["text"]
    _validate(obs)


@given(
    fahrenheit=st.booleans(),
    mantissa=st.integers(-FLOAT_MANTISSA, FLOAT_MANTISSA),
    exponent=st.one_of(st.integers(-128, 127), st.integers(-3, 1)),  # the second: plausible magnitudes
)
def test_no_parsed_temperature_outside_the_range_leaves_as_a_value(
    fahrenheit: bool, mantissa: int, exponent: int
) -> None:
    data = bytes((int(fahrenheit),)) + _float_word(mantissa, exponent)
    [reading] = health_thermometer.to_readings(health_thermometer.parse_temperature_measurement(data))
    obs = _obs(reading)
    bounds = reading_types()["body-temperature"].range
    assert bounds is not None
    if "valueQuantity" in obs:
        assert _in_range(obs["valueQuantity"], bounds)
    else:
        assert _absent_for_error(obs)
    _validate(obs)


@given(
    kpa=st.booleans(),
    words=st.lists(
        st.tuples(st.integers(-SFLOAT_MANTISSA, SFLOAT_MANTISSA), st.integers(-8, 7)), min_size=4, max_size=4
    ),
)
def test_no_parsed_cuff_value_outside_the_range_leaves_as_a_value(
    kpa: bool, words: list[tuple[int, int]]
) -> None:
    # flags: kPa or mmHg, pulse rate present; then systolic, diastolic, mean and pulse rate (SFLOAT)
    data = bytes((int(kpa) | 0x04,)) + b"".join(_sfloat_word(m, e) for m, e in words)
    panel, pulse = blood_pressure.to_readings(blood_pressure.parse_blood_pressure_measurement(data))
    rtype = reading_types()["blood-pressure"]
    obs = _obs(panel)
    for part, ctype in zip(obs["component"], rtype.components, strict=True):
        if "valueQuantity" in part:
            assert _in_range(part["valueQuantity"], ctype.range), ctype.key
        else:
            assert "dataAbsentReason" in part
    _validate(obs)
    pulse_obs = _obs(pulse)
    pulse_range = reading_types()["pulse-rate-cuff"].range
    assert pulse_range is not None
    assert "valueQuantity" not in pulse_obs or _in_range(pulse_obs["valueQuantity"], pulse_range)
    _validate(pulse_obs)


Slot = tuple[str, str | None, str, tuple[float, float]]


def _value_slots() -> list[Slot]:
    """(reading type, component or None, unit, range) for every value the contract takes."""
    slots: list[Slot] = []
    for key, rtype in sorted(reading_types().items()):
        if rtype.range is not None:
            slots += [(key, None, unit, rtype.range) for unit in rtype.units]
        for ctype in rtype.components:
            slots += [(key, ctype.key, unit, ctype.range) for unit in ctype.units]
    return slots


SLOTS = _value_slots()


def _decimal_near(bounds: tuple[float, float]) -> st.SearchStrategy[Decimal]:
    low, high = bounds
    span = max(high - low, 1.0)
    return st.one_of(
        # Around and across the range, at a device's usual precision.
        st.decimals(min_value=low - span, max_value=high + span, places=2),
        # Exactly on and just beyond the edges (in the canonical unit; other units land nearby).
        st.sampled_from([Decimal(repr(low)), Decimal(repr(high))]).flatmap(
            lambda edge: st.sampled_from([edge, edge - Decimal("0.01"), edge + Decimal("0.01")])
        ),
        # Any FLOAT a device can send.
        st.builds(
            lambda m, e: Decimal(m).scaleb(e),
            st.integers(-FLOAT_MANTISSA, FLOAT_MANTISSA),
            st.integers(-128, 127),
        ),
    )


def _reading(key: str, component: str | None, unit: str, value: Decimal) -> Reading:
    """One reading of ``key`` with ``value`` in ``unit``; a panel's other components plausible."""
    if component is None:
        return Reading(key, Quantity(value, unit))
    rtype = reading_types()[key]
    parts = tuple(
        Component(c.key, Quantity(value, unit) if c.key == component else Quantity(Decimal(100), c.units[0]))
        for c in rtype.components
    )
    return Reading(key, components=parts)


def _with_the_number(element: dict[str, Any], value: Decimal, unit: str) -> dict[str, Any]:
    """What the hub sent before: the number as a valueQuantity in place of the reason."""
    naive = {k: v for k, v in element.items() if k != "dataAbsentReason"}
    number = int(value) if value == value.to_integral_value() else float(value)
    naive["valueQuantity"] = {
        "value": number,
        "unit": unit,
        "system": "http://unitsofmeasure.org",
        "code": unit,
    }
    return naive


@given(slot=st.sampled_from(SLOTS), data=st.data())
def test_every_type_and_component_sends_only_numbers_the_gateway_takes(
    slot: Slot, data: st.DataObject
) -> None:
    key, component, unit, bounds = slot
    value = data.draw(_decimal_near(bounds), label="value")
    obs = _obs(_reading(key, component, unit, value))

    valid = _validate(obs)  # whatever the number, the Observation is never quarantined

    if component is None:
        element = obs
        stored = valid.value
    else:
        index = [c.key for c in reading_types()[key].components].index(component)
        element = obs["component"][index]
        stored = valid.components[component]
    if "valueQuantity" in element:
        assert _in_range(element["valueQuantity"], bounds)
        assert stored is not None
    else:
        # Replaced exactly when the gateway would have refused the number as impossible.
        assert _absent_for_error(element) and stored is None
        assert f"the device sent {value} {unit}," in element["dataAbsentReason"]["text"]
        naive = copy.deepcopy(obs)
        if component is None:
            naive = _with_the_number(naive, value, unit)
        else:
            naive["component"][index] = _with_the_number(element, value, unit)
        with pytest.raises(ContractViolation) as caught:
            _validate(naive)
        assert caught.value.code == "impossible-value"
