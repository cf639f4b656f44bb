"""A simulated clock for the hub's timed loops (``edge_agent.reminders``): ``now`` and ``sleep`` that only
move when the test says so.

A loop that sleeps on it waits until :meth:`SimClock.advance` passes the end of its sleep. ``advance``
moves the clock only while a loop sleeps (never in the middle of a turn, which would then sleep for a
delay computed on the old time), then waits (in real time, bounded) until every loop it woke has gone
to sleep again, so the test looks at what the loop did only once it is done. For one loop at a time.
A loop woken by something else (a reading) is waited for with :meth:`SimClock.settled`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.at = start
        self.sleeps = 0  # calls of sleep so far: a loop that slept again has finished its turn
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.at + timedelta(seconds=seconds), future)
        self._sleepers.append(entry)
        self.sleeps += 1
        try:
            await future
        finally:
            self._sleepers.remove(entry)

    @property
    def pending(self) -> int:
        """Sleeps in progress (a loop that sleeps, not one that is between two sleeps)."""
        return sum(not future.done() for _, future in self._sleepers)

    async def advance(self, to: datetime, within: float = 20.0) -> None:
        """Once a loop sleeps (so it is not in the middle of a turn computed on the old time), move the
        clock to ``to`` (never back) and wait until the loops it woke sleep again."""
        assert to >= self.at, "a clock does not go back"
        async with asyncio.timeout(within):
            while not self.pending:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
        mark = self.sleeps
        self.at = to
        woken = [f for until, f in self._sleepers if until <= to and not f.done()]
        for future in woken:
            future.set_result(None)
        if woken:
            await self.settled(mark, len(woken))

    async def settled(self, mark: int, loops: int = 1, within: float = 20.0) -> None:
        """Wait until ``loops`` loops slept again since ``sleeps`` was ``mark``."""
        async with asyncio.timeout(within):
            while self.sleeps < mark + loops:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
