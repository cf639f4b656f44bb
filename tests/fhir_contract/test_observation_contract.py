"""Observations built on the hub validate with fhir.resources R4B and pass the contract; the contract
rejects what it must, each with its own code."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from fhir_contract.observation import build_bundle, build_observation, observation_identifier
from fhir_contract.readings import Absent, Component, Quantity, Reading
from fhir_contract.terminology import LOINC, MDC, reading_types
from fhir_contract.validate import ContractViolation, parse_bundle, validate_observation

WHEN = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)


def _obs(reading: Reading, device: str = "dev-1") -> dict[str, Any]:
    return build_observation(reading, patient_id="p-1", device_id=device, hub_id="hub-1", effective=WHEN)


def _bp(systolic: int = 131, diastolic: int = 84) -> Reading:
    return Reading(
        "blood-pressure",
        components=(
            Component("systolic", Quantity(Decimal(systolic), "mm[Hg]")),
            Component("diastolic", Quantity(Decimal(diastolic), "mm[Hg]")),
            Component("mean", Absent("not-a-number")),
        ),
        device_time=datetime(2026, 11, 2, 7, 30),
    )


SIMPLE = [
    Reading("spo2", Quantity(Decimal(95), "%")),
    Reading("pulse-rate-oximeter", Quantity(Decimal(77), "/min")),
    Reading("pulse-rate-cuff", Quantity(Decimal(64), "/min")),
    Reading("body-weight", Quantity(Decimal("81.35"), "kg")),
    Reading("body-temperature", Quantity(Decimal("37.4"), "Cel")),
    Reading("body-temperature", Quantity(Decimal("99.1"), "[degF]")),
]


@pytest.mark.parametrize("reading", [*SIMPLE, _bp()], ids=lambda r: f"{r.kind}")
def test_built_observation_is_valid_r4_and_passes_the_contract(reading: Reading) -> None:
    obs = _obs(reading)
    Observation.model_validate(obs)
    valid = validate_observation(obs)
    rtype = reading_types()[reading.kind]
    assert valid.kind == reading.kind
    assert valid.loinc == rtype.loinc[0]
    codings = {(c["system"], c["code"]) for c in obs["code"]["coding"]}
    assert (LOINC, rtype.loinc[0]) in codings and (MDC, rtype.mdc.code) in codings
    assert obs["meta"]["profile"] == [rtype.profile]
    assert (valid.patient_id, valid.device_id, valid.hub_id) == ("p-1", "dev-1", "hub-1")
    if isinstance(reading.value, Quantity):
        assert valid.value == float(reading.value.value)
        assert valid.unit == reading.value.unit


def test_blood_pressure_components_and_absent_mean() -> None:
    valid = validate_observation(_obs(_bp(142, 91)))
    assert valid.components == {"systolic": 142.0, "diastolic": 91.0, "mean": None}


def test_pulse_rates_of_cuff_and_oximeter_are_told_apart_by_mdc_code() -> None:
    cuff = validate_observation(_obs(Reading("pulse-rate-cuff", Quantity(Decimal(60), "/min"))))
    oxi = validate_observation(_obs(Reading("pulse-rate-oximeter", Quantity(Decimal(60), "/min"))))
    assert (cuff.kind, oxi.kind) == ("pulse-rate-cuff", "pulse-rate-oximeter")
    assert cuff.loinc == oxi.loinc == "8867-4"


def test_identifier_uses_device_time_so_a_resent_reading_keeps_it() -> None:
    first = _obs(_bp())
    later = build_observation(
        _bp(),
        patient_id="p-1",
        device_id="dev-1",
        hub_id="hub-1",
        effective=datetime(2026, 11, 3, tzinfo=UTC),
    )
    assert first["identifier"] == later["identifier"]
    assert observation_identifier("d", "p", "spo2", datetime(2000, 1, 1, 0, 1)) == "d-p-spo2-60"


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    obs = copy.deepcopy(_obs(Reading("spo2", Quantity(Decimal(95), "%"))))
    target: Any = obs
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obs


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        (["status"], "bogus", "invalid-fhir"),
        (["valueQuantity", "value"], 140, "impossible-value"),
        (["valueQuantity", "value"], "ninety", "invalid-fhir"),
        (["valueQuantity", "code"], "percent", "unit-mismatch"),
        (["valueQuantity", "system"], "http://example.org/units", "unit-mismatch"),
        (["code", "coding"], [{"system": LOINC, "code": "0000-0"}], "unknown-code"),
        (["subject"], KeyError, "missing-element"),
        (["device"], {"reference": "Patient/p-1"}, "missing-element"),
        (["identifier"], KeyError, "missing-element"),
        (["effectiveDateTime"], "2026-11-02T07:30:00", "invalid-fhir"),  # FHIR requires a zone
        (["effectiveDateTime"], KeyError, "missing-element"),
        (["resourceType"], "Patient", "invalid-fhir"),
    ],
)
def test_contract_rejects_with_a_specific_code(path: list[Any], value: Any, code: str) -> None:
    with pytest.raises(ContractViolation) as caught:
        validate_observation(_mutated(path, value))
    assert caught.value.code == code
    assert caught.value.reason


def test_blood_pressure_without_diastolic_is_rejected() -> None:
    obs = _obs(_bp())
    obs["component"] = obs["component"][:1]
    with pytest.raises(ContractViolation, match="diastolic"):
        validate_observation(obs)


def test_bundle_is_a_valid_r4_batch_and_parses_back() -> None:
    bundle = build_bundle([_obs(r, device=f"dev-{i}") for i, r in enumerate(SIMPLE)])
    Bundle.model_validate(bundle)
    parsed = parse_bundle(orjson.dumps(bundle), max_bytes=1_000_000)
    assert [r["identifier"] for r in parsed.resources] == [
        e["resource"]["identifier"] for e in bundle["entry"]
    ]
    assert parsed.id == bundle["id"]


def test_bundle_id_is_read_for_the_receipt() -> None:
    payload = b'{"resourceType": "Bundle", "id": "b-7", "type": "batch", "entry": [1]}'
    parsed = parse_bundle(payload, max_bytes=1000)
    assert (parsed.id, parsed.resources) == ("b-7", [1])
    assert parse_bundle(payload.replace(b'"id": "b-7", ', b""), max_bytes=1000).id is None


@pytest.mark.parametrize("bad_id", [b"42", b'""', b'"a/b"', b'"' + b"x" * 65 + b'"', b'"b\\u0000"'])
def test_a_bundle_id_that_is_no_fhir_id_rejects_the_message(bad_id: bytes) -> None:
    # The id is echoed in the receipt: a sender may not make the gateway publish arbitrary text.
    payload = b'{"resourceType": "Bundle", "id": ' + bad_id + b', "type": "batch", "entry": [1]}'
    with pytest.raises(ContractViolation) as caught:
        parse_bundle(payload, max_bytes=1000)
    assert caught.value.code == "invalid-fhir"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x00\xffnot json", "not-json"),
        (b'{"resourceType": "Patient"}', "not-a-bundle"),
        (b'{"resourceType": "Bundle", "type": "transaction", "entry": []}', "not-a-bundle"),
        (b"[" + b" " * 2000 + b"]", "too-large"),
    ],
)
def test_bad_payloads_get_a_clear_code(payload: bytes, code: str) -> None:
    with pytest.raises(ContractViolation) as caught:
        parse_bundle(payload, max_bytes=1000)
    assert caught.value.code == code


def test_device_stamp_and_receipt_time_are_kept_beside_the_corrected_time() -> None:
    received = datetime(2026, 11, 2, 7, 31, 5, tzinfo=UTC)
    obs = build_observation(
        _bp(), patient_id="p-1", device_id="dev-1", hub_id="hub-1", effective=WHEN, received=received
    )
    Observation.model_validate(obs)
    validate_observation(obs)
    extensions = {e["url"]: e for e in obs["extension"]}
    assert extensions["urn:homewatch:fhir:extension:device-time"]["valueString"] == "2026-11-02T07:30:00"
    assert extensions["urn:homewatch:fhir:extension:received-by-hub"]["valueDateTime"] == received.isoformat()
