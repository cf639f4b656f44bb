"""What the monitoring page of the active model stands on: a municipality's scored patient-days and what
followed them.

``monitored_patient_days`` returns, for one municipality and a window of score times, one row per
patient, model version and day (UTC) with a stored 30-day risk (``scores``, method
``admission-risk-30d``; the version that scored it is ``detail->>'model'``; of several scores of one
day the newest counts), with

- the first inpatient admission (``encounters``) that started 1-30 days after that day, in whole UTC days,
  as the model's label is defined (``models.admission_risk.labels``: day D is positive when a stay
  starts on day D+1 .. D+30); a stay 31 days later is not one;
- the NEWS2 of the same patient at that time: the newest stored NEWS2 score (method ``news2``, stored
  by ``gateway.alerts.scorer`` at the newest reading) of the 24 hours up to the risk score's ``as_of``;
  None when there is none (the scorer stores a NEWS2 whenever a new reading changes it or is 10
  minutes newer, so a day with vitals has one);
- whether the day's 30-day window has closed: its last day (D+30) lies before today (UTC) of ``now``.

Only rows whose outcome is already known are returned: the window has closed, or an admission has
already been seen within it. Patient-days in hospital (a stay spanning that day, from its start day to
its discharge day, or still open) are left out, as training leaves them out. Stays marked
``cancelled`` or ``entered-in-error`` were withdrawn by their sender and count for nothing
(``findr_inputs.WITHDRAWN_STATUSES``). Every table is read by
the municipality (scores and encounters by municipality and patient, the patient joined on both), so
another municipality's patient ids reach nothing.

The figures are ``models.monitoring``'s; who may see them is the route's. Nothing here returns a name,
and the patient ids only serve the patient bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import psycopg

from gateway.store.findr_inputs import WITHDRAWN_STATUSES
from models.admission_risk import HORIZON_DAYS

# The methods as their writers store them (gateway.alerts.admission_risk.METHOD, gateway.alerts.scorer);
# named here, not imported, so that the store does not import the jobs that import it (a test holds
# them equal).
RISK_METHOD: Final = "admission-risk-30d"
NEWS2_METHOD: Final = "news2"
# How old a NEWS2 may be and still stand for the day of a risk score: a day's worth.
NEWS2_LOOKBACK_HOURS: Final = 24


@dataclass(frozen=True, slots=True)
class MonitoredDay:
    """One scored patient-day whose outcome is known."""

    patient_id: str
    version: str  # the model version that scored it ('unknown' when the score does not say)
    as_of: datetime
    risk: float
    news2: float | None
    admission_id: int | None  # encounters.id of the first stay starting 1-30 days after; None: none
    window_closed: bool  # all 30 days have passed (False: an admission came before they did)

    @property
    def admitted(self) -> bool:
        return self.admission_id is not None


# The NEWS2 beside each risk score is found in one pass over both kinds of score (an "as-of join"): the
# patient's scores in time order, NEWS2 before a risk score of the same instant; each NEWS2 starts a
# group (a running count), and a risk score takes the NEWS2 that began its group, when recent enough.
# A lateral lookup per risk score would scan the patient's NEWS2 history once per day scored.
_QUERY = """
WITH risk AS (
    SELECT DISTINCT ON (s.patient_id, version, day)
           s.patient_id, COALESCE(s.detail->>'model', 'unknown') AS version, s.as_of, s.score,
           (s.as_of AT TIME ZONE 'UTC')::date AS day
    FROM scores s
    JOIN patients p ON p.id = s.patient_id AND p.municipality_id = s.municipality_id
    WHERE s.municipality_id = %(m)s AND s.method = %(risk)s AND s.as_of >= %(since)s AND s.as_of <= %(now)s
    ORDER BY s.patient_id, version, day, s.as_of DESC, s.id DESC
),
merged AS (
    SELECT n.patient_id, n.as_of, 0 AS kind, n.id, n.score AS news2, NULL::text AS version,
           NULL::double precision AS risk, NULL::date AS day
    FROM scores n
    WHERE n.municipality_id = %(m)s AND n.method = %(news2)s AND n.as_of <= %(now)s
      AND n.as_of > %(since)s - make_interval(hours => %(lookback)s)
      AND n.patient_id IN (SELECT patient_id FROM risk)
    UNION ALL
    SELECT patient_id, as_of, 1, 0, NULL, version, score, day FROM risk
),
grouped AS (
    SELECT *, count(*) FILTER (WHERE kind = 0) OVER (
        PARTITION BY patient_id ORDER BY as_of, kind, id ROWS UNBOUNDED PRECEDING) AS news2_group
    FROM merged
),
carried AS (
    SELECT *, first_value(news2) OVER g AS group_news2, first_value(as_of) OVER g AS group_news2_at
    FROM grouped
    WINDOW g AS (PARTITION BY patient_id, news2_group ORDER BY as_of, kind, id)
)
SELECT r.patient_id, r.version, r.as_of, r.risk,
       CASE WHEN r.news2_group > 0 AND r.group_news2_at > r.as_of - make_interval(hours => %(lookback)s)
            THEN r.group_news2 END,
       a.id, r.day + %(horizon)s < %(today)s
FROM carried r
LEFT JOIN LATERAL (
    SELECT e.id FROM encounters e
    WHERE e.municipality_id = %(m)s AND e.patient_id = r.patient_id AND e.status <> ALL(%(not_a_stay)s)
      AND e.period_start <= %(now)s
      AND (e.period_start AT TIME ZONE 'UTC')::date - r.day BETWEEN 1 AND %(horizon)s
    ORDER BY e.period_start, e.id
    LIMIT 1
) a ON true
WHERE r.kind = 1
  AND (r.day + %(horizon)s < %(today)s OR a.id IS NOT NULL)
  AND NOT EXISTS (
    SELECT 1 FROM encounters h
    WHERE h.municipality_id = %(m)s AND h.patient_id = r.patient_id AND h.status <> ALL(%(not_a_stay)s)
      AND h.period_start <= %(now)s AND (h.period_start AT TIME ZONE 'UTC')::date <= r.day
      AND (h.period_end IS NULL OR (h.period_end AT TIME ZONE 'UTC')::date >= r.day)
  )
ORDER BY r.version, r.patient_id, r.as_of
"""


def monitored_patient_days(
    conn: psycopg.Connection[Any], municipality_id: str, *, since: datetime, now: datetime
) -> list[MonitoredDay]:
    """The municipality's scored patient-days with ``since <= as_of <= now`` whose outcome is known as
    of ``now`` (module docstring), by version, patient and time."""
    rows = conn.execute(
        _QUERY,
        {
            "m": municipality_id,
            "risk": RISK_METHOD,
            "news2": NEWS2_METHOD,
            "since": since,
            "now": now,
            "today": now.astimezone(UTC).date(),
            "horizon": HORIZON_DAYS,
            "lookback": NEWS2_LOOKBACK_HOURS,
            "not_a_stay": sorted(WITHDRAWN_STATUSES),
        },
    ).fetchall()
    return [
        MonitoredDay(
            patient_id=str(patient_id),
            version=str(version),
            as_of=as_of,
            risk=float(risk),
            news2=None if news2 is None else float(news2),
            admission_id=None if admission is None else int(admission),
            window_closed=bool(closed),
        )
        for patient_id, version, as_of, risk, news2, admission, closed in rows
    ]
