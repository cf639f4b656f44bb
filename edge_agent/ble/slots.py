"""Connection slots: how many Bluetooth links a hub holds open at once.

A BlueZ adapter keeps about seven LE connections in practice; asking for more fails with errors that
look like a faulty device. :class:`ConnectionSlots` is a FIFO semaphore with a count of who waits, so a
link takes a slot before it connects, gives it back in ``finally`` when the connection ends, and an idle
link can see that another device is waiting and give way (see ``LinkPolicy.idle_release``).

Which link connects when is left to :mod:`edge_agent.ble.connection`; this module only counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ConnectionSlots:
    """At most ``limit`` links connected (or connecting) at once; waiters are served first come first."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a hub needs at least one connection slot")
        self.limit = limit
        # asyncio.Semaphore is FIFO-fair since Python 3.11.1: a release never lets a newcomer jump the queue.
        self._semaphore = asyncio.Semaphore(limit)
        self._in_use = 0
        self._waiting = 0
        self.peak = 0  # the most slots ever in use at once (tests and the benchmark read it)
        self._contended = asyncio.Event()

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def waiting(self) -> int:
        """Links waiting for a slot right now."""
        return self._waiting

    async def acquire(self) -> None:
        """Wait for a free slot (FIFO). Pair every successful call with :meth:`release`."""
        self._waiting += 1
        if self._semaphore.locked():
            self._contended.set()
        try:
            await self._semaphore.acquire()
        finally:
            self._waiting -= 1
            if self._waiting == 0:
                self._contended.clear()
        self._in_use += 1
        self.peak = max(self.peak, self._in_use)

    def release(self) -> None:
        self._in_use -= 1
        self._semaphore.release()

    async def wait_contended(self) -> None:
        """Return once some link waits for a slot (at once if one already does)."""
        await self._contended.wait()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """``async with slots.slot():`` holds one slot for the block."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()
