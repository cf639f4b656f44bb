"""DeviceLink keeps emulated devices connected through bleak on the Bumble backend (no mocks)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from bleak.uuids import normalize_uuid_str

from edge_agent.ble.connection import DeviceLink, DeviceState, LinkPolicy
from edge_agent.ble.errors import (
    BleError,
    ConnectError,
    DeviceNotFoundError,
    LinkLostError,
    ValueHandlerError,
)
from edge_agent.emulation.peripheral import PROFILES, EmulatedPeripheral, create_peripheral
from edge_agent.emulation.radio import HomeRadio

# Emulated devices advertise every 20 ms, so everything can be short.
FAST = LinkPolicy(
    scan_timeout=0.3,
    connect_timeout=1.0,
    max_attempts=3,
    backoff_base=0.02,
    backoff_cap=0.1,
    idle_retry=0.1,
    drain_timeout=1.0,
)
BPM = normalize_uuid_str("2a35")


class Received:
    """An ``on_value`` that records what it is given."""

    def __init__(self) -> None:
        self.values: list[tuple[str, bytes]] = []
        self._changed = asyncio.Event()

    async def __call__(self, uuid: str, data: bytes) -> None:
        self.values.append((uuid, data))
        self._changed.set()

    async def wait_for(self, count: int) -> list[tuple[str, bytes]]:
        async with asyncio.timeout(2):
            while len(self.values) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.values


def measurement_uuid(peripheral: EmulatedPeripheral) -> str:
    return normalize_uuid_str(f"{peripheral.measurement_uuid:04x}")


@pytest.fixture
async def radio() -> AsyncIterator[HomeRadio]:
    async with HomeRadio("link-test") as radio:
        yield radio
    assert {task for task in asyncio.all_tasks() if task is not asyncio.current_task()} == set()


@pytest.fixture
async def cuff(radio: HomeRadio) -> EmulatedPeripheral:
    return await create_peripheral(
        radio, "blood-pressure-cuff", serial="CUFF-7", firmware="3.2.1", battery=81
    )


def link_for(radio: HomeRadio, peripheral: EmulatedPeripheral, on_value: Received) -> DeviceLink:
    return DeviceLink(
        peripheral.address,
        f"{peripheral.measurement_uuid:04x}",
        on_value,
        backend=radio.backend,
        policy=FAST,
        rng=random.Random(7),
    )


async def connected(link: DeviceLink) -> DeviceState:
    async with asyncio.timeout(2):
        return await link.wait_connected()


async def test_link_reads_battery_and_device_information(radio: HomeRadio, cuff: EmulatedPeripheral) -> None:
    async with link_for(radio, cuff, Received()) as link:
        state = await connected(link)
    assert (state.battery, state.serial, state.firmware, state.model) == (81, "CUFF-7", "3.2.1", "BP-Cuff")
    assert state.manufacturer == "Homewatch Emulation"
    assert state.last_seen is not None and state.last_error is None
    assert (state.connections, state.reconnects) == (1, 0)
    assert link.state.connected is False  # closed


async def test_link_delivers_indications_in_order_byte_exact(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    received = Received()
    values = [bytes([0x1E, n, 0, 80, 0, 95, 0]) + bytes(n) for n in range(30)]
    async with link_for(radio, cuff, received) as link:
        await connected(link)
        for value in values:
            assert await cuff.measure(value) is True
        assert await received.wait_for(len(values)) == [(BPM, value) for value in values]


async def test_link_receives_values_stored_while_disconnected_in_order(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    for n in range(5):
        await cuff.measure(bytes([n]))
    received = Received()
    async with link_for(radio, cuff, received) as link:
        await connected(link)
        await cuff.measure(b"\x05")
        assert [data for _, data in await received.wait_for(6)] == [bytes([n]) for n in range(6)]
    assert cuff.stored_count == 0


async def test_link_reconnects_after_link_loss_and_later_values_arrive(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    received = Received()
    async with link_for(radio, cuff, received) as link:
        await connected(link)
        await cuff.measure(b"before")
        await cuff.drop_link()
        async with asyncio.timeout(1):
            state = await link.wait_until(lambda s: not s.connected)
        assert isinstance(state.last_error, LinkLostError)
        await cuff.measure(b"while away")
        await asyncio.sleep(0.1)  # the link scans and backs off meanwhile
        await cuff.reappear()
        async with asyncio.timeout(2):
            state = await link.wait_until(lambda s: s.connected and s.reconnects == 1)
        await cuff.measure(b"after")
        assert [data for _, data in await received.wait_for(3)] == [b"before", b"while away", b"after"]
    assert state.last_error is None


async def test_link_follows_battery_notifications(radio: HomeRadio, cuff: EmulatedPeripheral) -> None:
    async with link_for(radio, cuff, Received()) as link:
        await connected(link)
        await cuff.set_battery(12)
        async with asyncio.timeout(1):
            state = await link.wait_until(lambda s: s.battery == 12)
    assert state.battery == 12


async def test_four_links_on_one_radio_connect_concurrently(radio: HomeRadio) -> None:
    devices = [await create_peripheral(radio, kind) for kind in PROFILES]
    received = {device.address: Received() for device in devices}
    links = [link_for(radio, device, received[device.address]) for device in devices]
    for link in links:
        link.start()
    try:
        async with asyncio.timeout(2):
            await asyncio.gather(*(link.wait_connected() for link in links))
        await asyncio.gather(*(device.measure(device.address.encode()) for device in devices))
        for device in devices:
            expected = [(measurement_uuid(device), device.address.encode())]
            assert await received[device.address].wait_for(1) == expected
    finally:
        await asyncio.gather(*(link.close() for link in links))


async def test_absent_device_does_not_stall_the_others(radio: HomeRadio) -> None:
    present = await create_peripheral(radio, "thermometer")
    absent = await create_peripheral(radio, "pulse-oximeter")
    await absent.drop_link()
    received = Received()
    async with link_for(radio, absent, Received()) as absent_link, link_for(radio, present, received) as link:
        await connected(link)
        await present.measure(b"\x00\x01")
        assert await received.wait_for(1) == [(measurement_uuid(present), b"\x00\x01")]
        async with asyncio.timeout(2):
            state = await absent_link.wait_until(lambda s: isinstance(s.last_error, ConnectError))
    assert isinstance(state.last_error, ConnectError)
    assert isinstance(state.last_error.last, DeviceNotFoundError)
    assert state.last_error.attempts == FAST.max_attempts
    assert isinstance(state.last_error, BleError) and state.last_error.address == absent.address


async def test_failing_value_handler_is_recorded_and_link_stays_up(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    delivered: list[bytes] = []
    good_delivered = asyncio.Event()

    async def on_value(uuid: str, data: bytes) -> None:
        if data == b"bad":
            raise ValueError("cannot parse")
        delivered.append(data)
        good_delivered.set()

    link = DeviceLink(cuff.address, "2a35", on_value, backend=radio.backend, policy=FAST)
    async with link:
        await connected(link)
        for value in (b"bad", b"good"):
            await cuff.measure(value)
        async with asyncio.timeout(1):
            state = await link.wait_until(lambda s: isinstance(s.last_error, ValueHandlerError))
            await good_delivered.wait()
    assert state.connected and delivered == [b"good"]


async def test_close_hands_queued_values_to_a_slow_handler_first(
    radio: HomeRadio, cuff: EmulatedPeripheral
) -> None:
    delivered: list[bytes] = []

    async def slow(uuid: str, data: bytes) -> None:
        await asyncio.sleep(0.02)
        delivered.append(data)

    link = DeviceLink(cuff.address, "2a35", slow, backend=radio.backend, policy=FAST)
    async with link:
        await connected(link)
        for n in range(5):
            await cuff.measure(bytes([n]))
    assert delivered == [bytes([n]) for n in range(5)]


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = LinkPolicy(backoff_base=0.5, backoff_cap=15.0)
    rng = random.Random(1)
    for attempt, full in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 15.0), (20, 15.0)]:
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        assert full / 2 <= min(delays) and max(delays) <= full
        assert max(delays) - min(delays) > full / 4  # jittered, not constant
