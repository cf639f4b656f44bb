"""A patient's measurement plan: what to measure, at which times of day, on which days, with what grace.

The nurse sets it on the gateway; it reaches the hub in the hub's retained config (key ``plan``); the hub
reminds the patient when a measurement is due and confirms when it arrived; the gateway raises the
missing-measurement alert when the grace has passed without one. Both sides read the plan and decide
"due", "done" and "missed" with these same pure functions, so the hub's reminder and the gateway's alert
never disagree about what was expected.

The JSON form (a list, one object per measurement)::

    [{"measurement": "blood-pressure", "times": ["08:00", "20:00"], "days": [1, 2, 3, 4, 5, 6, 7],
      "grace_minutes": 120}]

- ``measurement``: one of :data:`MEASUREMENTS` (the worklist's measurement keys);
- ``times``: local times of day (the home's time zone), ``HH:MM``, 1 to :data:`MAX_TIMES`, no repeats;
- ``days``: ISO weekdays (1 = Monday ... 7 = Sunday), at least one, no repeats; every day when left out;
- ``grace_minutes``: how long after the due time a reading still counts, 15 to 1,440 (a day).

A reading counts for an occurrence when it was taken from :data:`EARLY` before the due time until the
end of the grace; one reading counts for one occurrence only (the earliest it can). ``PlanError`` names
the bad field; nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from fhir_contract.terminology import reading_types

#: The measurements a plan may name: the keys of the nurse's worklist and the missing alert.
MEASUREMENTS: Final = ("blood-pressure", "spo2", "weight", "temperature", "glucose")
#: The contract's reading types (``fhir/terminology.json`` keys) that count for each measurement: what the
#: hub matches its Observations against and what the gateway reads for the missing alert. Spot checks
#: only: a cuff's pulse, a continuous oximeter's fast/slow SpO2 and a CGM's stream count for nothing.
READING_KINDS: Final[Mapping[str, tuple[str, ...]]] = {
    "blood-pressure": ("blood-pressure",),
    "spo2": ("spo2",),
    "weight": ("body-weight",),
    "temperature": ("body-temperature",),
    "glucose": tuple(sorted(kind for kind in reading_types() if kind.startswith("glucose-"))),
}
MAX_ITEMS: Final = len(MEASUREMENTS)
MAX_TIMES: Final = 6
MIN_GRACE: Final = timedelta(minutes=15)
MAX_GRACE: Final = timedelta(days=1)
#: A reading this long before the due time still counts (measured before the reminder came).
EARLY: Final = timedelta(hours=2)
ALL_DAYS: Final = frozenset(range(1, 8))

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class PlanError(ValueError):
    """A plan that cannot be used; ``field`` is the path of the bad value (``0.times.1``)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"plan: {field}: {reason}" if field else f"plan: {reason}")


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One measurement of the plan."""

    measurement: str
    times: tuple[time, ...]
    days: frozenset[int] = ALL_DAYS
    grace: timedelta = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One expected measurement: due at ``due_at`` (UTC), counted until ``deadline``."""

    measurement: str
    due_at: datetime
    deadline: datetime

    @property
    def opens_at(self) -> datetime:
        return self.due_at - EARLY


def parse_plan(data: object) -> tuple[PlanItem, ...]:
    """The plan in its JSON form (decoded) as items; ``PlanError`` naming the first bad field."""
    if not isinstance(data, list):
        raise PlanError("", "a plan is a list of measurements")
    if len(data) > MAX_ITEMS:
        raise PlanError("", f"at most {MAX_ITEMS} measurements")
    items = tuple(_item(entry, str(n)) for n, entry in enumerate(data))
    seen = [item.measurement for item in items]
    if len(set(seen)) != len(seen):
        raise PlanError("", "a measurement may appear once")
    return items


def _item(entry: object, where: str) -> PlanItem:
    if not isinstance(entry, dict):
        raise PlanError(where, "not an object")
    unknown = sorted(set(entry) - {"measurement", "times", "days", "grace_minutes"})
    if unknown:
        raise PlanError(f"{where}.{unknown[0]}", "unknown key")
    measurement = entry.get("measurement")
    if measurement not in MEASUREMENTS:
        raise PlanError(f"{where}.measurement", f"one of {', '.join(MEASUREMENTS)}")
    times = entry.get("times")
    if not isinstance(times, list) or not 1 <= len(times) <= MAX_TIMES:
        raise PlanError(f"{where}.times", f"a list of 1 to {MAX_TIMES} times of day")
    parsed = tuple(sorted(_time(value, f"{where}.times.{n}") for n, value in enumerate(times)))
    if len(set(parsed)) != len(parsed):
        raise PlanError(f"{where}.times", "a time may appear once")
    days = entry.get("days", sorted(ALL_DAYS))
    if (
        not isinstance(days, list)
        or not days
        or any(type(d) is not int or not 1 <= d <= 7 for d in days)
        or len(set(days)) != len(days)
    ):
        raise PlanError(f"{where}.days", "ISO weekdays 1 (Monday) to 7 (Sunday), each once")
    grace = entry.get("grace_minutes", 120)
    if type(grace) is not int or not MIN_GRACE <= timedelta(minutes=grace) <= MAX_GRACE:
        raise PlanError(f"{where}.grace_minutes", "a whole number of minutes, 15 to 1440")
    return PlanItem(str(measurement), parsed, frozenset(days), timedelta(minutes=grace))


def _time(value: object, where: str) -> time:
    found = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise PlanError(where, "a time of day HH:MM")
    return time(int(found[1]), int(found[2]))


def plan_json(items: Sequence[PlanItem]) -> list[dict[str, Any]]:
    """The JSON form of ``items`` (what :func:`parse_plan` reads back to equal items)."""
    return [
        {
            "measurement": item.measurement,
            "times": [f"{t:%H:%M}" for t in item.times],
            "days": sorted(item.days),
            "grace_minutes": int(item.grace.total_seconds() // 60),
        }
        for item in items
    ]


def occurrences(
    items: Iterable[PlanItem], start: datetime, end: datetime, zone: ZoneInfo
) -> list[Occurrence]:
    """Every occurrence due in ``[start, end)`` (aware datetimes), in due order. Times of day are the
    home's (``zone``): 08:00 stays 08:00 across daylight saving time; a time that does not exist on the
    day the clocks go forward is taken as the same wall time shifted by the gap (``fold=0``), so no
    occurrence is lost."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    found: list[Occurrence] = []
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    plans = list(items)
    day = first
    while day <= last:
        for item in plans:
            if day.isoweekday() not in item.days:
                continue
            for at in item.times:
                due = _local(day, at, zone)
                if start <= due < end:
                    found.append(Occurrence(item.measurement, due, due + item.grace))
        day += timedelta(days=1)
    return sorted(found, key=lambda o: (o.due_at, o.measurement))


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    wall = datetime.combine(day, at, tzinfo=zone)
    return wall.astimezone(UTC).astimezone(zone).astimezone(UTC)


def match_readings(
    due: Sequence[Occurrence], readings: Iterable[tuple[str, datetime]]
) -> dict[Occurrence, datetime]:
    """Which occurrences the readings ``(measurement, taken at)`` count for: each reading for the earliest
    occurrence of its measurement whose window (:data:`EARLY` before the due time to the deadline)
    holds it and that no earlier reading took. Occurrences absent from the answer were not done."""
    done: dict[Occurrence, datetime] = {}
    for measurement, taken in sorted(readings, key=lambda r: r[1]):
        for occurrence in due:
            if (
                occurrence.measurement == measurement
                and occurrence not in done
                and occurrence.opens_at <= taken <= occurrence.deadline
            ):
                done[occurrence] = taken
                break
    return done
