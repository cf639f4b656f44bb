"""What the patient view's pages show, computed from values (pure): today's plan and what arrived,
and the 30 days of each measurement for the trends.

Today's plan is :func:`edge_agent.plan_schedule.plan_state` (the reminders' and the gateway's rules)
over the home's calendar day, from the readings the hub keeps (:mod:`.history`): each occurrence due
today is ``done`` (with the time of the reading), ``due`` (measure now), ``missed`` or ``upcoming``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from edge_agent.patient_view.charts import Point
from edge_agent.patient_view.history import GROUPS, LocalReading
from edge_agent.plan_schedule import plan_state
from fhir_contract.plan import EARLY, MAX_GRACE, PlanItem

#: The trends' window.
TREND_DAYS: Final = 30
#: How far before the day's start readings are read, so plan_state matches them as the gateway does.
READ_BEFORE: Final = MAX_GRACE + EARLY + timedelta(days=1)

State = Literal["due", "done", "missed", "upcoming"]


@dataclass(frozen=True, slots=True)
class PlanRow:
    measurement: str  # a fhir_contract.plan measurement key
    due_at: datetime  # local
    state: State
    done_at: datetime | None = None  # local, when done


def day_bounds(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The start and end of the home's calendar day around ``now`` (aware, in ``zone``)."""
    today = now.astimezone(zone).date()
    start = datetime.combine(today, time(), zone)
    return start, datetime.combine(today + timedelta(days=1), time(), zone)


def today_plan(
    items: Sequence[PlanItem], zone: ZoneInfo, readings: Sequence[LocalReading], now: datetime
) -> list[PlanRow]:
    """Every occurrence of the plan due on the home's calendar day of ``now``, in time order."""
    if not items:
        return []
    start, end = day_bounds(now, zone)
    taken = [(r.plan_key, r.taken) for r in readings if r.plan_key is not None]
    state = plan_state(items, zone, taken, now, lookback=now - start, horizon=end - now)
    rows = [PlanRow(o.measurement, o.due_at.astimezone(zone), "due") for o in state.due]
    rows += [
        PlanRow(o.measurement, o.due_at.astimezone(zone), "done", at.astimezone(zone))
        for o, at in state.done.items()
    ]
    rows += [PlanRow(o.measurement, o.due_at.astimezone(zone), "missed") for o in state.missed]
    rows += [PlanRow(o.measurement, o.due_at.astimezone(zone), "upcoming") for o in state.upcoming]
    rows = [row for row in rows if start <= row.due_at < end]
    return sorted(rows, key=lambda row: (row.due_at, row.measurement))


def arrived_today(readings: Sequence[LocalReading], zone: ZoneInfo, now: datetime) -> list[LocalReading]:
    """The readings taken on the home's calendar day of ``now``, newest first."""
    start, end = day_bounds(now, zone)
    return sorted((r for r in readings if start <= r.taken < end), key=lambda r: r.taken, reverse=True)


@dataclass(frozen=True, slots=True)
class Trend:
    """One measurement over the window: its series (name -> points) and its newest reading."""

    group: str
    series: dict[str, list[Point]]
    latest: LocalReading
    low: LocalReading
    high: LocalReading


def trends(readings: Sequence[LocalReading]) -> list[Trend]:
    """One trend per measurement that has readings (oldest first in), in the view's order."""
    out = []
    for group in GROUPS:
        mine = [r for r in readings if r.group == group]
        if not mine:
            continue
        names = ("systolic", "diastolic") if group == "blood-pressure" else ("value",)
        series = {name: [(r.taken, float(r.numbers[name])) for r in mine] for name in names}
        key = names[0]
        out.append(
            Trend(
                group,
                series,
                latest=mine[-1],
                low=min(mine, key=lambda r: r.numbers[key]),
                high=max(mine, key=lambda r: r.numbers[key]),
            )
        )
    return out
