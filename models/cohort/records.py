"""A SYNTHETIC `CohortHistory` as the models read it, without FHIR in between.

`history_cohort(history)` returns the `models.cohort_reader.Cohort` that `read_cohort` gives for the
NDJSON `write_ndjson(history, folder)` writes: the same origin (midnight UTC of the day of the first
reading or form), the same times to the second, the same values, changes, conditions and admissions
(a test holds the two equal), and the answers to the daily symptom check, which `write_ndjson` writes as
QuestionnaireResponses. The measurement plan's judged occurrences (`PatientHistory.plan_checks`) are
here only: a plan has no FHIR form in this project, so the NDJSON does not carry it.
Training the day-one default over many populations (`models.default_model`) reads tens of thousands
of patient-months; building and parsing every Observation would take most of the time, so this goes
straight from the history's arrays.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from models.cohort.history import CHANGE_KEYS, KINDS, CohortHistory, PatientHistory
from models.cohort.profiles import MEASUREMENT_VITALS
from models.cohort_reader import Admission, Cohort, PatientRecord, PlanCheck, Series, SymptomCheck

_SECONDS_PER_DAY: Final = 86400.0


def _seconds(days: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Whole seconds since the history's start, as `CohortHistory.at` rounds them (half to even)."""
    rounded: npt.NDArray[np.float64] = np.rint(days * _SECONDS_PER_DAY)
    return rounded


def history_cohort(history: CohortHistory) -> Cohort:
    """The cohort `read_cohort` would read from `write_ndjson(history, ...)`; SYNTHETIC."""
    firsts, lasts = [], []
    for p in history.patients:
        for times in (p.reading_days, p.form_days):
            if times.size:
                firsts.append(float(_seconds(times).min()))
                lasts.append(float(_seconds(times).max()))
    start = history.start.astimezone(UTC)
    if firsts:
        first, last = start + timedelta(seconds=min(firsts)), start + timedelta(seconds=max(lasts))
    else:
        first = last = datetime.now(UTC)
    origin: date = first.date()
    zero = datetime(origin.year, origin.month, origin.day, tzinfo=UTC)
    offset = (start - zero).total_seconds()
    patients = tuple(_record(p, history, offset) for p in history.patients)
    return Cohort(origin, (last.date() - origin).days + 1, patients, True)


def _record(patient: PatientHistory, history: CohortHistory, offset: float) -> PatientRecord:
    def day(days: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        result: npt.NDArray[np.float64] = (offset + _seconds(days)) / _SECONDS_PER_DAY
        return result

    times = day(patient.reading_days)
    points: dict[str, list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]] = {}
    for index, name in enumerate(KINDS):
        rows = patient.reading_kinds == index
        for column, vital in enumerate(MEASUREMENT_VITALS[name]):
            points.setdefault(vital, []).append((times[rows], patient.reading_values[rows, column]))
    readings: dict[str, Series] = {}
    for key, parts in points.items():
        t = np.concatenate([part[0] for part in parts])
        v = np.concatenate([part[1] for part in parts])
        if t.size == 0:
            continue
        order = np.lexsort((v, t))  # as the reader sorts (time, value) pairs
        readings[key] = Series(tuple(t[order].tolist()), tuple(v[order].tolist()))
    form_days = day(patient.form_days)
    changes = sorted(
        (float(form_days[row]), CHANGE_KEYS[column])
        for row, column in zip(*np.nonzero(patient.form_changes), strict=True)
    )
    admissions = tuple(
        Admission(
            float(day(np.array([a.start_day]))[0]),
            float(day(np.array([a.end_day]))[0]),
        )
        for a in sorted(patient.admissions, key=lambda a: a.start_day)
    )
    answer_days = day(patient.answer_days)
    symptoms = tuple(
        SymptomCheck(float(t), tuple(int(o) for o in row))
        for t, row in zip(answer_days.tolist(), patient.answer_ordinals.tolist(), strict=True)
    )
    planned = tuple(
        PlanCheck(float(day(np.array([due]))[0]), float(day(np.array([deadline]))[0]), done)
        for due, deadline, done in patient.plan_checks
    )
    return PatientRecord(
        patient_id=patient.id,
        sex=patient.sex,
        birth_date=patient.birth_date,
        conditions=frozenset(patient.conditions),
        readings=readings,
        changes=tuple(changes),
        admissions=admissions,
        symptoms=symptoms,
        planned=planned,
    )
