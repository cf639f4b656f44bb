"""A patient's stored 30-day admission risks, one per day: what the live 'risk-rise' alert reads.

The offline replay (``homewatch models replay``) has one risk per patient and day, computed for the end of
the day; the gateway stores a risk each time its schedule runs (``gateway.alerts.admission_risk``), which
may be more or less often than daily. ``daily_admission_risks`` gives one per day the way the replay
counts days: UTC days (the model's, ``models/MODEL_CARD.md``), and of a day with several the *last*
(computed from the most readings of that day, as the end-of-day value is); a day without a stored risk
is absent. One query on the ``(municipality_id, patient_id, method, computed_at)`` index.

Left to others: what the series means (``gateway.alerts.risk_rise``), storing the risks
(``gateway.store.scoring``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import psycopg

from gateway.store.reviews import ADMISSION_RISK


@dataclass(frozen=True, slots=True)
class DailyRisk:
    """The last 30-day admission risk stored on one UTC day."""

    day: date
    probability: float
    score_id: int
    computed_at: datetime


def daily_admission_risks(
    conn: psycopg.Connection[Any],
    municipality_id: str,
    patient_id: str,
    *,
    first_day: date,
    until: datetime,
) -> list[DailyRisk]:
    """The last stored risk of each UTC day from ``first_day`` up to ``until`` (scores computed at or
    before it), oldest day first."""
    since = datetime.combine(first_day, time(0), tzinfo=UTC)
    rows = conn.execute(
        "SELECT DISTINCT ON (day) (computed_at AT TIME ZONE 'UTC')::date AS day, score, id, computed_at"
        " FROM scores WHERE municipality_id = %s AND patient_id = %s AND method = %s"
        " AND computed_at >= %s AND computed_at <= %s"
        " ORDER BY day, computed_at DESC, id DESC",
        (municipality_id, patient_id, ADMISSION_RISK, since, until),
    ).fetchall()
    return [DailyRisk(day, float(score), int(score_id), at) for day, score, score_id, at in rows]
