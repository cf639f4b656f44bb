"""Write a SYNTHETIC `CohortHistory` as FHIR R4 Bulk Data NDJSON: one resource per line, compact JSON.

- ``Patient.ndjson``: id, gender, birthDate, name "Synthetic patient N".
- ``Condition.ndjson``: the chronic conditions, SNOMED CT (``models.codes.CONDITION_SNOMED``), active.
- ``Observation.ndjson``: the device readings as contract Observations (``fhir_contract``'s
  ``build_observation``; one sensor id per device and one hub id per patient) and the staff's change
  forms (category survey, ``CHANGE_SYSTEM|CHANGE_FORM``, one ``valueBoolean`` component per item), per
  patient in time order.
- ``Encounter.ndjson``: the admissions, class v3 ActCode IMP, status finished, with their period.
- ``QuestionnaireResponse.ndjson``, only when a patient answers a daily symptom check (a population with
  ``questionnaire_share``): each answer as the hub would send it (``fhir_contract.questionnaire``'s
  ``build_response``). A measurement plan has no FHIR form here and is not written.

Every resource carries ``meta.tag`` ``models.codes.SYNTHETIC_TAG``. Output is a pure function of the
history: the same seed gives byte-identical files. Reading the files is left to the models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from fhir_contract.observation import build_observation
from fhir_contract.questionnaire import build_response, current
from fhir_contract.readings import Component, Quantity, Reading
from models.codes import (
    ACT_CODE,
    ADMISSION_CLASS,
    CHANGE_FORM,
    CHANGE_OBSERVATIONS,
    CHANGE_SYSTEM,
    CONDITION_SNOMED,
    OBSERVATION_CATEGORY,
    SNOMED,
    SYNTHETIC_TAG,
)
from models.cohort.history import CHANGE_KEYS, KINDS, CohortHistory, PatientHistory, simulate_history
from models.cohort.settings import DEFAULT_SETTINGS, GeneratorSettings

FhirJson = dict[str, Any]

#: The sensor behind each kind of reading: its Device id is ``<patient>-<suffix>``.
DEVICE_SUFFIX: Final[dict[str, str]] = {
    "body-weight": "scale",
    "blood-pressure": "bpm",
    "spo2": "oximeter",
    "body-temperature": "thermometer",
}
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CAUSE_TEXT: Final = {
    "heart-failure-decompensation": "Heart failure decompensation",
    "copd-exacerbation": "COPD exacerbation",
    "infection": "Infection",
    "fall": "Fall",
    "sudden": "Sudden acute event",
}
FILES: Final = ("Patient.ndjson", "Condition.ndjson", "Observation.ndjson", "Encounter.ndjson")
#: Written beside FILES when any patient answered a symptom check.
RESPONSES_FILE: Final = "QuestionnaireResponse.ndjson"


@dataclass(frozen=True, slots=True)
class CohortSummary:
    """What was written: resources per type and bytes per file. SYNTHETIC data."""

    folder: Path
    patients: int
    conditions: int
    device_observations: int
    staff_observations: int
    encounters: int
    bytes_by_file: dict[str, int]
    questionnaire_responses: int = 0

    @property
    def observations(self) -> int:
        """Device and staff Observations together."""
        return self.device_observations + self.staff_observations


def generate_cohort(
    out: Path, patients: int, days: int, seed: int, settings: GeneratorSettings = DEFAULT_SETTINGS
) -> CohortSummary:
    """Simulate a SYNTHETIC cohort of the population `settings` describes and write it to `out` as
    NDJSON (the CLI's ``models cohort``)."""
    return write_ndjson(simulate_history(patients, days, seed, settings=settings), out)


def write_ndjson(history: CohortHistory, folder: Path) -> CohortSummary:
    """Write the four NDJSON files of `history` into `folder` (created if missing), and the symptom
    checks' answers when there are any."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"conditions": 0, "device": 0, "staff": 0, "encounters": 0}
    with (
        (folder / "Patient.ndjson").open("wb") as patients,
        (folder / "Condition.ndjson").open("wb") as conditions,
        (folder / "Observation.ndjson").open("wb") as observations,
        (folder / "Encounter.ndjson").open("wb") as encounters,
    ):
        for patient in history.patients:
            _line(patients, patient_resource(patient))
            for resource in condition_resources(patient):
                _line(conditions, resource)
                counts["conditions"] += 1
            device, staff = _observation_lines(history, patient)
            for _, _, line in sorted(device + staff, key=lambda item: (item[0], item[1])):
                observations.write(line)
            counts["device"] += len(device)
            counts["staff"] += len(staff)
            for resource in encounter_resources(history, patient):
                _line(encounters, resource)
                counts["encounters"] += 1
    return CohortSummary(
        folder=folder,
        patients=len(history.patients),
        conditions=counts["conditions"],
        device_observations=counts["device"],
        staff_observations=counts["staff"],
        encounters=counts["encounters"],
        bytes_by_file={name: (folder / name).stat().st_size for name in FILES},
        questionnaire_responses=_write_responses(history, folder),
    )


def _write_responses(history: CohortHistory, folder: Path) -> int:
    """Write RESPONSES_FILE when any patient answered; how many responses."""
    path = folder / RESPONSES_FILE
    if not any(p.answer_days.size for p in history.patients):
        path.unlink(missing_ok=True)
        return 0
    written = 0
    with path.open("wb") as out:
        for patient in history.patients:
            for resource in response_resources(history, patient):
                _line(out, resource)
                written += 1
    return written


def response_resources(history: CohortHistory, patient: PatientHistory) -> list[FhirJson]:
    """The patient's answers to their symptom check as QuestionnaireResponses, in time order: each
    item's answer is the option with the simulated ordinal."""
    if patient.questionnaire is None:
        return []
    questionnaire = current(patient.questionnaire)
    out = []
    for day, row in zip(patient.answer_days.tolist(), patient.answer_ordinals.tolist(), strict=True):
        answers = {
            q.link_id: next(o.code for o in q.options if o.ordinal == ordinal)
            for q, ordinal in zip(questionnaire.questions, row, strict=True)
        }
        hub, authored = f"{patient.id}-hub", history.at(day)
        response = build_response(
            questionnaire, answers, patient_id=patient.id, hub_id=hub, authored=authored
        )
        response["meta"] = _tag()
        identifier = response["identifier"]["value"]
        out.append({"resourceType": "QuestionnaireResponse", "id": identifier, **response})
    return out


def _line(out: BinaryIO, resource: FhirJson) -> None:
    out.write(orjson.dumps(resource) + b"\n")


def _tag() -> FhirJson:
    return {"tag": [dict(SYNTHETIC_TAG)]}


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def patient_resource(patient: PatientHistory) -> FhirJson:
    """The Patient: no real person, named as such."""
    return {
        "resourceType": "Patient",
        "id": patient.id,
        "meta": _tag(),
        "name": [{"text": patient.name}],
        "gender": patient.sex,
        "birthDate": patient.birth_date.isoformat(),
    }


def condition_resources(patient: PatientHistory) -> list[FhirJson]:
    """One active Condition per chronic condition, main condition first."""
    resources = []
    for condition in patient.conditions:
        code, display = CONDITION_SNOMED[condition]
        resources.append(
            {
                "resourceType": "Condition",
                "id": f"{patient.id}-{condition}",
                "meta": _tag(),
                "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
                "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
                "subject": {"reference": f"Patient/{patient.id}"},
            }
        )
    return resources


def encounter_resources(history: CohortHistory, patient: PatientHistory) -> list[FhirJson]:
    """One finished inpatient Encounter per admission, with its cause as reasonCode text."""
    return [
        {
            "resourceType": "Encounter",
            "id": f"{patient.id}-admission-{index}",
            "meta": _tag(),
            "status": "finished",
            "class": {"system": ACT_CODE, "code": ADMISSION_CLASS, "display": "inpatient encounter"},
            "subject": {"reference": f"Patient/{patient.id}"},
            "period": {
                "start": _utc(history.at(admission.start_day)),
                "end": _utc(history.at(admission.end_day)),
            },
            "reasonCode": [{"text": _CAUSE_TEXT[admission.cause]}],
        }
        for index, admission in enumerate(patient.admissions, start=1)
    ]


def _whole(value: float) -> Decimal:
    return Decimal(int(value))


def _tenth(value: float) -> Decimal:
    return Decimal(f"{value:.1f}")


def device_readings(kind: str, values: tuple[float, ...]) -> list[Reading]:
    """The contract readings one device gives for one measurement (a cuff and an oximeter add pulse)."""
    if kind == "body-weight":
        return [Reading("body-weight", Quantity(_tenth(values[0]), "kg"))]
    if kind == "body-temperature":
        return [Reading("body-temperature", Quantity(_tenth(values[0]), "Cel"))]
    if kind == "blood-pressure":
        systolic, diastolic, pulse = values
        mean = math.floor(diastolic + (systolic - diastolic) / 3 + 0.5)
        pressure = tuple(
            Component(part, Quantity(_whole(value), "mm[Hg]"))
            for part, value in (("systolic", systolic), ("diastolic", diastolic), ("mean", mean))
        )
        return [
            Reading("blood-pressure", components=pressure),
            Reading("pulse-rate-cuff", Quantity(_whole(pulse), "/min")),
        ]
    spo2, pulse = values[0], values[1]
    return [
        Reading("spo2", Quantity(_whole(spo2), "%")),
        Reading("pulse-rate-oximeter", Quantity(_whole(pulse), "/min")),
    ]


def _observation_lines(
    history: CohortHistory, patient: PatientHistory
) -> tuple[list[tuple[float, int, bytes]], list[tuple[float, int, bytes]]]:
    """(day, order, line) of every device and staff Observation of `patient`."""
    hub = f"{patient.id}-hub"
    device: list[tuple[float, int, bytes]] = []
    for index, (day, kind_index, row) in enumerate(
        zip(
            patient.reading_days.tolist(),
            patient.reading_kinds.tolist(),
            patient.reading_values.tolist(),
            strict=True,
        )
    ):
        kind = KINDS[kind_index]
        effective = history.at(day)
        for reading in device_readings(kind, tuple(v for v in row if not math.isnan(v))):
            obs = build_observation(
                reading,
                patient_id=patient.id,
                device_id=f"{patient.id}-{DEVICE_SUFFIX[kind]}",
                hub_id=hub,
                effective=effective,
            )
            obs.setdefault("meta", {})["tag"] = [dict(SYNTHETIC_TAG)]
            resource = {"resourceType": "Observation", "id": obs["identifier"][0]["value"], **obs}
            device.append((day, index, orjson.dumps(resource) + b"\n"))
    staff: list[tuple[float, int, bytes]] = []
    order = len(device)
    for day, changes in zip(patient.form_days.tolist(), patient.form_changes.tolist(), strict=True):
        order += 1
        form = change_form(patient, dict(zip(CHANGE_KEYS, changes, strict=True)), history.at(day))
        staff.append((day, order, orjson.dumps(form) + b"\n"))
    return device, staff


_FORM_TITLE = "Early-detection change form (Tidlig Opsporing)"


def change_form(patient: PatientHistory, changes: dict[str, bool], effective: datetime) -> FhirJson:
    """One filled-in change form: a panel with one item per component, true when a change was seen and
    false when it was checked and none was (``models.codes``)."""
    seconds = int(effective.timestamp())
    return {
        "resourceType": "Observation",
        "id": f"{patient.id}-change-form-{seconds}",
        "meta": _tag(),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {
            "coding": [
                {"system": CHANGE_SYSTEM, "code": CHANGE_FORM, "display": "Early-detection change form"}
            ],
            "text": "Early-detection change form (Tidlig Opsporing)",
        },
        "subject": {"reference": f"Patient/{patient.id}"},
        "effectiveDateTime": _utc(effective),
        "performer": [{"display": "Home-care staff (SYNTHETIC)"}],
        "component": [
            {
                "code": {
                    "coding": [{"system": CHANGE_SYSTEM, "code": key, "display": CHANGE_OBSERVATIONS[key]}],
                    "text": CHANGE_OBSERVATIONS[key],
                },
                "valueBoolean": changed,
            }
            for key, changed in changes.items()
        ],
    }
