"""fhir/capability-statement.json is a valid R4 CapabilityStatement that declares the contract's profiles."""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from fhir_contract.terminology import contract_dir, reading_types

VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"


def _stored() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((contract_dir() / "capability-statement.json").read_text("utf-8"))
    return loaded


def _observation_resource() -> dict[str, Any]:
    (rest,) = _stored()["rest"]
    (observation,) = [r for r in rest["resource"] if r["type"] == "Observation"]
    return observation


def test_stored_capability_statement_is_valid_r4() -> None:
    statement = CapabilityStatement.model_validate(_stored())
    assert statement.fhirVersion == "4.0.1"


def test_observation_declares_every_profile_the_builder_uses() -> None:
    observation = _observation_resource()
    used = {t.profile for t in reading_types().values() if t.profile}
    assert observation["profile"] == VITAL_SIGNS
    assert used <= set(observation["supportedProfile"])
    assert len(observation["supportedProfile"]) == len(set(observation["supportedProfile"]))
