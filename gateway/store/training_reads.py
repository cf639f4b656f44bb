"""One municipality's whole history, read in bulk for training (``homewatch models train --database-url``).

``municipality_history`` reads, in seven queries whatever the number of patients (not one per patient), what
the live 30-day risk reads of one patient (``gateway.alerts.admission_risk.patient_history``), for
every patient the municipality has enrolled:

- enrolment: birth date and conditions;
- the final readings with a number, in canonical units (``patient_history.FINAL_READING_SQL``: the rows
  the scorers count), as ``models.cohort_reader.Measurement``s;
- the changes the staff saw (``staff_observations``: every item whose value is true);
- the hospital stays (``encounters``) that happened (``findr_inputs.counts``: not withdrawn), a
  discharge after ``until`` not known yet;
- the answers to the daily symptom checks and the judged occurrences of every version of the
  measurement plans (``gateway.store.symptom_features``; three queries more).

Everything effective after ``until`` (None: everything stored) is left out, so a training run can be
repeated as of a date. Rows of another municipality are never read. ``models.cohort_reader.stored_cohort``
makes the cohort; what the history is trained and judged on is ``models.validation``'s.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from fhir_contract.status import PRELIMINARY
from gateway.store.findr_inputs import WITHDRAWN_STATUSES
from gateway.store.patient_history import FINAL_READING_SQL
from gateway.store.symptom_features import (
    PlanPeriod,
    judged_plan,
    plan_periods,
    planned_reading_times,
    symptom_answers,
    symptom_checks,
)
from models.cohort_reader import Measurement, StoredPatient

# Rows fetched per round trip of the server-side cursor over the readings (a municipality's history is
# millions of rows; this keeps memory to the Measurements being built).
_FETCH_ROWS = 20_000


def municipality_exists(conn: psycopg.Connection[Any], municipality_id: str) -> bool:
    """Whether the municipality is known to this database."""
    row = conn.execute("SELECT 1 FROM municipalities WHERE id = %s", (municipality_id,)).fetchone()
    return row is not None


def history_is_synthetic(conn: psycopg.Connection[Any], municipality_id: str) -> bool:
    """True when the municipality has patients and every one was enrolled as SYNTHETIC (migration 0007)."""
    row = conn.execute(
        "SELECT coalesce(bool_and(synthetic), false) FROM patients WHERE municipality_id = %s",
        (municipality_id,),
    ).fetchone()
    return bool(row and row[0])


def municipality_history(
    conn: psycopg.Connection[Any], municipality_id: str, *, until: datetime | None = None
) -> list[StoredPatient]:
    """Every enrolled patient of the municipality with their readings, staff changes and hospital stays
    effective by ``until`` (everything when None), ordered by patient id (readings in no particular
    order: the cohort sorts them)."""
    bound: Any = until  # NULL: no bound
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            "SELECT id, birth_date, conditions FROM patients WHERE municipality_id = %s ORDER BY id",
            (municipality_id,),
        )
        enrolled = cur.fetchall()
        cur.execute(
            "SELECT s.patient_id, s.effective, item.key FROM staff_observations s"
            " CROSS JOIN LATERAL jsonb_each(s.items) AS item(key, value)"
            " WHERE s.municipality_id = %s AND item.value = 'true'::jsonb"
            " AND s.effective <= coalesce(%s::timestamptz, 'infinity')"
            " ORDER BY s.patient_id, s.effective, s.id, item.key",
            (municipality_id, bound),
        )
        changes: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        for patient_id, effective, key in cur.fetchall():
            changes[patient_id].append((effective, key))
        cur.execute(
            "SELECT patient_id, period_start, period_end FROM encounters"
            " WHERE municipality_id = %s AND NOT (status = ANY(%s::text[]))"
            " AND period_start <= coalesce(%s::timestamptz, 'infinity')"
            " ORDER BY patient_id, period_start, id",
            (municipality_id, sorted(WITHDRAWN_STATUSES), bound),
        )
        stays: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
        for patient_id, start, discharged in cur.fetchall():
            known = discharged if discharged is not None and (until is None or discharged <= until) else None
            stays[patient_id].append((start, known))
        readings = _readings(conn, municipality_id, bound)
        answers = symptom_answers(conn, municipality_id, until=until)
        periods = plan_periods(conn, municipality_id, until=until)
        taken = planned_reading_times(conn, municipality_id, since=None, until=until) if periods else {}
    return [
        StoredPatient(
            patient_id=patient_id,
            birth_date=birth_date,
            conditions=tuple(conditions or ()),
            measurements=readings.get(patient_id, []),
            changes=changes.get(patient_id, []),
            admissions=stays.get(patient_id, []),
            symptoms=symptom_checks(answers.get(patient_id, [])),
            planned=_planned(periods.get(patient_id, []), taken.get(patient_id, {}), until),
        )
        for patient_id, birth_date, conditions in enrolled
    ]


def _planned(
    periods: list[PlanPeriod], taken: dict[str, list[datetime]], until: datetime | None
) -> list[tuple[datetime, datetime, bool]]:
    """The judged occurrences of every version of the patient's plan, up to ``until`` (or the newest
    reading or the time the history is read, when None)."""
    if not periods:
        return []
    end = until or datetime.now(UTC)
    return judged_plan(periods, taken, after=periods[0].set_at, until=end)


def _readings(
    conn: psycopg.Connection[Any], municipality_id: str, until: Any
) -> dict[str, list[Measurement]]:
    """The municipality's final readings by patient (a server-side cursor: the caller's transaction
    holds it; unsorted, which spares the server a sort of the whole history)."""
    out: dict[str, list[Measurement]] = defaultdict(list)
    with conn.cursor(name="training_readings", row_factory=tuple_row) as cur:
        cur.itersize = _FETCH_ROWS
        cur.execute(
            "SELECT patient_id, loinc, effective, canonical_value, canonical_components FROM observations"
            f" WHERE municipality_id = %s AND {FINAL_READING_SQL}"
            " AND effective <= coalesce(%s::timestamptz, 'infinity')",
            (municipality_id, PRELIMINARY, until),
        )
        for patient_id, loinc, effective, value, components in cur:
            numbers = {k: float(v) for k, v in (components or {}).items() if isinstance(v, int | float)}
            out[patient_id].append(Measurement(loinc, effective, value, numbers))
    return out
