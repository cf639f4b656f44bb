"""Which occurrences of a measurement plan were done and which were missed, for the models' features.

The missing-measurement alert (`gateway.alerts.missing`) and the hub's reminders decide "due", "done" and
"missed" with `fhir_contract.plan.occurrences` and `match_readings`; the 30-day risk's feature
`plan_missed_share_14d` (`models.features`) must count misses by the same rule, so the gateway's live
score, a municipality's training history and the SYNTHETIC generator all go through `judged_occurrences`.

Pure: the plan, the window, the home's time zone and the times of the readings in; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from fhir_contract.plan import EARLY, PlanItem, match_readings, occurrences


@dataclass(frozen=True, slots=True)
class JudgedOccurrence:
    """One planned measurement whose deadline has passed: due at `due_at`, counted until `deadline`
    (aware), and whether a reading counted for it."""

    measurement: str
    due_at: datetime
    deadline: datetime
    done: bool


def readings_from(start: datetime) -> datetime:
    """The earliest reading that may count for an occurrence due at or after `start`."""
    return start - EARLY


def judged_occurrences(
    items: Sequence[PlanItem],
    *,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    taken: Mapping[str, Iterable[datetime]],
) -> list[JudgedOccurrence]:
    """The occurrences of `items` due in `[start, end)` whose deadline is at or before `end` (an open one
    is not judged yet), in due order, each with whether one of the readings `taken` (times by planned
    measurement, from `readings_from(start)` up to `end`) counted for it."""
    due = occurrences(items, start, end, zone)
    found: list[JudgedOccurrence] = []
    for item in items:
        mine = [o for o in due if o.measurement == item.measurement]
        done = match_readings(mine, [(item.measurement, at) for at in taken.get(item.measurement, ())])
        found += [
            JudgedOccurrence(o.measurement, o.due_at, o.deadline, o in done)
            for o in mine
            if o.deadline <= end
        ]
    return sorted(found, key=lambda o: (o.due_at, o.measurement))
