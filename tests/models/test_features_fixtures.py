"""A small hand-made cohort in FHIR Bulk Data NDJSON form for the model tests (no tests here).

Readings are real contract Observations (`fhir_contract.observation.build_observation`). Every third
patient deteriorates before a hospital admission: weight climbs, SpO2 falls, pulse rises and the staff
note changed breathing in the days before; there are no readings while the patient is in hospital.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from fhir_contract.observation import build_observation
from fhir_contract.readings import Component, Quantity, Reading
from models.codes import ACT_CODE, CHANGE_SYSTEM, CONDITION_SNOMED, OBSERVATION_CATEGORY

START = datetime(2025, 3, 3, tzinfo=UTC)
Resource = dict[str, Any]


def _obs(reading: Reading, patient: str, at: datetime) -> Resource:
    return build_observation(
        reading, patient_id=patient, device_id=f"dev-{patient}", hub_id="hub", effective=at
    )


def reading(kind: str, value: float, unit: str) -> Reading:
    return Reading(kind, Quantity(Decimal(str(round(value, 1))), unit))


def blood_pressure(systolic: float, diastolic: float) -> Reading:
    return Reading(
        "blood-pressure",
        components=(
            Component("systolic", Quantity(Decimal(str(round(systolic))), "mm[Hg]")),
            Component("diastolic", Quantity(Decimal(str(round(diastolic))), "mm[Hg]")),
        ),
    )


def change(patient: str, key: str, at: datetime, seen: bool = True) -> Resource:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey"}]}],
        "code": {"coding": [{"system": CHANGE_SYSTEM, "code": key}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": at.isoformat(),
        "valueBoolean": seen,
    }


def admission(patient: str, start: datetime, end: datetime | None) -> Resource:
    period = {"start": start.isoformat()} | ({"end": end.isoformat()} if end else {})
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "IMP"},
        "subject": {"reference": f"Patient/{patient}"},
        "period": period,
    }


def patient_resources(number: int, days: int, rng: np.random.Generator) -> list[Resource]:
    """One patient: Patient, Condition, daily readings, staff changes, and an admission if unlucky."""
    pid = f"p{number:03d}"
    copd = number % 2 == 0
    out: list[Resource] = [
        {
            "resourceType": "Patient",
            "id": pid,
            "gender": "female" if number % 2 else "male",
            "birthDate": f"{1935 + number % 20}-05-17",
        },
        {
            "resourceType": "Condition",
            "subject": {"reference": f"Patient/{pid}"},
            "code": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": CONDITION_SNOMED["copd" if copd else "heart-failure"][0],
                    }
                ]
            },
        },
    ]
    admit = int(rng.integers(days // 2, days - 8)) if number % 3 == 0 else None
    weight, spo2, pulse, systolic = 70 + number, 95.0 if copd else 97.0, 70.0, 130.0
    for day in range(days):
        if admit is not None and admit <= day < admit + 5:
            continue  # in hospital: no readings
        if rng.random() < 0.1:
            continue  # a missed day
        ramp = max(0, 6 - (admit - day)) if admit is not None and day < admit else 0
        at = START + timedelta(days=day, hours=7, minutes=int(rng.integers(0, 60)))
        out.append(_obs(reading("body-weight", weight + 0.6 * ramp + rng.normal(0, 0.3), "kg"), pid, at))
        out.append(_obs(blood_pressure(systolic + rng.normal(0, 5), 80 + rng.normal(0, 4)), pid, at))
        out.append(_obs(reading("pulse-rate-cuff", pulse + 4 * ramp + rng.normal(0, 3), "/min"), pid, at))
        if copd:
            out.append(_obs(reading("spo2", min(spo2 - 1.2 * ramp + rng.normal(0, 1), 100), "%"), pid, at))
        if ramp >= 3:
            out.append(change(pid, "breathing", at + timedelta(hours=3)))
        elif rng.random() < 0.05:
            out.append(change(pid, "mood", at + timedelta(hours=3)))
    if admit is not None:
        start = START + timedelta(days=admit, hours=14)
        out.append(admission(pid, start, start + timedelta(days=4)))
    return out


def fixture_resources(patients: int = 18, days: int = 60, seed: int = 3) -> list[Resource]:
    rng = np.random.default_rng(seed)
    return [r for i in range(patients) for r in patient_resources(i, days, rng)]


def write_ndjson(folder: Path, resources: list[Resource]) -> Path:
    """Write resources into {Type}.ndjson files, as a Bulk Data export does."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[bytes]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(orjson.dumps(r))
    for kind, lines in by_type.items():
        (folder / f"{kind}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return folder
