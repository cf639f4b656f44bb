"""The demo's simulated clock runs `speed` times faster than real time until it reaches the wall clock,
and then is the wall clock: it never runs ahead of it."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from homewatch.demo.clock import SimClock


async def test_clock_runs_at_speed_and_sleeps_until_a_simulated_moment() -> None:
    start = datetime.now(UTC) - timedelta(days=3)
    clock = SimClock(start, speed=3600.0)  # one simulated hour per real second
    target = start + timedelta(minutes=30)
    before = time.monotonic()
    await clock.sleep_until(target)
    elapsed = time.monotonic() - before
    assert 0.45 <= elapsed < 1.5
    assert target <= clock.now() < target + timedelta(minutes=30)
    assert not clock.caught_up()
    assert clock.behind() > timedelta(days=2)
    await asyncio.wait_for(clock.sleep_until(start), timeout=0.05)  # the past does not wait


async def test_the_clock_stops_at_the_wall_clock_and_then_follows_it() -> None:
    clock = SimClock(datetime.now(UTC) - timedelta(hours=1), speed=36_000.0)  # the hour in 0.1 s
    await asyncio.sleep(0.3)  # at full speed it would be two hours past the present by now
    assert clock.caught_up()
    assert clock.behind() == timedelta(0)
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)
    assert clock.now().tzinfo is UTC  # the start's zone, not the wall clock's
    first = clock.now()
    await asyncio.sleep(0.2)
    assert timedelta(seconds=0.15) < clock.now() - first < timedelta(seconds=0.5)  # real time now


async def test_a_moment_past_the_present_is_reached_in_real_time() -> None:
    clock = SimClock(datetime.now(UTC) - timedelta(hours=1), speed=36_000.0)
    moment = datetime.now(UTC) + timedelta(seconds=0.5)
    assert 0.4 < clock.real_seconds_until(moment) <= 0.5
    before = time.monotonic()
    await clock.sleep_until(moment)
    assert time.monotonic() - before >= 0.4
    assert clock.now() >= moment


def test_a_clock_cannot_start_in_the_future_nor_run_slower_than_real_time() -> None:
    with pytest.raises(ValueError, match="past"):
        SimClock(datetime.now(UTC) + timedelta(minutes=1), speed=10.0)
    with pytest.raises(ValueError, match="speed"):
        SimClock(datetime.now(UTC) - timedelta(days=1), speed=0.5)
