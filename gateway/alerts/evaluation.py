"""Every reading of a patient is a moment to evaluate: NEWS2, the disease rules and the patient's own
limits as of that reading, and the alerts they call for. Pure: readings in, findings out.

``evaluate`` takes one patient's final readings (``PatientReadings``: every reading from ``since`` on,
with what came before that the evaluation stands on) and judges each reading from ``since`` on:

- **NEWS2** at the time ``t`` of each reading of a NEWS2 kind uses, per kind, the newest reading with
  ``effective <= t`` (``news2_inputs``); a value older than NEWS2's ``max_age`` (24 h) counts as missing,
  as ``models.news2`` says. A result that calls for an alert (``rules.decide_alert``) is a finding.
- **The disease rules** of the patient's conditions (``home_rules``) at each reading of a series they
  read: the rule judges the readings of the :data:`~gateway.alerts.home_rules.HISTORY` up to it, and a
  hit on that very reading is a finding (``rules.decide_rule_alert``).
- **The patient's own limits** (``patient_thresholds``): a reading of a vital sign outside the red
  limits in force when it was taken (the newest set at or before it; ``models.triage.triage`` reads
  it) is a ``medium`` finding, keyed by the vital sign. A vital sign without limits of its own is left
  to NEWS2, whose red band the default limits are (``models.triage.default_limits``): no second alert.

So what is found is a function of the stored readings (and limits) only, never of when or how often
the scorer looks: a reading scored late, behind newer ones, or twice, yields the same findings. The
findings come in effective-time order, for ``gateway.alerts.lifecycle.record_trigger``, which turns a
finding on data no newer than its alert already holds into a repeat. ``Evaluation.current`` is NEWS2
at the newest reading: the patient's current score.

Left to others: reading the data (``gateway.store.evaluation_reads``), storing scores and recording the
triggers (``gateway.alerts.scorer``), the NEWS2 chart, the rules and triage (``models``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from gateway.alerts.home_rules import HISTORY, RULE_TITLES, RULES_BY_CONDITION, SERIES_KINDS, Series
from gateway.alerts.lifecycle import Kind
from gateway.alerts.news2_inputs import NEWS2_KINDS, vitals_from_observations
from gateway.alerts.rules import AlertDecision, decide_alert, decide_rule_alert
from gateway.store.evaluation_reads import LimitsSet, PatientToScore, ScoringReading
from models.news2 import News2Result, score_news2
from models.triage import Level, Triage, read_at_resolution, triage

#: Which vital sign of ``models.triage`` each stored kind measures (a panel: one per component).
VITALS_OF_KIND: Mapping[str, tuple[tuple[str, str | None], ...]] = {
    "spo2": (("spo2", None),),
    "pulse-rate-oximeter": (("pulse", None),),
    "pulse-rate-cuff": (("pulse", None),),
    "heart-rate": (("pulse", None),),
    "blood-pressure": (("systolic", "systolic"), ("diastolic", "diastolic")),
    "body-temperature": (("temperature", None),),
    "body-weight": (("weight", None),),
    "respiratory-rate": (("respiration_rate", None),),
}
# A vital sign as a reason names it, and its canonical unit as a nurse reads it.
_VITAL_WORDS: Mapping[str, tuple[str, str]] = {
    "spo2": ("SpO2", "%"),
    "pulse": ("Pulse", "/min"),
    "systolic": ("Systolic blood pressure", "mmHg"),
    "diastolic": ("Diastolic blood pressure", "mmHg"),
    "temperature": ("Temperature", "°C"),
    "weight": ("Weight", "kg"),
    "respiration_rate": ("Respiration rate", "/min"),
}
#: The kinds the disease rules read.
RULE_KINDS: tuple[str, ...] = tuple(sorted({kind for kinds in SERIES_KINDS.values() for kind in kinds}))
#: Every kind evaluated: NEWS2's, the own limits' and the rules'.
SCORED_KINDS: tuple[str, ...] = tuple(sorted({*NEWS2_KINDS, *VITALS_OF_KIND, *RULE_KINDS}))
# Findings at one moment, in the order they are recorded.
_KIND_ORDER: Mapping[str, int] = {"news2": 0, "disease-rule": 1, "threshold": 2}


@dataclass(frozen=True, slots=True)
class PatientReadings:
    """What one patient is evaluated on: every final reading from ``since`` on, the newest of each NEWS2
    kind before it, the rules' history before it (oldest first), and the own limits ever set (oldest
    first)."""

    patient: PatientToScore
    since: datetime
    readings: Sequence[ScoringReading]
    limits: Sequence[LimitsSet] = ()


@dataclass(frozen=True, slots=True)
class News2Point:
    """NEWS2 at one reading's time, and the readings it stands on (their identifiers)."""

    at: datetime
    result: News2Result
    basis: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RuleFiring:
    """A disease rule that fired (on the finding's reading): the rule, its title and its reason."""

    rule: str
    title: str
    reason: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A reading that calls for an alert: what ``lifecycle.Trigger`` needs, and what a score of it needs
    (the NEWS2 point, or the rule that fired; a threshold finding stands on its reading alone)."""

    at: datetime
    kind: Kind
    key: str  # '' for NEWS2; the rule; the vital sign
    decision: AlertDecision
    identifier: str | None = None  # the reading a rule or a limit fired on
    news2: News2Point | None = None
    rule: RuleFiring | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What the readings of one patient from ``since`` on came to."""

    patient: PatientToScore
    news2_points: int  # NEWS2 evaluated at this many reading times
    current: News2Point | None  # NEWS2 at the newest of them; None: no NEWS2 reading from ``since`` on
    findings: tuple[Finding, ...]  # effective-time order


def evaluate(data: PatientReadings) -> Evaluation:
    """Judge every reading of ``data`` from ``data.since`` on (module docstring)."""
    points = list(news2_points(data))
    findings: dict[tuple[datetime, str, str], Finding] = {}
    for point in points:
        decision = decide_alert(point.result)
        if decision is not None:
            findings[(point.at, "news2", "")] = Finding(point.at, "news2", "", decision, news2=point)
    for found in (*rule_findings(data), *threshold_findings(data)):
        # A reading at the same moment as another of the same rule or vital sign is the same finding.
        findings.setdefault((found.at, found.kind, found.key), found)
    ordered = sorted(findings.items(), key=lambda item: (item[0][0], _KIND_ORDER[item[0][1]], item[0][2]))
    return Evaluation(data.patient, len(points), points[-1] if points else None, tuple(f for _, f in ordered))


def news2_points(data: PatientReadings) -> Iterator[News2Point]:
    """NEWS2 at the time of each NEWS2 reading from ``since`` on, oldest first."""
    latest: dict[str, ScoringReading] = {}
    scored = (r for r in data.readings if r.kind in NEWS2_KINDS)
    for at, together in groupby(scored, key=lambda r: r.effective):
        for reading in together:
            latest[reading.kind] = reading
        if at >= data.since:
            vitals = vitals_from_observations(latest, scale2=data.patient.spo2_scale2)
            basis = tuple(sorted(r.identifier for r in latest.values()))
            yield News2Point(at, score_news2(vitals, at), basis)


def rule_findings(data: PatientReadings) -> Iterator[Finding]:
    """The disease rules of the patient's conditions that fire on a reading from ``since`` on."""
    for condition in data.patient.conditions:
        for name, rule in RULES_BY_CONDITION.get(condition, ()):
            kinds = SERIES_KINDS[name]
            picked = [
                (r.effective, r.canonical_value, r.identifier)
                for r in data.readings
                if r.kind in kinds and r.canonical_value is not None
            ]
            if not picked:
                continue
            times, values, identifiers = (list(column) for column in zip(*picked, strict=True))
            first = bisect_left(times, data.since)
            for i in range(first, len(times)):
                # The rule as it stood when this reading arrived: the HISTORY up to it, nothing later.
                start, end = bisect_right(times, times[i] - HISTORY), bisect_right(times, times[i])
                window = Series(tuple(times[start:end]), tuple(values[start:end]), ())
                days = window.days
                hits = rule(days, window.values)
                if hits and hits[-1].day == days[-1]:
                    hit = hits[-1]
                    title = RULE_TITLES.get(hit.rule, hit.rule)
                    yield Finding(
                        times[i],
                        "disease-rule",
                        hit.rule,
                        decide_rule_alert(title, hit.reason),
                        identifiers[i],
                        rule=RuleFiring(hit.rule, title, hit.reason),
                    )


def threshold_findings(data: PatientReadings) -> Iterator[Finding]:
    """The readings from ``since`` on outside the red limits the patient had of their own then."""
    if not data.limits:
        return
    by_vital: dict[str, list[LimitsSet]] = {}
    for limits in data.limits:
        by_vital.setdefault(limits.vital, []).append(limits)
    set_at = {vital: [s.set_at for s in history] for vital, history in by_vital.items()}
    for reading in data.readings:
        if reading.effective < data.since:
            continue
        for vital, component in VITALS_OF_KIND.get(reading.kind, ()):
            history = by_vital.get(vital)
            if history is None:
                continue
            in_force = bisect_right(set_at[vital], reading.effective)
            if in_force == 0:  # set after this reading was taken
                continue
            value = reading.canonical_components.get(component) if component else reading.canonical_value
            if value is None:
                continue
            result = triage(vital, value, history[in_force - 1].limits)
            if result.level is Level.RED:
                reason = threshold_reason(vital, value, result)
                yield Finding(
                    reading.effective, "threshold", vital, AlertDecision("medium", reason), reading.identifier
                )


def threshold_reason(vital: str, value: float, result: Triage) -> str:
    """A red reading against the patient's own limit, in the words of the other reasons: "Pulse 140 /min,
    above the patient's own red limit of 130 /min"."""
    assert result.limit is not None  # a red triage names the limit it crossed
    label, unit = _VITAL_WORDS[vital]
    side = "below" if result.crossed == "red_low" else "above"
    return (
        f"{label} {read_at_resolution(vital, value)} {unit}, {side} the patient's own red limit of "
        f"{result.limit:g} {unit}"
    )
