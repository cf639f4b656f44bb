"""The SYNTHETIC cohort as FHIR Bulk Data NDJSON: byte-identical for a seed, every resource valid FHIR R4B
and tagged synthetic, device readings built by the contract, staff changes and admissions as agreed in
``models.codes``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from models.codes import (
    ACT_CODE,
    ADMISSION_CLASS,
    CHANGE_FORM,
    CHANGE_OBSERVATIONS,
    CHANGE_SYSTEM,
    CONDITION_SNOMED,
    SYNTHETIC_TAG,
)
from models.cohort.history import simulate_history
from models.cohort.ndjson import FILES, CohortSummary, generate_cohort, write_ndjson

MODELS: dict[str, Any] = {
    "Patient": Patient,
    "Condition": Condition,
    "Observation": Observation,
    "Encounter": Encounter,
}
SEED = 11


def _read(folder: Path, name: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (folder / name).read_bytes().splitlines()]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CohortSummary]:
    folder = tmp_path_factory.mktemp("cohort")
    return folder, generate_cohort(folder, patients=40, days=120, seed=SEED)


def test_same_seed_writes_identical_bytes_and_another_seed_other_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_cohort(tmp_path / name, patients=6, days=40, seed=seed)
    for file in FILES:
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert (tmp_path / "a" / "Observation.ndjson").read_bytes() != (
        tmp_path / "c" / "Observation.ndjson"
    ).read_bytes()


def test_summary_counts_what_was_written(written: tuple[Path, CohortSummary]) -> None:
    folder, summary = written
    lines = {name: len((folder / name).read_bytes().splitlines()) for name in FILES}
    assert summary.patients == lines["Patient.ndjson"] == 40
    assert summary.conditions == lines["Condition.ndjson"]
    assert summary.observations == lines["Observation.ndjson"]
    assert summary.encounters == lines["Encounter.ndjson"] > 0
    assert summary.device_observations > 0 and summary.staff_observations > 0
    assert summary.bytes_by_file == {name: (folder / name).stat().st_size for name in FILES}


def test_every_resource_is_tagged_synthetic_with_a_unique_id(written: tuple[Path, CohortSummary]) -> None:
    folder, _ = written
    for name in FILES:
        resources = _read(folder, name)
        assert all(r["resourceType"] == name.removesuffix(".ndjson") for r in resources)
        assert all(dict(SYNTHETIC_TAG) in r["meta"]["tag"] for r in resources), name
        ids = [r["id"] for r in resources]
        assert len(set(ids)) == len(ids), name


def test_every_resource_of_a_small_cohort_validates_as_fhir_r4b(tmp_path: Path) -> None:
    generate_cohort(tmp_path, patients=8, days=45, seed=SEED)
    seen: Counter[str] = Counter()
    for name in FILES:
        for resource in _read(tmp_path, name):
            MODELS[resource["resourceType"]].model_validate(resource)
            seen[resource["resourceType"]] += 1
    assert all(seen[kind] > 0 for kind in MODELS), seen


def test_a_sample_of_the_larger_cohort_validates_as_fhir_r4b(written: tuple[Path, CohortSummary]) -> None:
    folder, _ = written
    for name in FILES:
        for resource in _read(folder, name)[::97]:
            MODELS[resource["resourceType"]].model_validate(resource)


def test_patients_and_conditions(written: tuple[Path, CohortSummary]) -> None:
    folder, _ = written
    patients = _read(folder, "Patient.ndjson")
    assert [p["name"][0]["text"] for p in patients] == [f"Synthetic patient {n}" for n in range(1, 41)]
    assert {p["gender"] for p in patients} == {"female", "male"}
    codes = {code for code, _ in CONDITION_SNOMED.values()}
    for condition in _read(folder, "Condition.ndjson"):
        assert condition["code"]["coding"][0]["code"] in codes
        assert condition["clinicalStatus"]["coding"][0]["code"] == "active"
        assert condition["subject"]["reference"].startswith("Patient/p-")


def test_device_observations_are_contract_observations(written: tuple[Path, CohortSummary]) -> None:
    folder, _ = written
    device = [o for o in _read(folder, "Observation.ndjson") if "device" in o]
    kinds = Counter(o["code"]["text"] for o in device)
    assert {"Body weight", "Blood pressure panel", "Oxygen saturation"} <= set(kinds)
    for o in device:
        patient = o["subject"]["reference"].removeprefix("Patient/")
        assert o["device"]["reference"].startswith(f"Device/{patient}-")
        assert o["extension"][0]["valueReference"] == {"reference": f"Device/{patient}-hub"}
        assert o["identifier"][0]["value"] == o["id"]
        assert o["status"] == "final"


def test_staff_forms_are_survey_panels_of_booleans_with_the_shared_codes(
    written: tuple[Path, CohortSummary],
) -> None:
    folder, summary = written
    forms = [o for o in _read(folder, "Observation.ndjson") if o["code"]["coding"][0]["code"] == CHANGE_FORM]
    assert len(forms) == summary.staff_observations > 0
    items: list[bool] = []
    for o in forms:
        assert o["status"] == "final"
        assert o["category"][0]["coding"][0]["code"] == "survey"
        assert o["code"]["coding"][0]["system"] == CHANGE_SYSTEM
        keys = [c["code"]["coding"][0]["code"] for c in o["component"]]
        assert sorted(keys) == sorted(CHANGE_OBSERVATIONS)  # every item of the form is answered
        assert all(c["code"]["coding"][0]["system"] == CHANGE_SYSTEM for c in o["component"])
        items += [c["valueBoolean"] for c in o["component"]]
    assert any(items) and not all(items)


def test_observations_are_ordered_by_patient_then_time(written: tuple[Path, CohortSummary]) -> None:
    folder, _ = written
    keys = [
        (int(o["subject"]["reference"].removeprefix("Patient/p-")), o["effectiveDateTime"])
        for o in _read(folder, "Observation.ndjson")
    ]
    assert keys == sorted(keys)


def test_encounters_are_finished_inpatient_admissions_without_readings_inside(
    written: tuple[Path, CohortSummary],
) -> None:
    folder, _ = written
    encounters = _read(folder, "Encounter.ndjson")
    by_patient: dict[str, list[tuple[str, str]]] = {}
    for e in encounters:
        assert e["status"] == "finished"
        assert e["class"]["system"] == ACT_CODE and e["class"]["code"] == ADMISSION_CLASS
        assert e["period"]["start"] < e["period"]["end"]
        by_patient.setdefault(e["subject"]["reference"], []).append(
            (e["period"]["start"], e["period"]["end"])
        )
    for o in _read(folder, "Observation.ndjson"):
        for start, end in by_patient.get(o["subject"]["reference"], []):
            assert not start <= o["effectiveDateTime"] < end


def test_write_ndjson_writes_a_given_history(tmp_path: Path) -> None:
    summary = write_ndjson(simulate_history(2, 20, 1), tmp_path / "new" / "folder")
    assert summary.patients == 2
    assert sorted(p.name for p in (tmp_path / "new" / "folder").iterdir()) == sorted(FILES)


def test_the_models_reader_takes_every_change_seen_on_the_forms(written: tuple[Path, CohortSummary]) -> None:
    from models.cohort_reader import read_cohort

    folder, _ = written
    seen_on_forms = sum(
        c["valueBoolean"]
        for o in _read(folder, "Observation.ndjson")
        if o["code"]["coding"][0]["code"] == CHANGE_FORM
        for c in o["component"]
    )
    cohort = read_cohort(folder)
    assert cohort.synthetic
    assert sum(len(p.changes) for p in cohort.patients) == seen_on_forms > 0
