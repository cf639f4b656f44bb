"""Quiet hours: the part of the day in which the hub says nothing (pure).

A period of the home's wall clock, ``start`` (included) to ``end`` (excluded), for example 22:00 to
07:00, which spans midnight. It is read on the wall clock of the home's time zone, so it follows
daylight saving time: 22:00 to 07:00 is 22:00 to 07:00 local time in winter and in summer, and an
instant is quiet when its local time falls in the period (an instant always has one local time, so the
hour that a spring change skips and the hour that an autumn change repeats need no special case).
``start == end`` is an empty period: never quiet (to be silent all day, switch the voice off).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, tzinfo


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Quiet from ``start`` until ``end`` on the home's wall clock; ``end`` before ``start`` spans
    midnight."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are wall-clock times without a time zone")

    def is_quiet(self, at: datetime, zone: tzinfo) -> bool:
        """Whether the instant ``at`` (time-zone aware) falls in the quiet hours of a home in ``zone``."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("is_quiet needs a time-zone aware instant")
        local = at.astimezone(zone).time().replace(tzinfo=None)
        return self.contains(local)

    def contains(self, local: time) -> bool:
        """Whether the wall-clock time ``local`` lies in the quiet hours."""
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end
