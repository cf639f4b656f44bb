"""Simulated time for the demo: a clock that runs ``speed`` times faster than the wall clock."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(slots=True)
class SimClock:
    """``now()`` starts at ``start`` and advances ``speed`` simulated seconds per real second."""

    start: datetime
    speed: float
    _t0: float = field(default_factory=time.monotonic)

    def reset(self) -> None:
        """Start simulated time (again) at ``start`` from this real moment."""
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    def real_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now()).total_seconds() / self.speed)

    async def sleep_until(self, moment: datetime) -> None:
        """Sleep (without blocking the loop) until the simulated clock reaches ``moment``."""
        delay = self.real_seconds_until(moment)
        if delay > 0:
            await asyncio.sleep(delay)
