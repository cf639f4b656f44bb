"""The connection manager's parts: FIFO connection slots, the hub's one scanner waking links, links that
share them, and a link that stops cleanly whenever it is closed (real ATT/GATT over Bumble, no mocks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from edge_agent.ble.connection import LinkPolicy
from edge_agent.ble.link_session import LinkConnection
from edge_agent.ble.manager import ConnectionManager
from edge_agent.ble.scanner import HubScanner
from edge_agent.ble.slots import ConnectionSlots
from edge_agent.emulation.peripheral import create_peripheral
from edge_agent.emulation.radio import HomeRadio

FAST = LinkPolicy(
    scan_timeout=0.3,
    connect_timeout=1.0,
    max_attempts=3,
    backoff_base=0.02,
    backoff_cap=0.1,
    idle_retry=0.1,
    drain_timeout=0.5,
    idle_release=0.05,
    revisit_after=0.005,
)


@pytest.fixture
async def radio() -> AsyncIterator[HomeRadio]:
    async with HomeRadio("manager-test") as radio:
        yield radio
    await asyncio.sleep(0.01)
    assert {task for task in asyncio.all_tasks() if task is not asyncio.current_task()} == set()


async def nothing(uuid: str, data: bytes) -> None:
    pass


async def test_slots_are_served_first_come_first_served_and_say_when_someone_waits() -> None:
    slots = ConnectionSlots(1)
    order: list[str] = []
    await slots.acquire()

    async def take(name: str) -> None:
        async with slots.slot():
            order.append(name)

    waiters = [asyncio.create_task(take(name)) for name in ("first", "second", "third")]
    await asyncio.sleep(0)
    async with asyncio.timeout(1):
        await slots.wait_contended()
    assert slots.waiting == 3 and slots.in_use == 1
    slots.release()
    await asyncio.gather(*waiters)
    assert order == ["first", "second", "third"]
    assert slots.waiting == 0 and slots.in_use == 0 and slots.peak == 1


async def test_the_hub_scanner_wakes_a_waiting_link_at_the_first_new_advertisement(radio: HomeRadio) -> None:
    scale = await create_peripheral(radio, "scale", advertise_only_with_data=True)
    scanner = HubScanner(radio.backend)
    scanner.watch([scale.address])
    await scanner.start()
    try:
        asleep = await scanner.wait_for(scale.address, newer_than=time.monotonic(), within=0.1)
        assert asleep is None
        waiting = asyncio.create_task(scanner.wait_for(scale.address, newer_than=time.monotonic(), within=2))
        started = time.perf_counter()
        await scale.measure(b"\x00\x98\x3a")  # it wakes and advertises
        device = await waiting
        assert device is not None and device.address == scale.address
        assert time.perf_counter() - started < 0.2
        seen = scanner.last_seen(scale.address)
        assert seen is not None
        # An advertisement from before the moment named does not count.
        late = await scanner.wait_for(scale.address, newer_than=seen.at + 60, within=0.05)
        assert late is None
    finally:
        await scanner.stop()


async def test_links_of_one_manager_share_one_scan_and_all_connect(radio: HomeRadio) -> None:
    devices = [
        await create_peripheral(radio, kind) for kind in ("blood-pressure-cuff", "scale", "thermometer")
    ]
    manager = ConnectionManager(radio.backend, max_connections=7, policy=FAST)
    for n, device in enumerate(devices):
        manager.add(f"d{n}", device.address, f"{device.measurement_uuid:04x}", nothing)
    await manager.start()
    try:
        async with asyncio.timeout(2):
            await asyncio.gather(*(link.wait_connected() for link in manager.links.values()))
        assert manager.scanner.running and manager.scanner.advertisements >= 3
        assert set(manager.states()) == {"d0", "d1", "d2"}
        assert manager.slots.in_use == 3
    finally:
        await manager.close()
    assert manager.slots.in_use == 0 and not manager.scanner.running


class ReleasingSession:
    """A session that hands the device back at once, as a glucose meter's does after its transfer."""

    def __init__(self) -> None:
        self.subscribed = 0

    async def on_connected(self, connection: LinkConnection) -> None:
        pass

    async def on_subscribed(self, connection: LinkConnection) -> bool:
        self.subscribed += 1
        return False

    async def on_disconnected(self) -> None:
        pass


async def test_a_link_closed_at_any_moment_of_its_connect_release_cycle_stops(radio: HomeRadio) -> None:
    cuff = await create_peripheral(radio, "blood-pressure-cuff")
    for round_ in range(12):
        session = ReleasingSession()
        manager = ConnectionManager(radio.backend, policy=FAST)
        link = manager.add("cuff", cuff.address, "2a35", nothing, session=session)
        await manager.start()
        async with asyncio.timeout(2):
            await link.wait_until(lambda state, n=round_ % 3 + 1: state.connections >= n)
        await asyncio.sleep(0.001 * round_)  # close at a different point of the cycle each round
        async with asyncio.timeout(2):
            await manager.close()
        assert session.subscribed >= 1
        assert manager.slots.in_use == 0
