"""The live 'risk-rise' alert: the offline replay's alert on the rise in a patient's own 30-day risk.

``homewatch models replay`` alerts on day D when the rise in the patient's learned 30-day admission risk
(``models.admission_risk.rise_scores``: the log-odds today minus the median log-odds of the previous 14
scored days) reaches the model's threshold after 7 quiet days (``patient_alerts``). The gateway makes the
same decision each time its schedule stores a risk: it reads the patient's stored risks, one per UTC day
(the last of each day, ``gateway.store.risk_history``), and hands that series to the very same
``patient_alerts``; today alerts when the replay's rule alerts on today's element of the series (a test
holds the two equal on generated series). Nothing of the rule is written again here.

Differences from the replay, on purpose: a day without a stored risk (the gateway was down, the patient
had no readings yet) is NaN, which the rule reads as it reads a day in hospital: not scored, quiet; and the
gateway does not know of admissions, so no day is left out as "in hospital". Only the days the decision
for today depends on are read (:data:`LOOKBACK_DAYS`).

A rise is reported as a ``Trigger`` (kind 'risk-rise', key '', severity medium) on the score just stored;
``gateway.alerts.lifecycle`` de-duplicates it. The reason names the risk the rise is measured from (the
median of the window, as a probability), today's risk, the span of the window, that the model was
trained on SYNTHETIC data only (``models/MODEL_CARD.md``: no clinical validity) and the factors that raise
today's risk most. ``gateway.api.model_words`` words it in Danish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg

from gateway.alerts.lifecycle import Outcome, Trigger, record_trigger
from gateway.store.risk_history import DailyRisk, daily_admission_risks
from models.admission_risk import QUIET_DAYS, RISE_WINDOW_DAYS, RiskModel, patient_alerts, rise_scores

KIND: Final = "risk-rise"
SEVERITY: Final = "medium"
# Today's alert looks at the 7 days before it (quiet?), and each of those days' rise at the 14 before it:
# older days cannot change today's decision.
LOOKBACK_DAYS: Final = RISE_WINDOW_DAYS + QUIET_DAYS
# Said wherever the model's numbers are shown (the RiskAssessment's method, the worklist's heading).
SYNTHETIC_NOTE: Final = "(model trained on SYNTHETIC data only)"


@dataclass(frozen=True, slots=True)
class Rise:
    """A rise that alerts today: from the risk it is measured from to today's, over ``days`` days."""

    before: float  # the median of the window's scored days, as a probability
    after: float
    days: int  # from the window's oldest scored day to today


def daily_series(risks: Sequence[DailyRisk], today: date) -> npt.NDArray[np.float64]:
    """One risk per day from ``today`` - :data:`LOOKBACK_DAYS` to ``today`` (the last element), NaN on a
    day without one; risks outside that span are ignored."""
    series = np.full(LOOKBACK_DAYS + 1, np.nan)
    for risk in risks:
        index = LOOKBACK_DAYS - (today - risk.day).days
        if 0 <= index <= LOOKBACK_DAYS:
            series[index] = risk.probability
    return series


def _logit(p: float) -> float:
    q = min(max(p, 1e-9), 1 - 1e-9)  # the clipping of rise_scores
    return float(np.log(q / (1 - q)))


def rise_today(model: RiskModel, series: npt.NDArray[np.float64]) -> Rise | None:
    """The rise when the replay's rule alerts on the series' last day (today); None otherwise."""
    alerts = patient_alerts(model, series, np.zeros(series.size, dtype=bool))
    if not alerts[-1]:
        return None
    after = float(series[-1])
    rise = float(rise_scores(series)[-1])  # finite: an alert day has a rise at or above the threshold
    before = 1.0 / (1.0 + np.exp(-(_logit(after) - rise)))
    window = series[-1 - RISE_WINDOW_DAYS : -1]
    oldest = int(np.flatnonzero(~np.isnan(window))[0])
    return Rise(before=float(before), after=after, days=RISE_WINDOW_DAYS - oldest)


def _percent(p: float) -> str:
    return f"{100 * p:.1f}"


def rise_reason(rise: Rise, factors: Sequence[str]) -> str:
    """The alert's reason in English (``gateway.api.model_words`` knows its template)."""
    span = f"{rise.days} day" if rise.days == 1 else f"{rise.days} days"
    text = (
        f"30-day admission risk rose from {_percent(rise.before)} % to {_percent(rise.after)} % in {span} "
        f"{SYNTHETIC_NOTE}"
    )
    return f"{text}: {'; '.join(factors)}" if factors else text


def alert_on_rise(
    conn: psycopg.Connection[Any],
    model: RiskModel,
    municipality_id: str,
    patient_id: str,
    *,
    score_id: int,
    factors: Sequence[str],
    computed_at: datetime,
) -> Outcome | None:
    """After a risk was stored (``score_id``, as of ``computed_at``): the 'risk-rise' trigger when the
    replay's rule alerts today, recorded in the caller's transaction; None when it does not alert."""
    today = computed_at.astimezone(UTC).date()
    risks = daily_admission_risks(
        conn,
        municipality_id,
        patient_id,
        first_day=today - timedelta(days=LOOKBACK_DAYS),
        until=computed_at,
    )
    rise = rise_today(model, daily_series(risks, today))
    if rise is None:
        return None
    trigger = Trigger(
        municipality_id=municipality_id,
        patient_id=patient_id,
        kind=KIND,
        key="",
        severity=SEVERITY,
        reason=rise_reason(rise, factors),
        as_of=computed_at,
        score_id=score_id,
    )
    return record_trigger(conn, trigger, now=computed_at)
