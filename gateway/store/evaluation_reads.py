"""What the scorer reads for a batch of patients, in a few queries whatever the batch's size.

The scorer evaluates every reading of a patient from a time on (``since``: the earliest effective time
of the readings ingest announced). For a whole batch of patients it reads:

- ``patients_to_score``: each patient's conditions and NEWS2 scale (one query);
- ``readings_to_score``: the final readings (never a preliminary one: a cuff's pressure while it
  inflates is no blood pressure) of the kinds asked for, from ``since`` on; the newest one of each
  NEWS2 kind before ``since`` (what NEWS2 at the first of them stands on, stale or not, as
  ``repository.latest_observations`` reads it); and, for the patients who need one, the history before
  ``since`` that the disease rules judge a reading against (at most three queries);
- ``own_limits``: every limit a nurse ever set for the patients (``patient_thresholds``; the newest row
  set before a reading is the one in force for it) (one query);
- ``newest_news2_scores``: each patient's newest stored NEWS2 (what the worklist shows), so that an
  unchanged one is not stored again (one query).

Each reading query takes parallel arrays of patients (``unnest``) and reaches the rows of each through a
``LATERAL`` subquery on the index ``observations_patient_time (municipality_id, patient_id, kind,
effective DESC)``: one index range per patient and kind, pruned to the partitions of its times, however
many patients a batch names and however long their histories. The queries are never prepared
(``prepare=False``): each is planned for the batch it reads, not kept generic from a time when the
month's partition was young (``bench/alert_latency.py`` found plans that read every patient's rows for
each patient: seconds a batch).
Values are the canonical ones stored at ingest (migration 0006). This is the scorer's own read, not a
person's: there is no viewer to scope by, only municipalities (every patient is named with its own).

Left to others: what the readings mean (``gateway.alerts.evaluation``), writing scores
(``gateway.store.scoring``) and alerts (``gateway.alerts.lifecycle``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from fhir_contract.status import PRELIMINARY
from models.triage import Limits

PatientKey = tuple[str, str]  # (municipality_id, patient_id)


@dataclass(frozen=True, slots=True)
class PatientToScore:
    """A patient as scoring needs them: their conditions (which disease rules apply) and NEWS2 scale."""

    municipality_id: str
    patient_id: str
    conditions: tuple[str, ...]
    spo2_scale2: bool


@dataclass(frozen=True, slots=True)
class ScoringReading:
    """A final reading in its type's canonical unit: a number (``canonical_value``) or a panel's numbers
    (``canonical_components``); either may be empty (a reading the device sent without a value)."""

    kind: str
    effective: datetime
    identifier: str
    canonical_value: float | None
    canonical_components: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class StoredNews2:
    """A patient's newest stored NEWS2 score: its id, the time of its data, and what a nurse reads of it."""

    id: int
    as_of: datetime
    total: int
    band: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LimitsSet:
    """Limits a nurse set for one vital sign of the patient, and when (they hold from then on)."""

    vital: str
    limits: Limits
    set_at: datetime


_PATIENTS = (
    "SELECT p.municipality_id, p.id, p.conditions, p.spo2_scale2"
    " FROM unnest(%s::text[], %s::text[]) AS w(m, p)"
    " JOIN patients p ON p.municipality_id = w.m AND p.id = w.p"
)
_READING_COLUMNS = "o.kind, o.effective, o.identifier, o.canonical_value, o.canonical_components"
# Every final reading of ``kinds`` in [low, high) of each patient: one range of the patient index per
# patient and kind. OFFSET 0 keeps the subquery a parameterized one: flattened into a join, a batch naming
# most patients got a hash join over a sequential scan of whole partitions. One kind at a time (not
# ``kind = ANY``): then the patient index matches three columns and a range, and no estimate, however
# stale the statistics of a young partition, prefers the primary key (municipality, device, identifier,
# effective), which PostgreSQL 18 would read from end to end for each patient (both found under load).
_RANGE = (
    f"SELECT w.m, w.p, {_READING_COLUMNS}"
    " FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(m, p, low, high)"
    " CROSS JOIN unnest(%s::text[]) AS k(kind)"
    " CROSS JOIN LATERAL (SELECT kind, effective, identifier, canonical_value, canonical_components"
    "  FROM observations WHERE municipality_id = w.m AND patient_id = w.p AND kind = k.kind"
    "  AND effective >= w.low AND effective < w.high AND resource->>'status' <> %s OFFSET 0) o"
)
# The newest final reading of each of ``kinds`` before ``before``, of each patient.
_NEWEST_BEFORE = (
    f"SELECT w.m, w.p, {_READING_COLUMNS}"
    " FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) AS w(m, p, before)"
    " CROSS JOIN unnest(%s::text[]) AS k(kind)"
    " CROSS JOIN LATERAL (SELECT kind, effective, identifier, canonical_value, canonical_components"
    "  FROM observations WHERE municipality_id = w.m AND patient_id = w.p AND kind = k.kind"
    "  AND effective < w.before AND resource->>'status' <> %s ORDER BY effective DESC LIMIT 1) o"
)
_NEWEST_FINAL = (
    "SELECT w.m, w.p, max(o.effective)"
    " FROM unnest(%s::text[], %s::text[]) AS w(m, p)"
    " CROSS JOIN unnest(%s::text[]) AS k(kind)"
    " CROSS JOIN LATERAL (SELECT effective FROM observations"
    "  WHERE municipality_id = w.m AND patient_id = w.p AND kind = k.kind"
    "  AND resource->>'status' <> %s ORDER BY effective DESC LIMIT 1) o"
    " GROUP BY w.m, w.p"
)
# The newest NEWS2 as the worklist finds it (scores_patient_method_latest).
_NEWEST_NEWS2 = (
    "SELECT w.m, w.p, s.id, s.as_of, s.score, s.band, s.detail->'reasons'"
    " FROM unnest(%s::text[], %s::text[]) AS w(m, p)"
    " CROSS JOIN LATERAL (SELECT id, as_of, score, band, detail FROM scores"
    "  WHERE municipality_id = w.m AND patient_id = w.p AND method = 'news2'"
    "  ORDER BY computed_at DESC, id DESC LIMIT 1) s"
)
_OWN_LIMITS = (
    "SELECT t.municipality_id, t.patient_id, t.vital, t.red_low, t.yellow_low, t.yellow_high, t.red_high,"
    " t.set_at FROM unnest(%s::text[], %s::text[]) AS w(m, p)"
    " JOIN patient_thresholds t ON t.patient_id = w.p AND t.municipality_id = w.m"
    " ORDER BY t.set_at, t.id"
)


def _columns(keys: Iterable[PatientKey]) -> tuple[list[str], list[str]]:
    pairs = list(keys)
    return [m for m, _ in pairs], [p for _, p in pairs]


def patients_to_score(
    conn: psycopg.Connection[Any], keys: Collection[PatientKey]
) -> dict[PatientKey, PatientToScore]:
    """The enrolled patients among ``keys``; an unknown one (or one of another municipality) is absent."""
    if not keys:
        return {}
    rows = conn.execute(_PATIENTS, _columns(keys), prepare=False).fetchall()
    return {
        (m, p): PatientToScore(m, p, tuple(conditions or ()), bool(scale2))
        for m, p, conditions, scale2 in rows
    }


def _reading(row: tuple[Any, ...]) -> ScoringReading:
    kind, effective, identifier, value, components = row
    return ScoringReading(kind, effective, identifier, value, dict(components or {}))


def readings_to_score(
    conn: psycopg.Connection[Any],
    since: Mapping[PatientKey, datetime],
    *,
    kinds: Collection[str],
    newest_before_kinds: Collection[str],
    history_of: Collection[PatientKey] = (),
    history: timedelta = timedelta(0),
    history_kinds: Collection[str] = (),
) -> dict[PatientKey, list[ScoringReading]]:
    """Each patient's final readings of ``kinds`` effective at or after ``since[patient]``, the newest
    one of each of ``newest_before_kinds`` before it, and, for a patient in ``history_of``, every reading
    of ``history_kinds`` in the ``history`` before it; oldest first (ties by identifier), each once."""
    if not since:
        return {}
    found: dict[PatientKey, dict[tuple[str, str, datetime], ScoringReading]] = {key: {} for key in since}
    keys = sorted(since)
    municipalities, patients = _columns(keys)
    starts = [since[key] for key in keys]
    queries: list[tuple[str, tuple[Any, ...]]] = [
        (_RANGE, (municipalities, patients, starts, ["infinity"] * len(keys), sorted(kinds), PRELIMINARY)),
        (_NEWEST_BEFORE, (municipalities, patients, starts, sorted(newest_before_kinds), PRELIMINARY)),
    ]
    back = sorted(key for key in history_of if key in since)
    if back and history_kinds:
        ms, ps = _columns(back)
        highs = [since[key] for key in back]
        lows = [high - history for high in highs]
        queries.append((_RANGE, (ms, ps, lows, highs, sorted(history_kinds), PRELIMINARY)))
    with conn.cursor(row_factory=tuple_row) as cur:
        for query, params in queries:
            for row in cur.execute(query, params, prepare=False).fetchall():
                reading = _reading(row[2:])
                found[(row[0], row[1])][(reading.kind, reading.identifier, reading.effective)] = reading
    return {
        key: sorted(readings.values(), key=lambda r: (r.effective, r.identifier))
        for key, readings in found.items()
    }


def newest_final_reading_times(
    conn: psycopg.Connection[Any], keys: Collection[PatientKey], kinds: Collection[str]
) -> dict[PatientKey, datetime]:
    """When each patient's newest final reading of ``kinds`` was taken; a patient without one is absent."""
    if not keys or not kinds:
        return {}
    municipalities, patients = _columns(sorted(keys))
    rows = conn.execute(
        _NEWEST_FINAL, (municipalities, patients, sorted(kinds), PRELIMINARY), prepare=False
    ).fetchall()
    return {(m, p): newest for m, p, newest in rows}


def own_limits(
    conn: psycopg.Connection[Any], keys: Collection[PatientKey]
) -> dict[PatientKey, list[LimitsSet]]:
    """Every limit ever set for each patient, oldest first; a patient without any is absent."""
    if not keys:
        return {}
    found: dict[PatientKey, list[LimitsSet]] = {}
    for m, p, vital, red_low, yellow_low, yellow_high, red_high, set_at in conn.execute(
        _OWN_LIMITS, _columns(sorted(keys)), prepare=False
    ).fetchall():
        found.setdefault((m, p), []).append(
            LimitsSet(vital, Limits(red_low, yellow_low, yellow_high, red_high), set_at)
        )
    return found


def newest_news2_scores(
    conn: psycopg.Connection[Any], keys: Collection[PatientKey]
) -> dict[PatientKey, StoredNews2]:
    """Each patient's newest stored NEWS2 score (newest computed, as the worklist orders them); a patient
    without one is absent."""
    if not keys:
        return {}
    rows = conn.execute(_NEWEST_NEWS2, _columns(sorted(keys)), prepare=False).fetchall()
    return {
        (m, p): StoredNews2(score_id, as_of, int(total), band, tuple(str(r) for r in reasons or ()))
        for m, p, score_id, as_of, total, band, reasons in rows
    }
