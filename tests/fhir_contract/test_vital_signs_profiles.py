"""Every Observation the builder makes for a vital-sign type meets the R4 vital-signs profile's required
elements, held against fhir/vital-signs-profiles.json (written from the specification, not from the
terminology): status, category vital-signs, the profile's LOINC code, subject, effective[x], and a UCUM
value in the profile's units, a dataAbsentReason, or the required components."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from fhir_contract.examples import example_reading
from fhir_contract.observation import build_observation
from fhir_contract.readings import Absent, Component, Quantity, Reading
from fhir_contract.terminology import LOINC, UCUM, contract_dir, reading_types

PROFILES: dict[str, Any] = json.loads((contract_dir() / "vital-signs-profiles.json").read_text("utf-8"))
VITAL_KINDS = sorted(k for k, t in reading_types().items() if t.vital_sign)
WHEN = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)


def _readings_of(kind: str) -> list[Reading]:
    """The example reading, the same in every unit the type allows, at every site, and one absent value."""
    rtype = reading_types()[kind]
    base = example_reading(kind)
    readings = [base]
    if isinstance(base.value, Quantity):
        readings += [Reading(kind, Quantity(base.value.value, unit)) for unit in rtype.units[1:]]
        readings += [Reading(kind, base.value, body_site=site.key) for site in rtype.sites]
        readings.append(Reading(kind, Absent("not-a-number")))
    else:
        readings.append(
            Reading(kind, components=tuple(Component(c.kind, Absent("error")) for c in base.components))
        )
    return readings


def _build(reading: Reading) -> dict[str, Any]:
    return build_observation(reading, patient_id="p-1", device_id="d-1", hub_id="h-1", effective=WHEN)


def _has_loinc(concept: dict[str, Any], code: str) -> bool:
    return any(c.get("system") == LOINC and c.get("code") == code for c in concept.get("coding", []))


def _check_quantity(quantity: dict[str, Any], units: list[str]) -> None:
    assert "value" in quantity and quantity["system"] == UCUM
    assert quantity["code"] in units and quantity["unit"]


def test_every_vital_sign_type_names_a_profile_the_specification_defines() -> None:
    assert VITAL_KINDS
    for kind in VITAL_KINDS:
        assert reading_types()[kind].profile in PROFILES["profiles"], kind


CASES = [(kind, i, r) for kind in VITAL_KINDS for i, r in enumerate(_readings_of(kind))]


@pytest.mark.parametrize(("kind", "index", "reading"), CASES, ids=[f"{k}-{i}" for k, i, _ in CASES])
def test_vital_sign_observation_meets_the_profile_required_elements(
    kind: str, index: int, reading: Reading
) -> None:
    obs = _build(reading)
    profile_url = reading_types()[kind].profile
    assert profile_url is not None
    profile = PROFILES["profiles"][profile_url]
    assert obs["meta"]["profile"] == [profile_url]
    assert obs["status"] in {"registered", "preliminary", "final", "amended", "corrected"}
    category = PROFILES["category"]
    assert any(
        c.get("system") == category["system"] and c.get("code") == category["code"]
        for concept in obs["category"]
        for c in concept["coding"]
    )
    assert _has_loinc(obs["code"], profile["loinc"])
    assert obs["subject"]["reference"].startswith("Patient/")
    assert "effectiveDateTime" in obs or "effectivePeriod" in obs
    if "components" in profile:
        assert "valueQuantity" not in obs
        for code, units in profile["components"].items():
            (part,) = [p for p in obs["component"] if _has_loinc(p["code"], code)]
            if "valueQuantity" in part:
                _check_quantity(part["valueQuantity"], units)
            else:
                assert part["dataAbsentReason"]["coding"]
    elif "valueQuantity" in obs:
        _check_quantity(obs["valueQuantity"], profile["units"])
    else:
        assert obs["dataAbsentReason"]["coding"]


def test_a_unit_outside_the_profile_would_be_caught() -> None:
    obs = _build(Reading("body-height", Quantity(Decimal("1.75"), "m")))
    with pytest.raises(AssertionError):
        _check_quantity(
            obs["valueQuantity"], PROFILES["profiles"][reading_types()["body-height"].profile or ""]["units"]
        )
