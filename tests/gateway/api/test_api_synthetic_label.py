"""Issue 16: what the gateway serves about a SYNTHETIC patient says so.

A patient enrolled as synthetic (``Patient.synthetic``; the demo enrols its cohort so) gets FHIR's
test-data label, ``meta.security`` v3-ActReason#HTEST, on every resource the FHIR API serves about them:
the Patient, their Observations and RiskAssessments (labelled as served, whatever was stored), and
their sensors and hub. A real patient's resources carry no label. Before, nothing served was labelled.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.riskassessment import RiskAssessment
from seed import World, bearer, device, login, observation, score

from gateway.store.migrate import MIGRATIONS_DIR, migrate
from gateway.store.repository import Patient, enroll_patient
from homewatch.demo.provision import provision
from models.cohort.synthetic import make_cohort

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
MODELS = {
    "Patient": FhirPatient,
    "Observation": Observation,
    "RiskAssessment": RiskAssessment,
    "Device": Device,
}


@pytest.fixture
def auth(client: TestClient, world: World) -> dict[str, str]:
    return bearer(client, world.nurse)


@pytest.fixture
def made_up(world: World, db: psycopg.Connection[Any]) -> str:
    """A patient enrolled as synthetic under a real-looking name: a reading, a score, a sensor, a hub."""
    enroll_patient(db, Patient(world.own, "p-made-up", "Maja Madeup", synthetic=True))
    device(db, world.own, "p-made-up", "dev-p-made-up-spo2", "pulse-oximeter", "00:1b:dc:0f:33:ab")
    observation(db, world.own, "p-made-up", "spo2", world.now - timedelta(hours=1), 97)
    observation(
        db, world.own, "p-made-up", "body-weight", world.now - timedelta(hours=2), 70.5, synthetic=True
    )
    score(db, world.own, "p-made-up", 0, "low", world.now - timedelta(hours=1))
    return "p-made-up"


def _labels(resource: dict[str, Any]) -> list[dict[str, Any]]:
    MODELS[resource["resourceType"]].model_validate(resource)  # still valid FHIR R4
    return [s for s in resource.get("meta", {}).get("security", []) if s.get("system") == ACT_REASON]


def _served(client: TestClient, auth: dict[str, str], patient_id: str) -> list[dict[str, Any]]:
    """Everything the FHIR API serves about ``patient_id``: searches and the reads they lead to."""
    served: list[dict[str, Any]] = []
    for path, params in (
        ("/fhir/Patient", {"_id": patient_id}),
        ("/fhir/Observation", {"patient": patient_id}),
        ("/fhir/RiskAssessment", {"patient": patient_id}),
    ):
        bundle = client.get(path, params=params, headers=auth).json()
        assert bundle.get("entry"), (path, bundle)
        for entry in bundle["entry"]:
            served.append(entry["resource"])
            read = client.get(entry["fullUrl"].removeprefix("http://testserver"), headers=auth)
            assert read.status_code == 200, read.text
            served.append(read.json())
    observations = [r for r in served if r["resourceType"] == "Observation"]
    for reference in {o["device"]["reference"] for o in observations} | {f"Device/hub-{patient_id}"}:
        response = client.get(f"/fhir/{reference}", headers=auth)
        if response.status_code == 200:  # the seed's readings name devices that are not all enrolled
            served.append(response.json())
    return served


def test_everything_served_about_a_synthetic_patient_carries_the_test_data_label_once(
    client: TestClient, world: World, auth: dict[str, str], made_up: str
) -> None:
    served = _served(client, auth, made_up)
    kinds = {r["resourceType"] for r in served}
    assert kinds == {"Patient", "Observation", "RiskAssessment", "Device"}
    assert sum(r["resourceType"] == "Device" for r in served) == 2  # the oximeter and the hub
    for resource in served:
        assert [label["code"] for label in _labels(resource)] == ["HTEST"], resource


def test_nothing_served_about_a_real_patient_is_labelled(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    device(db, world.own, "p-high", "dev-p-high-spo2", "pulse-oximeter", "00:1b:dc:0f:33:ac")
    served = _served(client, auth, "p-high")
    assert {r["resourceType"] for r in served} == {"Patient", "Observation", "RiskAssessment", "Device"}
    assert all(_labels(resource) == [] for resource in served)


def test_the_synthetic_patient_is_shown_as_synthetic_demo_data_in_the_ui(
    client: TestClient, world: World, made_up: str
) -> None:
    login(client, world.nurse)
    assert "Synthetic demo data" in client.get(f"/patients/{made_up}").text
    assert "Synthetic demo data" not in client.get("/patients/p-high").text


def test_the_demo_enrols_its_cohort_as_synthetic(
    client: TestClient, world: World, auth: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    (cohort_patient,) = make_cohort(1, seed=7)
    home = SimpleNamespace(
        municipality=world.own,
        hub_id="hub-demo",
        patient=cohort_patient,
        device_ids={"pulse-oximeter": "OXI-DEMO"},
        devices={"pulse-oximeter": SimpleNamespace(address="00:1b:dc:0f:33:ad")},
    )
    provision(db, [home])  # type: ignore[list-item]
    served = client.get(f"/fhir/Patient/{cohort_patient.id}", headers=auth).json()
    assert [label["code"] for label in _labels(served)] == ["HTEST"]
    assert [label["code"] for label in _labels(client.get("/fhir/Device/hub-demo", headers=auth).json())] == [
        "HTEST"
    ]


def test_the_migration_marks_patients_enrolled_under_the_cohorts_names(
    empty_database_url: str, tmp_path: Path
) -> None:
    for source in sorted(MIGRATIONS_DIR.glob("*.sql"))[:6]:  # the schema before migration 0007
        shutil.copy(source, tmp_path / source.name)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        migrate(conn, tmp_path)
        conn.execute("INSERT INTO municipalities (id, name) VALUES ('0101', 'København')")
        for patient_id, name in (("p1", "Synthetic patient 1"), ("p2", "Karen High")):
            conn.execute(
                "INSERT INTO patients (municipality_id, id, name) VALUES ('0101', %s, %s)", (patient_id, name)
            )
        assert 7 in migrate(conn)
        flags = dict(conn.execute("SELECT id, synthetic FROM patients").fetchall())
    assert flags == {"p1": True, "p2": False}


def test_a_later_enrolment_decides_whether_a_patient_is_synthetic(
    world: World, db: psycopg.Connection[Any]
) -> None:
    enroll_patient(db, Patient(world.own, "p-x", "Synthetic patient 9"))
    enroll_patient(db, Patient(world.own, "p-y", "Yrsa", synthetic=True))
    flags = dict(db.execute("SELECT id, synthetic FROM patients WHERE id IN ('p-x', 'p-y')").fetchall())
    assert flags == {"p-x": False, "p-y": True}
