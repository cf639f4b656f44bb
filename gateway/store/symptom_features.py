"""What the 30-day risk reads of issue 21: the patients' symptom-check answers and their measurement plans.

The models turn a patient's answers (``questionnaire_responses``, migration 0020) and the occurrences of
their measurement plan (``measurement_plans``, migration 0019) into features (``models.features``:
worst answer, "worse" answers and unanswered days of the last 7 days; share of the planned measurements
of the last 14 days missed). This module only reads, for one patient (the live score,
``gateway.alerts.admission_risk``) or for every patient of a municipality at once (training,
``gateway.store.training_reads``), always scoped by municipality:

- ``symptom_answers``: each response's authored time, Questionnaire (canonical ``url|version``) and
  answers (linkId -> code). Which ordinal a code means is the contract's
  (``models.cohort_reader.answer_ordinals``).
- ``plan_periods``: every version of a plan with the time it was set and the time the next version
  replaced it (None: in force), with the time zone of the patient's hub (None: the gateway's). An empty
  version (the nurse removed the plan) and one ``parse_plan`` refuses (logged) expect nothing.
- ``planned_reading_times``: when each planned measurement was taken, read from the contract's reading
  kinds (``fhir_contract.plan.READING_KINDS``) as the missing-measurement job reads them (a preliminary
  reading does not count; one without a number does).

``symptom_checks`` and ``judged_plan`` hand them to the models' reader
(``models.cohort_reader.StoredPatient``): the answers' ordinals, and each planned occurrence of a window
judged by ``models.plan_checks`` (the rule the missing alert uses), each version of the plan only for
the time it was in force and never before it was set.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from fhir_contract.plan import READING_KINDS, PlanError, PlanItem, parse_plan
from fhir_contract.status import PRELIMINARY
from models.cohort_reader import answer_ordinals
from models.plan_checks import judged_occurrences

#: A plan's times of day are the home's: its hub's zone, else this one (GatewaySettings.time_zone's
#: default, which the missing-measurement job uses too).
HOME_ZONE: Final = ZoneInfo("Europe/Copenhagen")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredAnswers:
    """One stored response as the models read it."""

    patient_id: str
    authored: datetime
    canonical: str  # the Questionnaire's url|version
    answers: dict[str, str]


@dataclass(frozen=True, slots=True)
class PlanPeriod:
    """One version of a patient's plan: in force from ``set_at`` until ``replaced_at`` (None: still)."""

    patient_id: str
    items: tuple[PlanItem, ...]
    set_at: datetime
    replaced_at: datetime | None
    time_zone: str | None


def symptom_answers(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    *,
    until: datetime | None,
    after: datetime | None = None,
    patient_id: str | None = None,
) -> dict[str, list[StoredAnswers]]:
    """The responses authored in ``(after, until]`` (None: unbounded) of one patient (``patient_id``) or
    of every patient of the municipality, by patient, oldest first."""
    rows = conn.execute(
        "SELECT patient_id, authored, questionnaire || '|' || version, answers FROM questionnaire_responses"
        " WHERE municipality_id = %s AND (%s::text IS NULL OR patient_id = %s::text)"
        " AND authored > coalesce(%s::timestamptz, '-infinity')"
        " AND authored <= coalesce(%s::timestamptz, 'infinity')"
        " ORDER BY patient_id, authored, id",
        (municipality_id, patient_id, patient_id, after, until),
    ).fetchall()
    found: dict[str, list[StoredAnswers]] = defaultdict(list)
    for patient, authored, canonical, answers in rows:
        codes = {str(k): str(v) for k, v in (answers or {}).items() if isinstance(v, str)}
        found[str(patient)].append(StoredAnswers(str(patient), authored, str(canonical), codes))
    return dict(found)


def plan_periods(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    *,
    until: datetime | None,
    patient_id: str | None = None,
) -> dict[str, list[PlanPeriod]]:
    """Every version of the plans set by ``until`` (None: all) of one patient or every patient of the
    municipality, oldest first, each with when the next replaced it; empty and unreadable versions are
    left out (their time still ends the version before them)."""
    rows = conn.execute(
        "SELECT mp.id, mp.patient_id, mp.plan, mp.set_at,"
        " lead(mp.set_at) OVER (PARTITION BY mp.patient_id ORDER BY mp.id),"
        " (SELECT h.settings ->> 'timezone' FROM hubs h WHERE h.municipality_id = mp.municipality_id"
        "  AND h.patient_id = mp.patient_id AND h.revoked_at IS NULL"
        "  ORDER BY h.enrolled_at DESC, h.id LIMIT 1)"
        " FROM measurement_plans mp WHERE mp.municipality_id = %s"
        " AND (%s::text IS NULL OR mp.patient_id = %s::text)"
        " AND mp.set_at <= coalesce(%s::timestamptz, 'infinity')"
        " ORDER BY mp.patient_id, mp.id",
        (municipality_id, patient_id, patient_id, until),
    ).fetchall()
    found: dict[str, list[PlanPeriod]] = defaultdict(list)
    for plan_id, patient, plan, set_at, replaced_at, zone in rows:
        try:
            items = parse_plan(plan)
        except PlanError as exc:
            log.warning(
                "measurement plan %s of patient %s is unreadable (%s); no feature from it",
                plan_id,
                patient,
                exc,
            )
            continue
        if items:
            found[str(patient)].append(PlanPeriod(str(patient), items, set_at, replaced_at, zone))
    return dict(found)


def planned_reading_times(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    patient_id: str | None = None,
) -> dict[str, dict[str, list[datetime]]]:
    """When each measurement a plan may name was taken in ``[since, until]`` (None: unbounded), by
    patient and measurement, oldest first."""
    pairs = [(measurement, kind) for measurement, kinds in READING_KINDS.items() for kind in kinds]
    rows = conn.execute(
        "SELECT o.patient_id, k.measurement, o.effective FROM observations o"
        " JOIN unnest(%s::text[], %s::text[]) AS k(measurement, kind) ON k.kind = o.kind"
        " WHERE o.municipality_id = %s AND (%s::text IS NULL OR o.patient_id = %s::text)"
        " AND o.effective >= coalesce(%s::timestamptz, '-infinity')"
        " AND o.effective <= coalesce(%s::timestamptz, 'infinity')"
        " AND o.resource ->> 'status' IS DISTINCT FROM %s"
        " ORDER BY o.patient_id, k.measurement, o.effective",
        (
            [m for m, _ in pairs],
            [k for _, k in pairs],
            municipality_id,
            patient_id,
            patient_id,
            since,
            until,
            PRELIMINARY,
        ),
    ).fetchall()
    found: dict[str, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for patient, measurement, effective in rows:
        found[str(patient)][str(measurement)].append(effective)
    return {patient: dict(times) for patient, times in found.items()}


def symptom_checks(answers: Sequence[StoredAnswers]) -> list[tuple[datetime, tuple[int, ...]]]:
    """(authored, the answers' ordinals) of each response to a Questionnaire the contract knows."""
    found = []
    for response in answers:
        ordinals = answer_ordinals(response.canonical, response.answers)
        if ordinals:
            found.append((response.authored, ordinals))
    return found


def _zone(period: PlanPeriod, default: ZoneInfo) -> ZoneInfo:
    if period.time_zone is None:
        return default
    try:
        return ZoneInfo(period.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return default


def judged_plan(
    periods: Sequence[PlanPeriod],
    taken: Mapping[str, Sequence[datetime]],
    *,
    after: datetime,
    until: datetime,
    default_zone: ZoneInfo = HOME_ZONE,
) -> list[tuple[datetime, datetime, bool]]:
    """(due, deadline, done) of every occurrence due in ``[after, until)`` whose deadline has passed by
    ``until``, of each plan version while it was in force; ``taken``: the patient's reading times by
    measurement (``planned_reading_times``)."""
    found: list[tuple[datetime, datetime, bool]] = []
    for period in periods:
        start = max(period.set_at, after)
        end = until if period.replaced_at is None else min(period.replaced_at, until)
        if start >= end:
            continue
        judged = judged_occurrences(
            period.items, start=start, end=end, zone=_zone(period, default_zone), taken=taken
        )
        found += [(o.due_at, o.deadline, o.done) for o in judged]
    return found
