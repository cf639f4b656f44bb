"""Measurement status per the PHD IG: preliminary intermediate cuff pressure (kept on the hub by default),
questionable values as an interpretation, test data as meta.security HTEST; all still valid and accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation

from edge_agent.gatt import blood_pressure
from edge_agent.gatt.registry import INTERMEDIATE_CUFF_PRESSURE_UUID, decode
from fhir_contract.observation import build_observation
from fhir_contract.readings import Quantity, Reading
from fhir_contract.status import (
    ACT_REASON,
    MEASUREMENT_STATUS,
    is_preliminary,
    is_test_data,
    should_send,
)
from fhir_contract.validate import validate_observation

WHEN = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)
# 0x2A36 while inflating: mmHg, cuff pressure 142, diastolic and mean NaN (0x07FF).
INTERMEDIATE_CUFF = bytes.fromhex("00 8e00 ff07 ff07")


def _obs(reading: Reading, **options: Any) -> dict[str, Any]:
    return build_observation(
        reading, patient_id="p-1", device_id="dev-1", hub_id="hub-1", effective=WHEN, **options
    )


def _intermediate_cuff_observation() -> dict[str, Any]:
    measurement = blood_pressure.parse_intermediate_cuff_pressure(INTERMEDIATE_CUFF)
    (reading,) = blood_pressure.to_readings(measurement)
    return _obs(reading, preliminary=True)


SPO2 = Reading("spo2", Quantity(Decimal(95), "%"))


def test_a_final_reading_is_final_without_interpretation_or_security() -> None:
    obs = _obs(SPO2)
    assert obs["status"] == "final"
    assert "interpretation" not in obs and "security" not in obs["meta"]
    assert should_send(obs) and not is_preliminary(obs) and not is_test_data(obs)


def test_intermediate_cuff_pressure_is_preliminary_valid_and_not_sent_by_default() -> None:
    obs = _intermediate_cuff_observation()
    Observation.model_validate(obs)
    valid = validate_observation(obs)  # the gateway accepts it if a hub opts in
    assert obs["status"] == "preliminary" and is_preliminary(obs)
    assert valid.components == {"systolic": 142.0, "diastolic": None, "mean": None}
    assert not should_send(obs)
    assert should_send(obs, send_preliminary=True)


def test_registry_still_gives_no_readings_for_intermediate_cuff_pressure() -> None:
    # decode() drops 0x2A36: only a hub that opts in (send_intermediate_cuff_pressure) subscribes to it,
    # and its device session parses it itself and builds with preliminary=True.
    assert decode(INTERMEDIATE_CUFF_PRESSURE_UUID, INTERMEDIATE_CUFF) == []


def test_questionable_value_carries_the_measurement_status_interpretation() -> None:
    obs = _obs(SPO2, questionable=True)
    Observation.model_validate(obs)
    validate_observation(obs)
    assert obs["status"] == "final"
    assert obs["interpretation"] == [
        {"coding": [{"system": MEASUREMENT_STATUS, "code": "questionable", "display": "questionable"}]}
    ]
    assert should_send(obs)


def test_test_data_is_labelled_htest_and_keeps_its_profile() -> None:
    obs = _obs(SPO2, test_data=True)
    Observation.model_validate(obs)
    validate_observation(obs)
    assert [(s["system"], s["code"]) for s in obs["meta"]["security"]] == [(ACT_REASON, "HTEST")]
    assert obs["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/oxygensat"]
    assert is_test_data(obs) and should_send(obs)


def test_test_data_of_a_type_without_profile_still_gets_meta() -> None:
    obs = _obs(Reading("battery-level", Quantity(Decimal(75), "%")), test_data=True)
    assert obs["meta"] == {
        "security": [{"system": ACT_REASON, "code": "HTEST", "display": "test health data"}]
    }
    validate_observation(obs)


@pytest.mark.parametrize("options", [{}, {"questionable": True}, {"test_data": True}])
def test_labels_do_not_change_the_identifier(options: dict[str, bool]) -> None:
    assert _obs(SPO2, **options)["identifier"] == _obs(SPO2)["identifier"]


def test_preliminary_values_are_identified_by_receipt_apart_from_the_final() -> None:
    (reading,) = blood_pressure.to_readings(
        blood_pressure.parse_intermediate_cuff_pressure(INTERMEDIATE_CUFF)
    )
    # Two values of one inflation, received 0.4 s apart within one second, and the final at that second.
    first, second = WHEN + timedelta(microseconds=100), WHEN + timedelta(microseconds=400_100)
    values = [
        _obs(reading, preliminary=True, received=at)["identifier"][0]["value"] for at in (first, second)
    ]
    final = _obs(reading, received=first)["identifier"][0]["value"]
    since_2000 = [
        (at - datetime(2000, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) for at in (first, second)
    ]
    assert values == [f"dev-1-p-1-blood-pressure-preliminary-{ticks}" for ticks in since_2000]
    assert final not in values
    assert _obs(reading, preliminary=True, received=first)["identifier"][0]["value"] == values[0]  # stable
