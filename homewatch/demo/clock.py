"""Simulated time for the demo: a clock that plays the past fast until it reaches the present.

``SimClock(start, speed)`` starts at ``start`` (in the past) and runs ``speed`` times faster than real
time until it catches up with the wall clock; from then on it *is* the wall clock. The demo plays its
SYNTHETIC weeks of monitoring that way and then keeps running live, so that every part that asks "what
time is it?" agrees with every other: the hubs stamp readings with ``now``, the gateway's scorer stamps
scores and alerts with it, and the web UI says "3 min ago" measured from it (``gateway.api.clock``).
Mid-play the UI therefore shows the simulated present, never the wall clock's, which would make every
reading look days old. Because the clock never passes the wall clock, nothing it stamps lies in the
future for the gateway's checks.

Both clocks are read from one monotonic reference taken at ``reset``, so the catch-up point is exact and
``real_seconds_until`` has a closed form.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


def _wall() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class SimClock:
    """``now()`` starts at ``start`` and advances ``speed`` simulated seconds per real second until it
    reaches the wall clock, which it follows from then on. ``start`` must not lie in the future."""

    start: datetime
    speed: float
    _t0: float = field(default=0.0, init=False)
    _wall0: datetime = field(default_factory=_wall, init=False)

    def __post_init__(self) -> None:
        if self.speed < 1:
            raise ValueError(f"speed must be at least 1 (real time), not {self.speed}")
        self.reset()

    def reset(self) -> None:
        """Start simulated time (again) at ``start`` from this real moment."""
        self._t0 = time.monotonic()
        self._wall0 = _wall()
        if self.start > self._wall0:
            raise ValueError(f"a simulated clock starts in the past, not at {self.start.isoformat()}")

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    def now(self) -> datetime:
        """The simulated time: fast until it meets the wall clock, then the wall clock (``start``'s zone)."""
        elapsed = self._elapsed()
        simulated = self.start + timedelta(seconds=elapsed * self.speed)
        wall = self._wall0 + timedelta(seconds=elapsed)
        return min(simulated, wall).astimezone(self.start.tzinfo)

    def caught_up(self) -> bool:
        """Whether the simulated time has reached the wall clock (it runs at real speed from then on)."""
        return self.behind() == timedelta(0)

    def behind(self) -> timedelta:
        """How far the simulated time is behind the wall clock (zero once caught up)."""
        elapsed = self._elapsed()
        gap = self._wall0 + timedelta(seconds=elapsed) - self.start - timedelta(seconds=elapsed * self.speed)
        return max(gap, timedelta(0))

    def real_seconds_until(self, moment: datetime) -> float:
        # now() >= moment once both the fast clock and the wall clock have passed it.
        fast = (moment - self.start).total_seconds() / self.speed
        wall = (moment - self._wall0).total_seconds()
        return max(0.0, max(fast, wall) - self._elapsed())

    async def sleep_until(self, moment: datetime) -> None:
        """Sleep (without blocking the loop) until the simulated clock reaches ``moment``."""
        delay = self.real_seconds_until(moment)
        if delay > 0:
            await asyncio.sleep(delay)
