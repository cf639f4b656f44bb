"""The disease rules of ``models.rules`` on a patient's stored readings: which fired on a new reading.

A patient's chronic conditions (``patients.conditions``) choose the rules: heart failure the two
weight-gain rules, COPD the SpO2-drop and pulse-rise rules against the patient's own baseline. The
readings of the last :data:`HISTORY` (final ones only: a preliminary value never counts) are loaded in
one indexed query, in their canonical unit whatever unit the device reported in (a scale in pounds
feeds the 2 kg rule kilograms); the rules are pure and causal, each firing once per excursion on the
reading that first met its condition. The scorer judges every reading on the :data:`HISTORY` before it
(``gateway.alerts.evaluation``, from the batch reads of ``gateway.store.evaluation_reads``), with the
tables here: which rules a condition switches on, which stored kinds feed each series, the titles.
``load_series`` and ``fresh_hits`` read one patient's series and its hits of the last day: what the
scorer did before it judged every reading, kept for tests that look at the rules on stored readings.

Left to others: the rules themselves (``models.rules``, ``models.baselines``), the query
(``gateway.store.patient_history``), storing scores and alerts (``gateway.alerts.scorer``), the wording
of the alert (``gateway.alerts.rules``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from gateway.store.patient_history import final_readings
from models.rules import (
    RuleHit,
    copd_pulse_rise,
    copd_spo2_drop,
    weight_gain_3d,
    weight_gain_moving_average,
)

# Baselines need weeks of readings; the weight rules look back at most 7 + 3 days.
HISTORY = timedelta(days=42)
# A hit is news when its reading is at most this much older than the patient's newest reading.
FRESH = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The stored reading kinds behind each series the rules read.
SERIES_KINDS: Mapping[str, tuple[str, ...]] = {
    "weight": ("body-weight",),
    "spo2": ("spo2",),
    "pulse": ("pulse-rate-oximeter", "pulse-rate-cuff"),
}

Rule = Callable[[Sequence[float], Sequence[float]], list[RuleHit]]
#: condition -> (series, rule) pairs it switches on.
RULES_BY_CONDITION: Mapping[str, tuple[tuple[str, Rule], ...]] = {
    "heart-failure": (("weight", weight_gain_3d), ("weight", weight_gain_moving_average)),
    "copd": (("spo2", copd_spo2_drop), ("pulse", copd_pulse_rise)),
}
#: rule -> the name a nurse reads before the rule's own reason.
RULE_TITLES: Mapping[str, str] = {
    "hf-weight-gain-3d": "Heart-failure weight gain",
    "hf-weight-gain-ma": "Heart-failure weight trend",
    "copd-spo2-drop": "COPD: SpO2 below personal baseline",
    "copd-pulse-rise": "COPD: pulse above personal baseline",
}


@dataclass(frozen=True, slots=True)
class Series:
    """One vital's readings, oldest first: times, values and the Observation identifiers."""

    times: tuple[datetime, ...]
    values: tuple[float, ...]
    identifiers: tuple[str, ...]

    @property
    def days(self) -> list[float]:
        return [_day(t) for t in self.times]


@dataclass(frozen=True, slots=True)
class FreshHit:
    """A rule that fired on a recent reading: the hit, the reading's time and its identifier."""

    hit: RuleHit
    at: datetime
    identifier: str

    @property
    def title(self) -> str:
        return RULE_TITLES.get(self.hit.rule, self.hit.rule)


def _day(t: datetime) -> float:
    return (t - _EPOCH) / timedelta(days=1)


def load_series(
    conn: psycopg.Connection[Any], municipality_id: str, patient_id: str, as_of: datetime
) -> dict[str, Series]:
    """The patient's rule series over the :data:`HISTORY` before ``as_of`` (final readings with a value,
    in the canonical unit)."""
    kinds = {kind for group in SERIES_KINDS.values() for kind in group}
    rows = final_readings(conn, municipality_id, patient_id, after=as_of - HISTORY, until=as_of, kinds=kinds)
    series: dict[str, Series] = {}
    for name, group in SERIES_KINDS.items():
        picked = [
            (r.effective, r.value, r.identifier) for r in rows if r.kind in group and r.value is not None
        ]
        if picked:
            times, values, identifiers = zip(*picked, strict=True)
            series[name] = Series(tuple(times), tuple(values), tuple(identifiers))
    return series


def fresh_hits(series: Mapping[str, Series], conditions: Sequence[str], as_of: datetime) -> list[FreshHit]:
    """The hits of the patient's rules on readings within :data:`FRESH` of ``as_of``, oldest first."""
    found: list[FreshHit] = []
    for condition in conditions:
        for name, rule in RULES_BY_CONDITION.get(condition, ()):
            data = series.get(name)
            if data is None:
                continue
            days = data.days
            index_of = {day: i for i, day in enumerate(days)}  # a hit names its reading by its day
            for hit in rule(days, data.values):
                i = index_of[hit.day]
                if timedelta(0) <= as_of - data.times[i] <= FRESH:
                    found.append(FreshHit(hit, data.times[i], data.identifiers[i]))
    return sorted(found, key=lambda f: (f.at, f.hit.rule))
