"""Which expected measurements are overdue: the 'missing' alert (OpenTele's BLUE alarm), as pure values.

Two sources of what a patient is expected to measure:

- **A measurement plan** (``fhir_contract.plan``, set by a nurse: ``gateway.store.plans``): ``missed``
  says which planned occurrences passed their deadline without a reading, with the same pure functions
  the hub reminds the patient by (``occurrences``, ``match_readings``), so the hub's "missed" and the
  gateway's alert never disagree. A patient with a plan is expected to take exactly what it names.
- **Without a plan, the defaults**: given each patient's expected measurements with their newest reading
  (``gateway.store.missing_reads``) and the time now, ``overdue`` says which did not come in time.

The defaults' choices:

- The interval is a default per measurement (:data:`EXPECTATIONS`): blood pressure, SpO2, weight and
  temperature daily (the home-monitoring plan the demo's homes follow, ``models.cohort.profiles``), each
  due 24 h after the newest reading and alerting only after a grace of 12 h more. 24 h + 12 h is the
  worklist's :data:`~gateway.store.worklist.STALE_AFTER`: the alert comes when the card turns "late",
  in the evening of a day a morning measurement was missed, never at breakfast.
- Pulse is never alerted on by itself: it comes with blood pressure or SpO2 (the cuff and the oximeter
  give it), so a missing pulse is already a missing blood pressure or SpO2.
- A patient is expected to take a measurement only after their first reading of it: a patient just
  enrolled, or with a device they never used, is not alerted on (the enrolment, not an alarm, is where
  that is followed up).
- The alert stands on the due time (``Overdue.due_at``, the trigger's ``as_of``): the same missing
  measurement found again on the next round is the same trigger (``gateway.alerts.lifecycle`` repeats
  it, and a resolved one stays resolved until a newer reading is missed in turn).

A plan's choices (``missed``):

- Occurrences count from when the plan was set (``set_at``: one due before the nurse saved it was never
  asked for) and at most :data:`LOOKBACK` back (a gateway that was down for a week does not alert on all
  of it); times of day are the home's (its hub's time zone, else the gateway's).
- An occurrence is missed when its deadline (due time + the item's grace) has passed and no reading of
  the measurement counts for it (``match_readings``: from ``EARLY`` before the due time to the deadline,
  one reading for one occurrence). A patient who never measured is alerted on: the plan says they should.
- Only the newest missed occurrence of a measurement is a trigger, standing on its due time: the next
  missed one is counted on the same active alert (nobody is told twice), and a later round finds the same
  due time and repeats. An occurrence missed but followed by a reading of the measurement (taken late,
  after the deadline) is no trigger: that reading would resolve the alert at once.
- The alert's key is the measurement, as the defaults' is, so a patient moving between the two keeps
  one alert per measurement; it is resolved, as theirs is, by a newer reading than the one it names.

Reading the database, raising the alerts and resolving them when the reading comes is
``gateway.alerts.missing_job``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from fhir_contract.plan import EARLY, Occurrence, match_readings, occurrences
from gateway.alerts.lifecycle import Trigger
from gateway.store.missing_reads import ExpectedReading
from gateway.store.plans import PlanInForce

KIND: Final = "missing"
SEVERITY: Final = "medium"


@dataclass(frozen=True, slots=True)
class Expectation:
    """How often a measurement is expected, and how late it may be before it is missing."""

    every: timedelta
    grace: timedelta


# Daily, with half a day's grace (module docstring): a habit of measuring in the morning varies by an hour
# or two, and a measurement taken in the evening instead is late, not missing.
DAILY: Final = Expectation(every=timedelta(hours=24), grace=timedelta(hours=12))
#: The measurements alerted on when missing (keys of ``gateway.store.worklist.MEASUREMENTS``); not pulse.
EXPECTATIONS: Final[Mapping[str, Expectation]] = {
    "blood-pressure": DAILY,
    "spo2": DAILY,
    "weight": DAILY,
    "temperature": DAILY,
}
# The measurements as the reason names them in a sentence.
NAMES: Final[Mapping[str, str]] = {
    "blood-pressure": "blood pressure",
    "spo2": "SpO2",
    "weight": "weight",
    "temperature": "temperature",
    "glucose": "blood glucose",  # a plan's only (fhir_contract.plan.MEASUREMENTS)
}
# How far back a plan's occurrences are looked at: more than the longest grace (a day) plus a day, so a
# missed occurrence is found on every round until a reading comes, whenever the rounds run.
LOOKBACK: Final = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Overdue:
    """An expected measurement that did not come: its newest reading, and when the next was due."""

    municipality_id: str
    patient_id: str
    measurement: str
    last_at: datetime
    last_identifier: str | None
    due_at: datetime
    every: timedelta


def overdue(expected: Iterable[ExpectedReading], now: datetime) -> list[Overdue]:
    """The expected measurements whose next reading was due and is later than its grace at ``now``:
    measurements of :data:`EXPECTATIONS` only, and only those with a reading (module docstring)."""
    found = []
    for e in expected:
        expectation = EXPECTATIONS.get(e.measurement)
        if expectation is None or e.last_at is None:
            continue
        due = e.last_at + expectation.every
        if now >= due + expectation.grace:
            found.append(
                Overdue(
                    e.municipality_id,
                    e.patient_id,
                    e.measurement,
                    e.last_at,
                    e.last_identifier,
                    due,
                    expectation.every,
                )
            )
    return found


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f}" if hours == round(hours) else f"{hours:.1f}"


def missing_reason(o: Overdue) -> str:
    """The alert's reason in English (``gateway.api.model_words`` knows its template)."""
    since = o.last_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"No {NAMES[o.measurement]} received since {since} (expected every {_hours(o.every)} h)"


def missing_trigger(o: Overdue) -> Trigger:
    """The 'missing' trigger of ``o``: keyed by the measurement, standing on the due time, and naming the
    reading it is missing since (``observation_identifier``: a newer one resolves it)."""
    return Trigger(
        municipality_id=o.municipality_id,
        patient_id=o.patient_id,
        kind=KIND,
        key=o.measurement,
        severity=SEVERITY,
        reason=missing_reason(o),
        as_of=o.due_at,
        observation_identifier=o.last_identifier,
    )


def received(since_identifier: str | None, newest: ExpectedReading | None) -> bool:
    """Whether a reading newer than the one an alert was missing since has come: the newest reading of the
    measurement is another one (any reading, for a planned measurement never taken before: None)."""
    return (
        newest is not None
        and newest.last_identifier is not None
        and newest.last_identifier != since_identifier
    )


# --- a measurement plan ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Missed:
    """A planned occurrence whose deadline passed without a reading, and the newest reading of the
    measurement before it (None: none ever)."""

    municipality_id: str
    patient_id: str
    occurrence: Occurrence
    last_at: datetime | None
    last_identifier: str | None

    @property
    def measurement(self) -> str:
        return self.occurrence.measurement


def plan_start(plan: PlanInForce, now: datetime) -> datetime:
    """The first due time of ``plan`` that counts at ``now`` (module docstring)."""
    return max(plan.set_at, now - LOOKBACK)


def readings_from(plan: PlanInForce, now: datetime) -> datetime:
    """The earliest reading that may count for an occurrence of ``plan`` at ``now``."""
    return plan_start(plan, now) - EARLY


def missed(
    plan: PlanInForce,
    taken: Mapping[str, Sequence[datetime]],
    newest: Mapping[str, ExpectedReading],
    now: datetime,
    zone: ZoneInfo,
) -> list[Missed]:
    """The newest missed occurrence of each measurement of ``plan`` at ``now`` (module docstring), given
    the times of its readings since ``readings_from`` up to ``now`` (``taken``, by measurement) and the
    newest reading of each at or before ``now``."""
    due = occurrences(plan.items, plan_start(plan, now), now, zone)
    found = []
    for item in plan.items:
        mine = [o for o in due if o.measurement == item.measurement]
        times = taken.get(item.measurement, ())
        done = match_readings(mine, [(item.measurement, at) for at in times])
        late = [o for o in mine if now > o.deadline and o not in done]
        if not late or any(at > late[-1].deadline for at in times):
            continue
        last = newest.get(item.measurement)
        found.append(
            Missed(
                plan.municipality_id,
                plan.patient_id,
                late[-1],
                None if last is None else last.last_at,
                None if last is None else last.last_identifier,
            )
        )
    return found


def planned_reason(m: Missed) -> str:
    """The alert's reason in English (``gateway.api.model_words`` knows its template)."""
    due = m.occurrence.due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    grace = int((m.occurrence.deadline - m.occurrence.due_at).total_seconds() // 60)
    return f"Planned {NAMES[m.measurement]} measurement due {due} not received (grace {grace} min)"


def planned_trigger(m: Missed) -> Trigger:
    """The 'missing' trigger of a missed planned occurrence: keyed by the measurement, standing on its due
    time, naming the newest reading before it (a newer one resolves the alert)."""
    return Trigger(
        municipality_id=m.municipality_id,
        patient_id=m.patient_id,
        kind=KIND,
        key=m.measurement,
        severity=SEVERITY,
        reason=planned_reason(m),
        as_of=m.occurrence.due_at,
        observation_identifier=m.last_identifier,
    )
