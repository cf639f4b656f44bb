"""Read a cohort in FHIR Bulk Data NDJSON form into per-patient time series.

`read_cohort(folder)` reads `Patient.ndjson`, `Condition.ndjson`, `Observation.ndjson` and, when present,
`Encounter.ndjson` and `QuestionnaireResponse.ndjson` (one resource per line) and returns a frozen
`Cohort`: for each patient the device readings by vital (times and values), the staff's change
observations, the answers to the daily symptom checks (each answer's ordinal,
`fhir_contract.questionnaire`), the chronic conditions, sex and birth date, and the admissions. A
measurement plan has no FHIR form in this project, so a cohort read from NDJSON has no planned
occurrences; the gateway and the SYNTHETIC generator hand them over as `PlanCheck`s.
Admissions are labels for training and evaluation only: the features a score is computed from never
look at an admission after the day being scored.

Times are kept as float days since the cohort's origin, midnight UTC of the day of the first reading, so
day D is the half-open interval [D, D + 1). The parsing of one resource (`add_resource`) is pure; only
`read_cohort` touches the file system. Unknown resource types and observation codes are skipped;
a missing folder or a line that is not a JSON object is a `CohortReadError` with the file and line.

Values are read in each vital's canonical unit (kg, Cel, mm[Hg]): a FHIR value in another unit the
contract allows is converted with the contract's one table (`fhir_contract.units`). The gateway, which
stores every reading's canonical value at ingest, hands its readings over as `Measurement`s instead
(`patient_cohort`), already converted, and gets the same cohort as from the same readings as FHIR.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from fhir_contract.questionnaire import find_questionnaire
from fhir_contract.units import to_canonical
from models.codes import (
    ACT_CODE,
    ADMISSION_CLASS,
    CHANGE_FORM,
    CHANGE_OBSERVATIONS,
    CHANGE_SYSTEM,
    CONDITION_SNOMED,
)
from models.errors import ModelsError

#: The vitals the models read, in this order everywhere.
VITALS: Final = ("spo2", "pulse", "systolic", "diastolic", "temperature", "weight")

_LOINC: Final = "http://loinc.org"
# LOINC code of a single-valued reading -> vital. Temperature at a named site has its own LOINC code.
_SINGLE: Final[Mapping[str, str]] = {
    "59408-5": "spo2",
    "2708-6": "spo2",
    "8867-4": "pulse",
    "29463-7": "weight",
    "8310-5": "temperature",
    "8328-7": "temperature",
    "8331-1": "temperature",
    "8332-9": "temperature",
    "8333-7": "temperature",
}
_BP_PANEL: Final = "85354-9"
_BP_COMPONENTS: Final[Mapping[str, str]] = {"8480-6": "systolic", "8462-4": "diastolic"}
# The same components by their key in the contract's terminology (a Measurement's components).
_BP_KEYS: Final = tuple(_BP_COMPONENTS.values())
_SNOMED_TO_CONDITION: Final = {code: key for key, (code, _display) in CONDITION_SNOMED.items()}
_SKIPPED_STATUS: Final = frozenset({"preliminary", "entered-in-error", "cancelled", "registered"})
FILES: Final = ("Patient", "Condition", "Observation", "Encounter", "QuestionnaireResponse")


class CohortReadError(ModelsError):
    """A cohort folder that cannot be read: missing, or a line that is not a FHIR resource."""

    def __init__(self, path: Path, reason: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Series:
    """Values of one vital at their times (days since the cohort origin), sorted by time."""

    days: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Admission:
    """A hospital admission: start and (if known) end, in days since the cohort origin."""

    start: float
    end: float | None


@dataclass(frozen=True, slots=True)
class SymptomCheck:
    """One answered daily symptom check: when (days since the cohort origin) and the ordinal of each
    answer (0 fine .. `fhir_contract.questionnaire.WORSE_ORDINAL` worse or present), in item order."""

    day: float
    ordinals: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PlanCheck:
    """One occurrence of the patient's measurement plan that has been judged: due at `due`, counted
    until `deadline` (days since the origin), and whether a reading counted for it
    (`fhir_contract.plan.match_readings`). Known at `deadline`, so a feature of a day before it never
    sees it."""

    due: float
    deadline: float
    done: bool


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """Everything the models know of one patient."""

    patient_id: str
    sex: str | None
    birth_date: date | None
    conditions: frozenset[str]
    readings: Mapping[str, Series]
    changes: tuple[tuple[float, str], ...]  # (day, key) of every change the staff saw (valueBoolean true)
    admissions: tuple[Admission, ...]  # labels only
    symptoms: tuple[SymptomCheck, ...] = ()  # in time order; none: the patient answers no questionnaire
    planned: tuple[PlanCheck, ...] = ()  # in due order; none: no measurement plan known


@dataclass(frozen=True, slots=True)
class Cohort:
    """The patients and the span of days the cohort covers (day 0 is `origin`)."""

    origin: date
    days: int
    patients: tuple[PatientRecord, ...]
    synthetic: bool  # every resource carried the SYNTHETIC tag


@dataclass(frozen=True, slots=True)
class Measurement:
    """One reading already validated and in its type's canonical unit, as the gateway stores it: the
    first LOINC code of its type, its time, and its number or its panel's numbers by component key
    (``{"systolic": 128.0, "diastolic": 80.0}``)."""

    loinc: str
    at: datetime
    value: float | None = None
    components: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Builder:
    sex: dict[str, str | None] = field(default_factory=dict)
    birth: dict[str, date | None] = field(default_factory=dict)
    conditions: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    readings: dict[str, dict[str, list[tuple[datetime, float]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    changes: dict[str, list[tuple[datetime, str]]] = field(default_factory=lambda: defaultdict(list))
    admissions: dict[str, list[tuple[datetime, datetime | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    symptoms: dict[str, list[tuple[datetime, tuple[int, ...]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    planned: dict[str, list[tuple[datetime, datetime, bool]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    all_synthetic: bool = True


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _subject(resource: Mapping[str, Any]) -> str | None:
    ref = (resource.get("subject") or {}).get("reference")
    if isinstance(ref, str) and ref.startswith("Patient/"):
        return ref.removeprefix("Patient/")
    return None


def _quantity(holder: Mapping[str, Any]) -> float | None:
    q = holder.get("valueQuantity")
    if not isinstance(q, dict) or not isinstance(q.get("value"), int | float):
        return None
    unit = q.get("code") or q.get("unit") or ""
    value, _unit = to_canonical(float(q["value"]), str(unit))
    return value


def _codes(concept: Any, system: str) -> list[str]:
    if not isinstance(concept, dict):
        return []
    return [c.get("code", "") for c in concept.get("coding", []) if c.get("system") == system]


def _add_observation(b: _Builder, obs: Mapping[str, Any]) -> None:
    patient = _subject(obs)
    at = _when(obs.get("effectiveDateTime"))
    if patient is None or at is None or obs.get("status") in _SKIPPED_STATUS:
        return
    change_keys = _codes(obs.get("code"), CHANGE_SYSTEM)
    if change_keys:
        # A whole form (a panel of items) or a single item: the changes seen are the true items.
        items = obs.get("component", []) if change_keys[0] == CHANGE_FORM else [obs]
        for item in items if isinstance(items, list) else []:
            keys = _codes(item.get("code"), CHANGE_SYSTEM) if isinstance(item, dict) else []
            if keys and keys[0] in CHANGE_OBSERVATIONS and item.get("valueBoolean") is True:
                b.changes[patient].append((at, keys[0]))
        return
    loinc = _codes(obs.get("code"), _LOINC)
    if _BP_PANEL in loinc:
        for comp in obs.get("component", []):
            for code in _codes(comp.get("code"), _LOINC):
                vital = _BP_COMPONENTS.get(code)
                value = _quantity(comp)
                if vital is not None and value is not None:
                    b.readings[patient][vital].append((at, value))
        return
    vital = next((_SINGLE[c] for c in loinc if c in _SINGLE), None)
    value = _quantity(obs)
    if vital is not None and value is not None:
        b.readings[patient][vital].append((at, value))


def _add_measurement(b: _Builder, patient: str, m: Measurement) -> None:
    """As ``_add_observation`` for the same reading as FHIR: a panel's systolic and diastolic, or the
    vital its LOINC code names."""
    if m.loinc == _BP_PANEL:
        for vital in _BP_KEYS:
            if (value := m.components.get(vital)) is not None:
                b.readings[patient][vital].append((m.at, value))
        return
    single = _SINGLE.get(m.loinc)
    if single is not None and m.value is not None:
        b.readings[patient][single].append((m.at, m.value))


def answer_ordinals(canonical: str, answers: Mapping[str, str]) -> tuple[int, ...] | None:
    """The ordinal of each answer (linkId -> code) to the Questionnaire ``canonical`` (``url|version``),
    in the Questionnaire's item order; None for a Questionnaire the contract does not know. An answer
    whose code the item does not offer is left out (the gateway refuses such a response at ingest)."""
    questionnaire = find_questionnaire(canonical)
    if questionnaire is None:
        return None
    found = []
    for question in questionnaire.questions:
        option = question.option(answers[question.link_id]) if question.link_id in answers else None
        if option is not None:
            found.append(option.ordinal)
    return tuple(found)


def _add_response(b: _Builder, response: Mapping[str, Any]) -> None:
    patient = _subject(response)
    at = _when(response.get("authored"))
    canonical = response.get("questionnaire")
    if (
        patient is None
        or at is None
        or not isinstance(canonical, str)
        or response.get("status") != "completed"
    ):
        return
    answers: dict[str, str] = {}
    for item in response.get("item") or []:
        if not isinstance(item, dict) or not isinstance(item.get("linkId"), str):
            continue
        for answer in item.get("answer") or []:
            code = (answer.get("valueCoding") or {}).get("code") if isinstance(answer, dict) else None
            if isinstance(code, str):
                answers[item["linkId"]] = code
    ordinals = answer_ordinals(canonical, answers)
    if ordinals:
        b.symptoms[patient].append((at, ordinals))


def add_resource(b: _Builder, resource: Mapping[str, Any]) -> None:
    """Fold one resource into the builder; unknown types and codes are skipped."""
    tags = (resource.get("meta") or {}).get("tag") or []
    if not any(t.get("code") == "synthetic" for t in tags if isinstance(t, dict)):
        b.all_synthetic = False
    kind = resource.get("resourceType")
    if kind == "Patient" and isinstance(resource.get("id"), str):
        pid = resource["id"]
        b.sex[pid] = resource.get("gender")
        try:
            b.birth[pid] = date.fromisoformat(resource["birthDate"]) if "birthDate" in resource else None
        except (TypeError, ValueError):
            b.birth[pid] = None
    elif kind == "Condition" and (patient := _subject(resource)) is not None:
        for code in _codes(resource.get("code"), "http://snomed.info/sct"):
            if code in _SNOMED_TO_CONDITION:
                b.conditions[patient].add(_SNOMED_TO_CONDITION[code])
    elif kind == "Observation":
        _add_observation(b, resource)
    elif kind == "QuestionnaireResponse":
        _add_response(b, resource)
    elif kind == "Encounter" and (patient := _subject(resource)) is not None:
        klass = resource.get("class") or {}
        if klass.get("code") != ADMISSION_CLASS or klass.get("system", ACT_CODE) != ACT_CODE:
            return
        period = resource.get("period") or {}
        start = _when(period.get("start"))
        if start is not None:
            b.admissions[patient].append((start, _when(period.get("end"))))


def build_cohort(b: _Builder) -> Cohort:
    """The frozen cohort from everything added; the origin is the day of the first reading (UTC)."""
    patient_ids = sorted(set(b.sex) | set(b.readings) | set(b.changes) | set(b.conditions) | set(b.symptoms))
    times = [t for per in b.readings.values() for s in per.values() for t, _ in s]
    times += [t for per in b.changes.values() for t, _ in per]
    if not times:
        times = [datetime.now(UTC)]
    first, last = min(times).astimezone(UTC), max(times).astimezone(UTC)
    origin = first.date()
    zero = datetime(origin.year, origin.month, origin.day, tzinfo=UTC)

    def day(t: datetime) -> float:
        return (t - zero).total_seconds() / 86400.0

    patients = []
    for pid in patient_ids:
        series = {}
        for vital, points in b.readings.get(pid, {}).items():
            points.sort()
            series[vital] = Series(tuple(day(t) for t, _ in points), tuple(v for _, v in points))
        patients.append(
            PatientRecord(
                patient_id=pid,
                sex=b.sex.get(pid),
                birth_date=b.birth.get(pid),
                conditions=frozenset(b.conditions.get(pid, ())),
                readings=series,
                changes=tuple(sorted((day(t), key) for t, key in b.changes.get(pid, ()))),
                symptoms=tuple(
                    SymptomCheck(day(t), ordinals)
                    for t, ordinals in sorted(b.symptoms.get(pid, ()), key=lambda s: s[0])
                ),
                planned=tuple(
                    PlanCheck(day(due), day(deadline), done)
                    for due, deadline, done in sorted(b.planned.get(pid, ()), key=lambda o: o[0])
                ),
                admissions=tuple(
                    sorted(
                        (
                            Admission(day(s), None if e is None else day(e))
                            for s, e in b.admissions.get(pid, ())
                        ),
                        key=lambda a: a.start,
                    )
                ),
            )
        )
    return Cohort(origin, (last.date() - origin).days + 1, tuple(patients), b.all_synthetic)


def parse_resources(resources: Iterable[Mapping[str, Any]]) -> Cohort:
    """The cohort from resources already in memory (tests, other sources)."""
    b = _Builder()
    for resource in resources:
        add_resource(b, resource)
    return build_cohort(b)


@dataclass(frozen=True, slots=True)
class StoredPatient:
    """One patient as the gateway stores them: enrolment, canonical final measurements, the staff's change
    observations (time and item key of each change seen), hospital stays (admission, discharge or None),
    the answered symptom checks (authored, the answers' ordinals) and the judged occurrences of their
    measurement plan (due, deadline, done)."""

    patient_id: str
    birth_date: date | None
    conditions: Iterable[str]
    measurements: Iterable[Measurement]
    changes: Iterable[tuple[datetime, str]] = ()
    admissions: Iterable[tuple[datetime, datetime | None]] = ()
    symptoms: Iterable[tuple[datetime, tuple[int, ...]]] = ()
    planned: Iterable[tuple[datetime, datetime, bool]] = ()


def stored_cohort(patients: Iterable[StoredPatient]) -> Cohort:
    """The cohort of patients read from the gateway's store (the live score, training from the database).
    The same cohort as ``parse_resources`` of the same Patients, Conditions, Observations and Encounters,
    with no sex (the gateway does not enrol it) and not marked synthetic. The caller passes final readings
    only, as ``add_resource`` skips preliminary ones."""
    b = _Builder(all_synthetic=False)
    for p in patients:
        b.sex[p.patient_id] = None
        b.birth[p.patient_id] = p.birth_date
        b.conditions[p.patient_id].update(c for c in p.conditions if c in CONDITION_SNOMED)
        for measurement in p.measurements:
            _add_measurement(b, p.patient_id, measurement)
        for at, key in p.changes:
            if key in CHANGE_OBSERVATIONS:
                b.changes[p.patient_id].append((at, key))
        b.admissions[p.patient_id].extend(p.admissions)
        b.symptoms[p.patient_id].extend(check for check in p.symptoms if check[1])
        b.planned[p.patient_id].extend(p.planned)
    return build_cohort(b)


def patient_cohort(
    patient_id: str,
    *,
    birth_date: date | None,
    conditions: Iterable[str],
    measurements: Iterable[Measurement],
    changes: Iterable[tuple[datetime, str]] = (),
    admissions: Iterable[tuple[datetime, datetime | None]] = (),
    symptoms: Iterable[tuple[datetime, tuple[int, ...]]] = (),
    planned: Iterable[tuple[datetime, datetime, bool]] = (),
) -> Cohort:
    """One patient's cohort from what the gateway stores (``stored_cohort`` of one patient)."""
    patient = StoredPatient(
        patient_id, birth_date, conditions, measurements, changes, admissions, symptoms, planned
    )
    return stored_cohort([patient])


def read_cohort(folder: Path) -> Cohort:
    """Read `folder`/{Patient,Condition,Observation,Encounter,QuestionnaireResponse}.ndjson; other files
    are ignored."""
    if not folder.is_dir():
        raise CohortReadError(folder, "no such folder (expected FHIR Bulk Data NDJSON files)")
    found = [folder / f"{name}.ndjson" for name in FILES if (folder / f"{name}.ndjson").is_file()]
    if not any(p.name == "Observation.ndjson" for p in found):
        raise CohortReadError(folder, "no Observation.ndjson in the folder")
    b = _Builder()
    for path in found:
        for resource in ndjson_resources(path):
            add_resource(b, resource)
    return build_cohort(b)


def ndjson_resources(path: Path) -> Iterator[dict[str, Any]]:
    """The resources of one NDJSON file, one per line (blank lines skipped); a line that is not a JSON
    object with a resourceType is a CohortReadError naming the file and line."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise CohortReadError(path, f"not JSON ({exc})", number) from exc
            if not isinstance(resource, dict) or "resourceType" not in resource:
                raise CohortReadError(path, "not a FHIR resource (no resourceType)", number)
            yield resource
