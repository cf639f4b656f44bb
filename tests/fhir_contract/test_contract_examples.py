"""fhir/examples/ is what the builders make now, covers every reading type, and every example is valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.observation import Observation

from fhir_contract import examples
from fhir_contract.terminology import reading_types
from fhir_contract.validate import parse_bundle, validate_observation

EXAMPLES = examples.examples_dir()
FILES = sorted(EXAMPLES.glob("*.json"))
MODELS: dict[str, Any] = {"Observation": Observation, "Device": Device, "Bundle": Bundle}


def test_examples_on_disk_equal_what_the_builders_make() -> None:
    assert examples.stale() == [], "run: python -m fhir_contract.examples --write"
    assert examples.main([]) == 0


def test_every_reading_type_has_an_example_and_there_are_devices_and_a_bundle() -> None:
    names = {p.name for p in FILES}
    assert {f"Observation-{kind}.json" for kind in reading_types()} <= names
    assert {"Device-sensor.json", "Device-gateway.json", "Bundle-batch.json"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_example_is_valid_r4(path: Path) -> None:
    resource = json.loads(path.read_text(encoding="utf-8"))
    MODELS[resource["resourceType"]].model_validate(resource)


@pytest.mark.parametrize(
    "path", [p for p in FILES if p.name.startswith("Observation-")], ids=lambda p: p.name
)
def test_every_example_observation_passes_the_contract(path: Path) -> None:
    resource = json.loads(path.read_text(encoding="utf-8"))
    valid = validate_observation(resource)
    assert path.name in {f"Observation-{valid.kind}.json", "Observation-blood-pressure-intermediate.json"}


def test_example_bundle_parses_and_its_observations_pass_the_contract() -> None:
    payload = (EXAMPLES / "Bundle-batch.json").read_bytes()
    for resource in parse_bundle(payload, max_bytes=1_000_000).resources:
        validate_observation(resource)


def test_observations_reference_the_example_devices() -> None:
    sensor = json.loads((EXAMPLES / "Device-sensor.json").read_text(encoding="utf-8"))
    hub = json.loads((EXAMPLES / "Device-gateway.json").read_text(encoding="utf-8"))
    valid = validate_observation(json.loads((EXAMPLES / "Observation-spo2.json").read_text(encoding="utf-8")))
    assert (valid.device_id, valid.hub_id) == (sensor["id"], hub["id"])


def test_write_then_check_round_trips_in_a_fresh_folder(tmp_path: Path) -> None:
    (tmp_path / "Observation-retired.json").write_text("{}", encoding="utf-8")
    assert "Observation-retired.json" in examples.stale(tmp_path)
    examples.write(tmp_path)
    assert examples.stale(tmp_path) == []
    assert not (tmp_path / "Observation-retired.json").exists()
