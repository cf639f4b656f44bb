"""Import a FHIR Bulk Data NDJSON cohort (``homewatch models cohort``'s) into a gateway database.

What ``homewatch models import`` does, so that a gateway can train on a history it did not record itself
(a test, a demonstration, a municipality moving from another system). It stores each resource where the
gateway's own paths would have put it, through the store's functions, not a second ingest:

- ``Patient`` + ``Condition``: enrolled (``repository.enroll_patient``) in the municipality, which is
  created when missing; a patient whose resources carry the SYNTHETIC tag (``models.codes.SYNTHETIC_TAG``)
  is enrolled as synthetic (migration 0007), so everything the gateway serves about them says so. A
  patient enrolled already is left as it is (its care team, GP and phone are the gateway's, not the file's).
- device ``Observation``s: validated by the contract (``fhir_contract.validate``) and stored with
  ``repository.insert_observation_batch`` (COPY, idempotent on the reading, canonical values as ingest
  stores them); the hub and devices they name are enrolled for the patient first, as an administrator
  would before switching a hub on. The SYNTHETIC tag is checked here as a list of Codings and left out
  of the structure check, which would otherwise send every resource to ``fhir.resources`` (ten times
  slower); the resource is stored as it is, tag included.
- the staff's change forms (and single items; ``models.codes.CHANGE_SYSTEM``) into ``staff_observations``
  and the hospital stays (``Encounter`` of class IMP, ACUTE or NONAC) into ``encounters``, the columns
  ``findr_inputs`` fills (source 'fhir', recorded by 'import'), in bulk: a staging table filled by COPY,
  then one ``INSERT ... ON CONFLICT`` keyed on the identifier, as ``findr_inputs`` keys them.

A second import of the same folder adds nothing. A resource that cannot be stored is counted and the
first reasons kept (``ImportCounts``); the file stays the record of it. Each batch commits on its own
(the connection must be in autocommit mode), so an interrupted import is resumed by running it again.
A folder or line that is not NDJSON, or an id another municipality holds, is a ``CohortImportError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import orjson
import psycopg
from psycopg.rows import tuple_row

from fhir_contract.validate import ContractViolation, ValidObservation, validate_observation
from gateway.store.errors import StoreError
from gateway.store.findr_inputs import SOURCES
from gateway.store.repository import (
    DeliveredObservation,
    Device,
    Hub,
    Municipality,
    Patient,
    enroll_device,
    enroll_hub,
    enroll_municipality,
    enroll_patient,
    hub_assignments,
    insert_observation_batch,
)
from models.codes import (
    ACT_CODE,
    CHANGE_FORM,
    CHANGE_OBSERVATIONS,
    CHANGE_SYSTEM,
    CONDITION_SNOMED,
    SNOMED,
    SYNTHETIC_TAG,
)
from models.cohort_reader import CohortReadError, ndjson_resources

RECORDED_BY: Final = "import"
SOURCE: Final = SOURCES[0]  # 'fhir': the rows arrived as FHIR resources
#: The classes of an Encounter that is a hospital stay (``encounters``, migration 0014).
STAY_CLASSES: Final = frozenset({"IMP", "ACUTE", "NONAC"})
# An identifier for a resource that has none (the cohort's forms and Encounters have only an id).
_ID_SYSTEM: Final = "urn:homewatch:import"
# Device readings stored per transaction: large enough for COPY to pay, small enough to resume.
BATCH: Final = 20_000
# How many reasons for resources not stored are kept for the report.
_REASONS: Final = 5
_SKIPPED_STATUS: Final = frozenset({"preliminary", "entered-in-error", "cancelled", "registered"})
_CONDITION_KEYS: Final = {code: key for key, (code, _display) in CONDITION_SNOMED.items()}
# The kind of device behind each kind of reading (``devices.kind``, as the demo enrols them).
_DEVICE_KIND: Final = {
    "blood-pressure": "blood-pressure-cuff",
    "pulse-rate-cuff": "blood-pressure-cuff",
    "spo2": "pulse-oximeter",
    "pulse-rate-oximeter": "pulse-oximeter",
    "body-weight": "scale",
    "body-temperature": "thermometer",
}


class CohortImportError(StoreError):
    """A cohort that cannot be imported: no such folder, a line that is not a FHIR resource, or ids
    another municipality holds. Nothing of the failing step was written."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(slots=True)
class ImportCounts:
    """What an import stored (new rows only: a second import of the same folder counts zeros) and
    what it did not store, with the first few reasons."""

    municipality_created: bool = False
    patients: int = 0
    patients_in_file: int = 0
    observations: int = 0
    duplicate_observations: int = 0
    staff_observations: int = 0
    encounters: int = 0
    encounters_updated: int = 0
    not_stored: int = 0
    reasons: list[str] = field(default_factory=list)

    def refuse(self, reason: str) -> None:
        self.not_stored += 1
        if len(self.reasons) < _REASONS:
            self.reasons.append(reason)


def _lines(folder: Path, name: str) -> Iterator[dict[str, Any]]:
    """The resources of ``folder/name.ndjson``, one per line (none when the file is absent)."""
    path = folder / f"{name}.ndjson"
    if not path.is_file():
        return
    try:
        yield from ndjson_resources(path)
    except CohortReadError as exc:
        where = f"{exc.path}:{exc.line}" if exc.line is not None else str(exc.path)
        raise CohortImportError(where, exc.reason) from exc


def _tagged_synthetic(resource: Mapping[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(
        isinstance(t, dict) and t.get("system") == SYNTHETIC_TAG["system"] and t.get("code") == "synthetic"
        for t in tags
    )


def _subject(resource: Mapping[str, Any]) -> str | None:
    ref = (resource.get("subject") or {}).get("reference")
    return ref.removeprefix("Patient/") if isinstance(ref, str) and ref.startswith("Patient/") else None


def _identifier(resource: Mapping[str, Any]) -> str:
    """``system|value`` of the resource's first identifier; else one made from its type and id."""
    for item in resource.get("identifier") or []:
        if isinstance(item, dict) and isinstance(item.get("value"), str):
            return f"{item.get('system', '')}|{item['value']}"
    return f"{_ID_SYSTEM}|{resource.get('resourceType')}/{resource.get('id')}"


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _codes(concept: Any, system: str) -> list[str]:
    if not isinstance(concept, dict):
        return []
    return [
        str(c.get("code"))
        for c in concept.get("coding") or []
        if isinstance(c, dict) and c.get("system") == system
    ]


# --- patients -----------------------------------------------------------------------------------------


def _enrol(
    conn: psycopg.Connection[Any], folder: Path, municipality: Municipality, counts: ImportCounts
) -> None:
    """The municipality (when missing) and the Patients not enrolled yet, with their Conditions, in one
    transaction."""
    patients: dict[str, Mapping[str, Any]] = {p["id"]: p for p in _lines(folder, "Patient") if "id" in p}
    conditions: dict[str, set[str]] = {pid: set() for pid in patients}
    for condition in _lines(folder, "Condition"):
        pid = _subject(condition)
        if pid in conditions:
            conditions[pid].update(
                _CONDITION_KEYS[c] for c in _codes(condition.get("code"), SNOMED) if c in _CONDITION_KEYS
            )
    counts.patients_in_file = len(patients)
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("SELECT 1 FROM municipalities WHERE id = %s", (municipality.id,))
        if cur.fetchone() is None:
            enroll_municipality(conn, municipality)
            counts.municipality_created = True
        cur.execute("SELECT id, municipality_id FROM patients WHERE id = ANY(%s)", (list(patients),))
        known: dict[str, str] = {str(pid): str(m) for pid, m in cur.fetchall()}
        elsewhere = sorted(pid for pid, m in known.items() if m != municipality.id)
        if elsewhere:
            raise CohortImportError(
                str(folder),
                f"{len(elsewhere)} patient ids are enrolled in another municipality (e.g. {elsewhere[0]})",
            )
        for pid, resource in patients.items():
            if pid in known:  # enrolled before: left as it is (a care team or GP set since stays)
                continue
            names = resource.get("name") or []
            name = next((n.get("text") for n in names if isinstance(n, dict) and n.get("text")), None)
            try:
                born = date.fromisoformat(resource["birthDate"]) if "birthDate" in resource else None
            except (TypeError, ValueError):
                born = None
            enroll_patient(
                conn,
                Patient(
                    municipality.id,
                    pid,
                    str(name or f"Patient {pid}"),
                    birth_date=born,
                    conditions=tuple(sorted(conditions[pid])),
                    synthetic=_tagged_synthetic(resource),
                ),
            )
        counts.patients = len(patients) - len(known)


def _enrolled(conn: psycopg.Connection[Any], municipality_id: str) -> set[str]:
    rows = conn.execute("SELECT id FROM patients WHERE municipality_id = %s", (municipality_id,)).fetchall()
    return {str(pid) for (pid,) in rows}


# --- device readings ----------------------------------------------------------------------------------


def _valid(resource: dict[str, Any]) -> ValidObservation:
    """The contract's verdict on a device Observation; a SYNTHETIC tag (a list of Codings) is checked
    here and kept in the stored resource (see the module text)."""
    meta = resource.get("meta")
    if not isinstance(meta, dict) or "tag" not in meta:
        return validate_observation(resource)
    tags = meta["tag"]
    if not isinstance(tags, list) or not all(
        isinstance(t, dict) and t and all(isinstance(v, str) and v.strip() for v in t.values()) for t in tags
    ):
        raise ContractViolation("invalid-fhir", "meta.tag is not a list of Codings")
    untagged = {**resource, "meta": {k: v for k, v in meta.items() if k != "tag"}}
    return dataclasses.replace(validate_observation(untagged), resource=resource)


def _enrol_devices(
    conn: psycopg.Connection[Any], municipality_id: str, rows: list[DeliveredObservation], seen: set[str]
) -> None:
    """Enrol the hubs and devices the batch names and ``seen`` does not hold yet: a hub for its one
    patient (one of another patient is a conflict), each device on the hub it reports through."""
    wanted: dict[str, tuple[str, dict[str, str]]] = {}
    for row in rows:
        obs = row.observation
        if obs.device_id in seen:
            continue
        hub = wanted.setdefault(row.hub_id, (obs.patient_id, {}))
        if hub[0] != obs.patient_id:
            raise CohortImportError(
                f"hub {row.hub_id}", f"reports for patients {hub[0]} and {obs.patient_id}"
            )
        hub[1][obs.device_id] = _DEVICE_KIND.get(obs.kind, "sensor")
    if not wanted:
        return
    assigned = hub_assignments(conn, [(municipality_id, hub) for hub in wanted])
    with conn.transaction():
        for hub_id, (patient_id, devices) in wanted.items():
            current = assigned.get((municipality_id, hub_id))
            if current is not None and current.patient_id != patient_id:
                raise CohortImportError(f"hub {hub_id}", f"is enrolled for patient {current.patient_id}")
            if current is None:
                enroll_hub(conn, Hub(municipality_id, hub_id, patient_id))
            for device_id, kind in devices.items():
                if current is None or device_id not in current.device_ids:
                    enroll_device(conn, Device(municipality_id, device_id, hub_id, patient_id, kind))
                seen.add(device_id)


def _store_readings(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    rows: list[DeliveredObservation],
    seen: set[str],
    counts: ImportCounts,
) -> None:
    _enrol_devices(conn, municipality_id, rows, seen)
    with conn.transaction():
        result = insert_observation_batch(conn, rows)
    counts.observations += result.inserted
    counts.duplicate_observations += result.duplicates
    for position in result.conflicts:
        counts.refuse(f"reading {rows[position].observation.identifier} is stored already with other values")


# --- staff change forms and hospital stays ------------------------------------------------------------


def _change_items(resource: Mapping[str, Any], keys: list[str]) -> dict[str, bool]:
    """A form's items (or a single item) as ``{key: change seen}``; items not answered are absent."""
    entries = (resource.get("component") or []) if keys[0] == CHANGE_FORM else [resource]
    items: dict[str, bool] = {}
    for entry in entries if isinstance(entries, list) else []:
        codes = _codes(entry.get("code"), CHANGE_SYSTEM) if isinstance(entry, dict) else []
        if codes and codes[0] in CHANGE_OBSERVATIONS and isinstance(entry.get("valueBoolean"), bool):
            items[codes[0]] = entry["valueBoolean"]
    return items


_FORM_STAGING: Final = "_import_staff_staging"
_STAY_STAGING: Final = "_import_stay_staging"


def _store_forms(
    conn: psycopg.Connection[Any], municipality_id: str, forms: list[tuple[Any, ...]], counts: ImportCounts
) -> None:
    """(patient, identifier, effective, items, resource) rows into ``staff_observations``: new
    identifiers only; one already stored for another patient is refused and counted."""
    if not forms:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_FORM_STAGING} (patient_id text, identifier text,"
            " effective timestamptz, items jsonb, resource jsonb) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY {_FORM_STAGING} FROM STDIN") as copy:
            for patient_id, identifier, effective, items, resource in forms:
                copy.write_row(
                    (
                        patient_id,
                        identifier,
                        effective,
                        orjson.dumps(items).decode(),
                        orjson.dumps(resource).decode(),
                    )
                )
        cur.execute(
            "INSERT INTO staff_observations (municipality_id, patient_id, identifier, effective, items,"
            " recorded_by, source, resource)"
            f" SELECT DISTINCT ON (identifier) %s, patient_id, identifier, effective, items, %s, %s, resource"
            f" FROM {_FORM_STAGING} ORDER BY identifier"
            " ON CONFLICT (municipality_id, identifier) DO NOTHING",
            (municipality_id, RECORDED_BY, SOURCE),
        )
        counts.staff_observations += cur.rowcount
        cur.execute(
            f"SELECT s.identifier FROM {_FORM_STAGING} s JOIN staff_observations o"
            " ON o.municipality_id = %s AND o.identifier = s.identifier AND o.patient_id <> s.patient_id",
            (municipality_id,),
        )
        for (identifier,) in cur.fetchall():
            counts.refuse(f"change form {identifier} is stored already for another patient")


def _store_stays(
    conn: psycopg.Connection[Any], municipality_id: str, stays: list[tuple[Any, ...]], counts: ImportCounts
) -> None:
    """(patient, identifier, status, class, start, end, resource) rows into ``encounters``: a new
    identifier is created, a stored one of the same patient updated when it differs (a discharge
    later), as ``findr_inputs.store_encounter`` does; one of another patient is refused and counted."""
    if not stays:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAY_STAGING} (patient_id text, identifier text,"
            " status text, class_code text, period_start timestamptz, period_end timestamptz,"
            " resource jsonb) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY {_STAY_STAGING} FROM STDIN") as copy:
            for patient_id, identifier, status, klass, start, end, resource in stays:
                copy.write_row(
                    (patient_id, identifier, status, klass, start, end, orjson.dumps(resource).decode())
                )
        cur.execute(
            "INSERT INTO encounters AS e (municipality_id, patient_id, identifier, status, class_code,"
            " period_start, period_end, recorded_by, source, resource)"
            " SELECT DISTINCT ON (identifier) %s, patient_id, identifier, status, class_code, period_start,"
            f" period_end, %s, %s, resource FROM {_STAY_STAGING} ORDER BY identifier"
            " ON CONFLICT (municipality_id, identifier) DO UPDATE SET status = EXCLUDED.status,"
            " class_code = EXCLUDED.class_code, period_start = EXCLUDED.period_start,"
            " period_end = EXCLUDED.period_end, recorded_by = EXCLUDED.recorded_by,"
            " source = EXCLUDED.source, resource = EXCLUDED.resource, updated_at = now()"
            " WHERE e.patient_id = EXCLUDED.patient_id AND (e.status, e.class_code, e.period_start,"
            " e.period_end) IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.class_code,"
            " EXCLUDED.period_start, EXCLUDED.period_end)"
            " RETURNING (xmax = 0)",
            (municipality_id, RECORDED_BY, SOURCE),
        )
        for (created,) in cur.fetchall():
            if created:
                counts.encounters += 1
            else:
                counts.encounters_updated += 1
        cur.execute(
            f"SELECT s.identifier FROM {_STAY_STAGING} s JOIN encounters o"
            " ON o.municipality_id = %s AND o.identifier = s.identifier AND o.patient_id <> s.patient_id",
            (municipality_id,),
        )
        for (identifier,) in cur.fetchall():
            counts.refuse(f"Encounter {identifier} is stored already for another patient")


def _stay(resource: Mapping[str, Any], patient_id: str) -> tuple[Any, ...] | str:
    """The ``encounters`` row of a hospital stay; a string (why not) for any other Encounter."""
    klass = resource.get("class") or {}
    if (
        not isinstance(klass, dict)
        or klass.get("code") not in STAY_CLASSES
        or klass.get("system", ACT_CODE) != ACT_CODE
    ):
        return ""  # not a hospital stay: not for this table, and nothing wrong with it
    period = resource.get("period") or {}
    start = _when(period.get("start"))
    end = _when(period.get("end")) if period.get("end") is not None else None
    if start is None or (period.get("end") is not None and end is None):
        return f"Encounter {resource.get('id')}: period.start (and end, when given) must be times with a zone"
    if end is not None and end < start:
        return f"Encounter {resource.get('id')}: discharged before admitted"
    status = resource.get("status")
    if not isinstance(status, str):
        return f"Encounter {resource.get('id')}: no status"
    return (patient_id, _identifier(resource), status, klass["code"], start, end, dict(resource))


# --- the import ---------------------------------------------------------------------------------------


def import_cohort(
    conn: psycopg.Connection[Any], folder: Path, municipality_id: str, *, municipality_name: str | None = None
) -> ImportCounts:
    """Import the NDJSON cohort in ``folder`` into the municipality (created, named ``municipality_name``,
    when missing). ``conn`` in autocommit mode: each step commits on its own."""
    if not folder.is_dir() or not (folder / "Patient.ndjson").is_file():
        raise CohortImportError(str(folder), "no such folder with a Patient.ndjson (FHIR Bulk Data NDJSON)")
    counts = ImportCounts()
    name = municipality_name or f"Municipality {municipality_id}"
    _enrol(conn, folder, Municipality(municipality_id, name), counts)
    patients = _enrolled(conn, municipality_id)
    seen_devices: set[str] = set()
    batch: list[DeliveredObservation] = []
    forms: list[tuple[Any, ...]] = []
    for resource in _lines(folder, "Observation"):
        where = f"Observation {resource.get('id')}"
        patient_id = _subject(resource)
        if patient_id not in patients:
            counts.refuse(f"{where}: its patient is not enrolled in municipality {municipality_id}")
            continue
        change = _codes(resource.get("code"), CHANGE_SYSTEM)
        if change:
            effective = _when(resource.get("effectiveDateTime"))
            items = _change_items(resource, change)
            if resource.get("status") in _SKIPPED_STATUS:
                counts.refuse(f"{where}: status {resource.get('status')}")
            elif effective is None or not items:
                counts.refuse(f"{where}: a change form needs effectiveDateTime with a zone and items")
            else:
                forms.append((patient_id, _identifier(resource), effective, items, resource))
            continue
        try:
            obs = _valid(resource)
        except ContractViolation as exc:
            counts.refuse(f"{where}: {exc}")
            continue
        batch.append(DeliveredObservation(municipality_id, obs.hub_id or f"{obs.patient_id}-hub", obs))
        if len(batch) >= BATCH:
            _store_readings(conn, municipality_id, batch, seen_devices, counts)
            batch = []
    if batch:
        _store_readings(conn, municipality_id, batch, seen_devices, counts)
    _store_forms(conn, municipality_id, forms, counts)
    stays: list[tuple[Any, ...]] = []
    for resource in _lines(folder, "Encounter"):
        patient_id = _subject(resource)
        if patient_id not in patients:
            counts.refuse(f"Encounter {resource.get('id')}: its patient is not enrolled in {municipality_id}")
            continue
        row = _stay(resource, patient_id)
        if isinstance(row, str):
            if row:
                counts.refuse(row)
            continue
        stays.append(row)
    _store_stays(conn, municipality_id, stays, counts)
    return counts
