"""Which expected measurements are overdue: the 'missing' alert (OpenTele's BLUE alarm), as pure values.

Given each patient's expected measurements with their newest reading (``gateway.store.missing_reads``)
and the time now, ``overdue`` says which did not come in time. The choices, until measurement plans
exist (a later issue):

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

Reading the database, raising the alerts and resolving them when the reading comes is
``gateway.alerts.missing_job``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.alerts.lifecycle import Trigger
from gateway.store.missing_reads import ExpectedReading

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
}


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
    measurement is another one."""
    return (
        newest is not None
        and newest.last_identifier is not None
        and since_identifier is not None
        and newest.last_identifier != since_identifier
    )
