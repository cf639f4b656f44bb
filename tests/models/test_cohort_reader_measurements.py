"""The reader's two doors give one cohort: readings handed over as canonical ``Measurement``s (what the
gateway stores, converted once by validation at ingest) read as the same readings as FHIR resources,
whatever unit the device reported in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fhir_contract.observation import build_observation
from fhir_contract.readings import Absent, Component, Quantity, Reading
from fhir_contract.validate import validate_observation
from models.codes import CONDITION_SNOMED, SNOMED
from models.cohort_reader import Measurement, parse_resources, patient_cohort

START = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
PATIENT = "p-1"


def _day(day: int) -> list[Reading]:
    return [
        Reading("body-weight", Quantity(Decimal(f"{176 + day}.37"), "[lb_av]")),  # an imperial scale
        Reading("body-temperature", Quantity(Decimal(f"98.{day}"), "[degF]")),
        Reading("spo2", Quantity(Decimal(94 + day % 3), "%")),
        Reading("heart-rate", Quantity(Decimal(70 + day), "/min")),
        Reading("pulse-rate-oximeter", Absent("unknown")),
        Reading(
            "blood-pressure",
            components=(
                Component("systolic", Quantity(Decimal(125 + day), "mm[Hg]")),
                Component("diastolic", Quantity(Decimal(80), "mm[Hg]")),
                Component("mean", Absent("not-a-number")),
            ),
        ),
    ]


def _observations() -> list[dict[str, Any]]:
    return [
        build_observation(
            reading, patient_id=PATIENT, device_id="dev", hub_id="hub", effective=START + timedelta(days=day)
        )
        for day in range(5)
        for reading in _day(day)
    ]


def test_canonical_measurements_read_as_the_same_readings_in_fhir_in_any_unit() -> None:
    observations = _observations()
    valid = [validate_observation(o) for o in observations]
    from_store = patient_cohort(
        PATIENT,
        birth_date=date(1940, 5, 1),
        conditions=("heart-failure", "not-a-model-condition"),
        measurements=[
            Measurement(
                v.loinc,
                v.effective,
                v.canonical_value,
                {key: n for key, n in v.canonical_components.items() if n is not None},
            )
            for v in valid
        ],
    )
    code, display = CONDITION_SNOMED["heart-failure"]
    from_fhir = parse_resources(
        [
            {"resourceType": "Patient", "id": PATIENT, "birthDate": "1940-05-01"},
            {
                "resourceType": "Condition",
                "subject": {"reference": f"Patient/{PATIENT}"},
                "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
            },
            *observations,
        ]
    )
    assert from_store == from_fhir
    [record] = from_store.patients
    assert set(record.readings) == {"weight", "temperature", "spo2", "pulse", "systolic", "diastolic"}
    assert record.readings["weight"].values[0] == 176.37 * 0.45359237  # kilograms, not pounds
    assert record.conditions == frozenset({"heart-failure"})
