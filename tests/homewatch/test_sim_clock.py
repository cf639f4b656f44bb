"""The demo's simulated clock runs `speed` times faster than real time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from homewatch.demo.clock import SimClock


async def test_clock_runs_at_speed_and_sleeps_until_a_simulated_moment() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = SimClock(start, speed=3600.0)  # one simulated hour per real second
    target = start + timedelta(minutes=30)
    before = time.monotonic()
    await clock.sleep_until(target)
    elapsed = time.monotonic() - before
    assert 0.45 <= elapsed < 1.5
    assert clock.now() >= target
    await asyncio.wait_for(clock.sleep_until(start), timeout=0.05)  # the past does not wait
