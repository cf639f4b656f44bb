"""A patient's stored readings in canonical units: what the disease rules and the 30-day risk read.

``final_readings`` returns the readings of a time window as the scorers need them: final ones only (a
preliminary value, a cuff's pressure while it inflates, never counts), each with a number, in its
type's canonical unit (``canonical_value`` and ``canonical_components``, stored at ingest: migration
0006), oldest first. One query on the ``(municipality_id, patient_id, kind, effective)`` index, scoped
by municipality like every query of the store.

Left to others: the newest value per kind for NEWS2 (``repository.latest_observations``), what the
readings mean (``gateway.alerts``, ``models``), writing scores (``gateway.store.scoring``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.rows import tuple_row

from fhir_contract.status import PRELIMINARY

#: The stored rows that are readings to score (SQL over ``observations``, one parameter: ``PRELIMINARY``):
#: final ones with a number in the canonical columns. Training reads the same (``training_reads``).
FINAL_READING_SQL: Final = (
    "(canonical_value IS NOT NULL OR canonical_components IS NOT NULL) AND resource->>'status' <> %s"
)


@dataclass(frozen=True, slots=True)
class CanonicalReading:
    """One stored reading in its type's canonical unit: a number (``value``) or a panel's numbers by
    component key (``components``: ``{"systolic": 128.0, ...}``, absent components left out)."""

    kind: str
    loinc: str
    effective: datetime
    identifier: str
    value: float | None
    unit: str | None
    components: dict[str, float]


def final_readings(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    *,
    after: datetime,
    until: datetime,
    kinds: Iterable[str] | None = None,
) -> list[CanonicalReading]:
    """The patient's final readings with a number, effective in ``(after, until]`` (of ``kinds``, or of
    every kind when None), oldest first (ties by identifier)."""
    kind_list = sorted(set(kinds)) if kinds is not None else None
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            "SELECT kind, loinc, effective, identifier, canonical_value, canonical_unit, canonical_components"
            " FROM observations WHERE municipality_id = %s AND patient_id = %s"
            " AND (%s::text[] IS NULL OR kind = ANY(%s::text[]))"
            f" AND effective > %s AND effective <= %s AND {FINAL_READING_SQL}"
            " ORDER BY effective, identifier",
            (municipality_id, patient_id, kind_list, kind_list, after, until, PRELIMINARY),
        )
        return [
            CanonicalReading(
                kind,
                loinc,
                effective,
                identifier,
                value,
                unit,
                {key: float(number) for key, number in (components or {}).items() if number is not None},
            )
            for kind, loinc, effective, identifier, value, unit, components in cur.fetchall()
        ]
