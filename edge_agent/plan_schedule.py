"""Where the patient stands with the measurement plan at an instant: what is due, done, missed, upcoming.

The hub's view of :mod:`fhir_contract.plan` (pure: no clock, no I/O). Given the plan's items
(``HubConfig.plan_items``), the home's time zone, the readings the hub has stored (plan measurement key,
time taken) and an instant, :func:`plan_state` says

- ``due``: occurrences whose due time has come and whose deadline has not passed, without a reading:
  the patient should measure now (the reminder);
- ``done``: occurrences a reading counted for, early ones (up to ``EARLY`` before the due time) included
  (the confirmation);
- ``missed``: occurrences whose deadline passed without a reading (within ``lookback``);
- ``upcoming``: occurrences not yet due and not done early (within ``horizon``).

It is built on :func:`fhir_contract.plan.occurrences` and :func:`~fhir_contract.plan.match_readings`, the
functions the gateway's missing-measurement alert uses, so the hub's "missed" and the gateway's alert
agree on the same readings.

Which plan measurement an Observation is (:func:`measurement_of`) is decided by its code, never by the
kind of device that sent it: the contract's reading type (``observation_kind``: the MDC code, the PHD
supplemental type, LOINC when unambiguous) must be one of ``fhir_contract.plan.READING_KINDS``, the table
the gateway's missing alert reads too. A cuff's pulse rate is not blood pressure; a continuous oximeter's
fast/slow SpO2 is a stream, not the planned spot check; a CGM measures by itself and is no planned glucose
measurement. The gateway's worklist maps the same reading types to the same keys
(``tests/edge_agent/test_plan_schedule.py`` checks it).

Speaking, quiet hours and remembering what was said are :mod:`edge_agent.reminders`' business.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from edge_agent.outbox.priority import observation_kind
from fhir_contract.plan import (
    EARLY,
    MAX_GRACE,
    READING_KINDS,
    Occurrence,
    PlanItem,
    match_readings,
    occurrences,
)

#: How far back "missed" looks by default: the day before is what a reminder can still be about.
LOOKBACK: Final = timedelta(days=1)
#: How far ahead "upcoming" looks by default.
HORIZON: Final = timedelta(days=1)


#: Contract reading type -> plan measurement key (the contract's ``READING_KINDS`` turned round).
MEASUREMENT_OF_KIND: Final[Mapping[str, str]] = {
    kind: measurement for measurement, kinds in READING_KINDS.items() for kind in kinds
}


def measurement_of(observation: Mapping[str, Any]) -> str | None:
    """The plan measurement key an Observation counts for, or None (another reading type, or a
    preliminary value such as a cuff's pressure while it inflates)."""
    return MEASUREMENT_OF_KIND.get(observation_kind(observation))


def taken(observation: Mapping[str, Any]) -> tuple[str, datetime] | None:
    """``(measurement key, time taken)`` of an Observation the plan counts, else None. The time is the
    Observation's ``effectiveDateTime`` (the hub's corrected time; aware), the one the gateway stores."""
    measurement = measurement_of(observation)
    effective = observation.get("effectiveDateTime")
    if measurement is None or not isinstance(effective, str):
        return None
    try:
        at = datetime.fromisoformat(effective)
    except ValueError:
        return None
    return (measurement, at) if at.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class PlanState:
    """The plan at ``at``; occurrences in due order (see the module docstring for each group)."""

    at: datetime
    due: tuple[Occurrence, ...] = ()
    done: Mapping[Occurrence, datetime] = field(default_factory=dict)
    missed: tuple[Occurrence, ...] = ()
    upcoming: tuple[Occurrence, ...] = ()

    def next_change(self) -> datetime | None:
        """The next instant after ``at`` at which the state changes without a reading: an upcoming
        occurrence falls due, or a due one's deadline passes (a state holds at its deadline, so the
        change is just after it). None when nothing is planned within the horizon."""
        times = [o.due_at for o in self.upcoming] + [o.deadline + _TICK for o in self.due]
        later = [t for t in times if t > self.at]
        return min(later) if later else None


# A due occurrence is still due at its deadline (a reading taken then counts); it is missed just after.
_TICK: Final = timedelta(microseconds=1)


def plan_state(
    items: Sequence[PlanItem],
    zone: ZoneInfo,
    readings: Iterable[tuple[str, datetime]],
    at: datetime,
    *,
    lookback: timedelta = LOOKBACK,
    horizon: timedelta = HORIZON,
) -> PlanState:
    """Where the plan stands at ``at`` (aware) with ``readings`` ``(measurement key, taken at)``.

    Occurrences are computed from further back than ``lookback`` (by a full window: ``EARLY`` plus the
    largest grace), so a reading is matched to the same occurrence the gateway matches it to, not to a
    later one because the earlier one fell outside the range. ``missed`` holds those whose deadline lies
    in ``[at - lookback, at)``; ``upcoming`` those due in ``(at, at + horizon)``."""
    if at.tzinfo is None:
        raise ValueError("at must be an aware datetime")
    start = at - lookback - MAX_GRACE - EARLY
    end = at + max(horizon, EARLY) + _TICK
    every = occurrences(items, start, end, zone)
    done = match_readings(every, readings)
    due: list[Occurrence] = []
    missed: list[Occurrence] = []
    upcoming: list[Occurrence] = []
    for occurrence in every:
        if occurrence in done:
            continue
        if occurrence.deadline < at:
            if occurrence.deadline >= at - lookback:
                missed.append(occurrence)
        elif occurrence.due_at <= at:
            due.append(occurrence)
        elif occurrence.due_at < at + horizon:
            upcoming.append(occurrence)
    recent = {o: t for o, t in done.items() if o.deadline >= at - lookback and o.due_at < at + horizon}
    return PlanState(at, tuple(due), recent, tuple(missed), tuple(upcoming))
